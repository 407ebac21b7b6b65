"""The result of a symbolic count: a Report at the given inputs, the costs at any sizes (`at`: from the run with
symbolic sizes where its guards hold, else counted), and one exact polynomial per metric where one was proven."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from fractions import Fraction
from functools import cached_property
from typing import Any

from ..report.report import Report
from .region import Costs, SymbolicError, conditions

METRICS = ("macs", "flops", "bytes_read", "bytes_written", "params")
LABELS = {
    "macs": "MACs",
    "flops": "FLOPs",
    "bytes_read": "bytes read",
    "bytes_written": "bytes written",
    "params": "parameters",
}
_SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


@dataclass(frozen=True)
class Variable:
    """One named size: the input dimensions it labels, its step, the smallest size the polynomials hold for, its
    degree in the costs, and its value in the counted inputs."""

    name: str
    where: tuple[tuple[str | int, int], ...]
    multiple: int
    minimum: int
    degree: int
    counted: int

    def check(self, size: Any) -> int:
        if not isinstance(size, int) or isinstance(size, bool):
            raise TypeError(f"{self.name} must be an integer size, got {size!r}")
        if size < self.multiple or size % self.multiple:
            step = f" and a multiple of {self.multiple}" if self.multiple > 1 else ""
            raise ValueError(f"sizes are {self.name} ≥ {self.multiple}{step}, got {self.name}={size}")
        return size


@dataclass(frozen=True)
class Piece:
    """Exact polynomials (sympy) of every metric in the sizes not fixed above, holding from `minimum` (sizes);
    `ones[name]` holds those for where that size is one step, when size 1 takes its own path (a batch of one skips
    an expand, a length of one a mask): a fit by counting checks it."""

    polynomials: dict[str, Any]
    degrees: dict[str, int]
    minimum: dict[str, int]
    ones: dict[str, Piece]

    @cached_property
    def terms(self) -> dict[str, list[tuple[Fraction, tuple[tuple[str, int], ...]]]]:
        """Each polynomial as exact (coefficient, ((size, power), …)) terms: evaluated in plain Python, far faster
        than sympy's substitution."""
        import sympy

        found: dict[str, list[tuple[Fraction, tuple[tuple[str, int], ...]]]] = {}
        for metric, expr in self.polynomials.items():
            if not expr.free_symbols:  # a constant (the parameters)
                found[metric] = [(Fraction(int(sympy.Rational(expr).p), int(sympy.Rational(expr).q)), ())]
                continue
            poly = sympy.Poly(expr, *sorted(expr.free_symbols, key=str))
            found[metric] = [
                (Fraction(int(c.p), int(c.q)), tuple((str(g), k) for g, k in zip(poly.gens, powers, strict=True) if k))
                for powers, c in poly.terms()
            ]
        return found

    def lookup(self, sizes: dict[str, int], steps: dict[str, int]) -> Piece:
        for name, piece in self.ones.items():
            if sizes[name] == steps[name]:
                return piece.lookup(sizes, steps)
        return self


@dataclass(frozen=True)
class Evaluated:
    """The costs at one set of sizes: exact integers, as a direct count gives. `source` says where they came from:
    "traced" (the run with symbolic sizes, op by op, where its guards hold), "counted" (a count at these sizes) or
    "polynomial" (the fitted polynomials, `SymbolicReport.evaluate`)."""

    sizes: dict[str, int]
    macs: int
    flops: int
    bytes_read: int
    bytes_written: int
    params: int
    source: str = "polynomial"

    @property
    def values(self) -> tuple[int, ...]:
        return tuple(getattr(self, m) for m in METRICS)

    @property
    def bytes(self) -> int:
        return self.bytes_read + self.bytes_written


@dataclass(frozen=True)
class SymbolicReport(Report):
    """A Report of the given inputs; `at(**sizes)`, the costs at any sizes; `formula(metric)`, an exact polynomial
    in the named sizes (sympy) over the region it was proven for."""

    variables: tuple[Variable, ...] = ()
    fit: Piece | None = None  # the polynomials (None: `refused` says why no polynomial holds)
    counts: int = 0  # how many counts the fit and its checks took
    verified: int = 0  # of them, sizes never used to fit
    traced: int = 0  # sizes costed from the run with symbolic sizes instead of counted (trace.py)
    guards: tuple[str, ...] = ()  # the conditions on the sizes that run holds under: the polynomials' region
    refused: str = ""  # why no polynomial is given (formula() raises SymbolicError with it)
    checks: tuple[str, ...] = ()  # the sizes never used to fit that the polynomials were checked at, and why
    unchecked: tuple[str, ...] = ()  # checks left out (too large a size, or the model raised there)
    costs: Costs | None = field(default=None, compare=False, repr=False)  # answers at(): the trace, else counts

    @classmethod
    def from_report(
        cls, report: Report, variables: tuple[Variable, ...], fit: Piece | None, **found: Any
    ) -> SymbolicReport:
        base = {f.name: getattr(report, f.name) for f in fields(Report)}
        return cls(**base, variables=variables, fit=fit, **found)

    @property
    def polynomials(self) -> dict[str, Any]:
        """{metric: sympy polynomial}, exact for sizes ≥ each variable's minimum where `guards` hold."""
        if self.fit is None:
            raise SymbolicError(self.refused)
        return self.fit.polynomials

    def region(self) -> Any:
        """The sizes the polynomials stand for, as a sympy condition (True: every size from the minimum)."""
        import sympy

        if self.costs is None or self.costs.trace is None or not self.guards:
            return sympy.true
        lowest = [sympy.Symbol(v.name, integer=True, positive=True) >= v.minimum for v in self.variables]
        return sympy.And(*lowest, *conditions(self.costs.trace))

    def formula(self, metric: str = "macs") -> Any:
        """The exact polynomial of `metric` (macs, flops, bytes_read, bytes_written, bytes, params) as sympy; where
        guards bound it, a Piecewise that is undefined (nan) outside them: those sizes are counted, by `at`."""
        import sympy

        if metric == "bytes":
            expr = self.polynomials["bytes_read"] + self.polynomials["bytes_written"]
        elif metric in METRICS:
            expr = self.polynomials[metric]
        else:
            raise KeyError(f"no formula for {metric!r}; one of {', '.join([*METRICS, 'bytes'])}")
        region = self.region()
        return expr if region is sympy.true or not expr.free_symbols else sympy.Piecewise((expr, region))

    def at(self, **sizes: int) -> Evaluated:
        """The costs at these sizes (sizes not named stay as counted): `report.at(batch=8, seq=4096).macs`. From the
        run with symbolic sizes where its guards hold, else counted there (once: a size is not counted twice)."""
        known = {v.name: v for v in self.variables}
        unknown = set(sizes) - set(known)
        if unknown:
            raise TypeError(f"at(): no size named {', '.join(sorted(unknown))}; the sizes are {', '.join(known)}")
        chosen = {n: v.check(sizes[n]) if n in sizes else v.counted for n, v in known.items()}
        if self.costs is None:
            raise ValueError("at(): this report holds no model to count with; count() makes one that does")
        (macs, flops, read, written, params), source = self.costs.at(chosen)
        return Evaluated(chosen, macs, flops, read, written, params, source)

    def evaluate(self, sizes: dict[str, int]) -> Evaluated:
        """The polynomials at these sizes, unchecked (the fit verifies itself with it); `at` is the answer."""
        if self.fit is None:
            raise SymbolicError(self.refused)
        piece = self.fit.lookup(sizes, {v.name: v.multiple for v in self.variables})
        result = []
        for metric in METRICS:
            value = sum(
                (c * math.prod(sizes[n] ** k for n, k in powers) for c, powers in piece.terms[metric]), Fraction(0)
            )
            if value.denominator != 1:
                raise ValueError(f"{LABELS[metric]} at {sizes} is {value}, not an integer: outside the fitted steps")
            result.append(int(value))
        macs, flops, read, written, params = result
        return Evaluated(dict(sizes), macs, flops, read, written, params)

    def formula_text(self, metric: str = "macs", piece: Piece | None = None) -> str:
        """`MACs = 1,536·batch·seq² + 24,576·batch·seq`: terms by falling degree, exact coefficients."""
        import sympy

        symbols = [sympy.Symbol(v.name, integer=True, positive=True) for v in self.variables]
        expr = self.polynomials[metric] if piece is None else piece.polynomials[metric]
        terms = sympy.Poly(expr, *symbols).terms()
        parts: list[str] = []
        for powers, coefficient in sorted(terms, key=lambda t: (-sum(t[0]), [-p for p in t[0]])):
            factors = [
                v.name + (str(p).translate(_SUPERSCRIPT) if p > 1 else "")
                for v, p in zip(self.variables, powers, strict=True)
                if p
            ]
            magnitude = abs(sympy.Rational(coefficient))
            number = f"{int(magnitude):,}" if magnitude.q == 1 else f"{magnitude.p:,}/{magnitude.q:,}"
            text = "·".join(factors if magnitude == 1 and factors else [number, *factors])
            parts.append(("− " if coefficient < 0 else "+ ") + text)
        joined = " ".join(parts).removeprefix("+ ") if parts else "0"
        return f"{LABELS.get(metric, metric)} = {joined}"

    def formulas(self) -> str:
        """The polynomials of every metric, the region they stand for, how they were found and checked, and where
        `at` takes its answers from."""
        held = f" where {', '.join(self.guards)} (the guards of the run with symbolic sizes)" if self.guards else ""
        lines = [f"no polynomial: {self.refused}"] if self.fit is None else [self.formula_text(m) for m in METRICS]
        if self.fit is not None:
            steps = {v.name: v.multiple for v in self.variables}

            def apart(piece: Piece, where: str) -> None:
                for name, sub in piece.ones.items():
                    at = f"{where}, {name} = {steps[name]}".removeprefix(", ")
                    lines.append(f"at {at} (its own path): " + "; ".join(self.formula_text(m, sub) for m in METRICS))
                    apart(sub, at)

            apart(self.fit, "")
            domain = ", ".join(
                f"{v.name} ≥ {v.minimum:,}" + (f" in steps of {v.multiple}" if v.multiple > 1 else "")
                for v in self.variables
            )
            degrees = ", ".join(f"{v.degree} in {v.name}" for v in self.variables)
            checks = _plural(self.verified, "size" if self.traced else "count")
            at_sizes = f": {'; '.join(self.checks)}" if self.checks else ""
            lines.append(
                f"exact for {domain}{held}: degree {degrees} (the next finite difference is zero), fitted by "
                f"exact interpolation and checked against {checks} not used to fit{at_sizes} "
                f"({_plural(self.counts, 'count')} in all)"
            )
            if self.unchecked:
                lines.append(f"not checked at {'; '.join(self.unchecked)}")
        if self.costs is not None and self.costs.trace is not None:
            stepped = any(v.multiple > 1 for v in self.variables)
            where = "where those guards hold" if self.guards else "of 2 steps or more" if stepped else "≥ 2"
            lines.append(
                f"at() costs the sizes {where} op by op from one run with the sizes symbolic (the same ops, "
                "each formula at those sizes, as a count there gives), and counts every other size directly"
            )
        else:
            lines.append(
                "at() counts every size it is asked for (a fit by counting stands for no size it did not count)"
            )
        return "\n".join(lines)

    def explain(self, depth: int | None = None, fmt: str = "text") -> str:
        """The polynomials, then the hand calculation of the count at the given inputs."""
        formulas = self.formulas()
        if fmt == "markdown":
            formulas = "\n".join(f"- {line}" for line in formulas.splitlines())
        return formulas + "\n\n" + super().explain(depth=depth, fmt=fmt)

    def __repr__(self) -> str:
        shown = self.formula_text("macs") if self.fit is not None else f"no polynomial: {self.refused}"
        return super().__repr__().removesuffix(")") + f", symbolic={shown!r})"


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")
