"""The result of a symbolic count: a Report at the given inputs plus one exact polynomial per metric."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from fractions import Fraction
from functools import cached_property
from typing import Any

from ..report.report import Report

METRICS = ("macs", "flops", "bytes_read", "bytes_written", "params")
LABELS = {"macs": "MACs", "flops": "FLOPs", "bytes_read": "bytes read", "bytes_written": "bytes written",
          "params": "parameters"}
_SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


@dataclass(frozen=True)
class Variable:
    """One named size: the input dimensions it labels, its step, the smallest size the formula holds for (checked
    by a count), its degree in the costs, and its value in the counted inputs."""

    name: str
    where: tuple[tuple[str | int, int], ...]
    multiple: int
    minimum: int
    degree: int
    counted: int

    def check(self, size: Any) -> int:
        if not isinstance(size, int) or isinstance(size, bool):
            raise TypeError(f"{self.name} must be an integer size, got {size!r}")
        if size < self.minimum or size % self.multiple:
            step = f" and a multiple of {self.multiple}" if self.multiple > 1 else ""
            raise ValueError(f"the formula holds for {self.name} ≥ {self.minimum}{step} (checked by counts), "
                             f"got {self.name}={size}; count that size directly")
        return size


class Later:
    """The piece for a size of one step, fitted when first asked (`at(seq=1)`): a run with symbolic sizes cannot
    stand for size 1 (torch never makes 0 or 1 symbolic), so it needs counts of its own, made only if wanted.
    Until then it holds the count's closure (the model); once fitted, it drops it."""

    def __init__(self, fit: Callable[[], Piece | None]) -> None:
        self._fit: Callable[[], Piece | None] | None = fit
        self._piece: Piece | None = None

    @property
    def pending(self) -> bool:
        return self._fit is not None

    def piece(self) -> Piece | None:
        """Its own polynomials, or None where the main ones hold at size 1 too."""
        if self._fit is not None:
            self._piece, self._fit = self._fit(), None
        return self._piece

    def __deepcopy__(self, memo: dict[int, Any]) -> Later:
        return self  # a report copied (dataclasses.replace, asdict) shares it


@dataclass(frozen=True)
class Piece:
    """Exact polynomials (sympy) of every metric in the sizes not fixed above; `ones[name]` holds those for where
    that size is one step, when size 1 takes its own path (a batch of one skips an expand, a length of one a mask)."""

    polynomials: dict[str, Any]
    degrees: dict[str, int]
    minimum: dict[str, int]
    ones: dict[str, Piece | Later]

    @cached_property
    def terms(self) -> dict[str, list[tuple[Fraction, tuple[tuple[str, int], ...]]]]:
        """Each polynomial as exact (coefficient, ((size, power), …)) terms: evaluated in plain Python, far faster
        than sympy's substitution when a sweep asks for many points."""
        import sympy

        found: dict[str, list[tuple[Fraction, tuple[tuple[str, int], ...]]]] = {}
        for metric, expr in self.polynomials.items():
            if not expr.free_symbols:  # a constant (the parameters)
                found[metric] = [(Fraction(int(sympy.Rational(expr).p), int(sympy.Rational(expr).q)), ())]
                continue
            poly = sympy.Poly(expr, *sorted(expr.free_symbols, key=str))
            found[metric] = [(Fraction(int(c.p), int(c.q)), tuple((str(g), k) for g, k in zip(poly.gens, powers,
                                                                                           strict=True) if k))
                             for powers, c in poly.terms()]
        return found

    def lookup(self, sizes: dict[str, int], steps: dict[str, int]) -> Piece:
        for name, piece in self.ones.items():
            if sizes[name] == steps[name]:
                found = piece.piece() if isinstance(piece, Later) else piece
                if found is not None:
                    return found.lookup(sizes, steps)
        return self


@dataclass(frozen=True)
class Evaluated:
    """The costs at one set of sizes, from the polynomials: exact integers, as a direct count would give."""

    sizes: dict[str, int]
    macs: int
    flops: int
    bytes_read: int
    bytes_written: int
    params: int

    @property
    def values(self) -> tuple[int, ...]:
        return tuple(getattr(self, m) for m in METRICS)

    @property
    def bytes(self) -> int:
        return self.bytes_read + self.bytes_written


@dataclass(frozen=True)
class SymbolicReport(Report):
    """A Report of the given inputs, and `formula(metric)`: an exact polynomial in the named sizes (sympy)."""

    variables: tuple[Variable, ...] = ()
    fit: Piece = field(default_factory=lambda: Piece({}, {}, {}, {}))  # the polynomials, and size 1 apart
    counts: int = 0  # how many counts the fit and its checks took
    verified: int = 0  # of them, counts at sizes never used to fit
    traced: int = 0  # sizes costed from the run with symbolic sizes instead of counted (symbolic_trace.py)
    guards: tuple[str, ...] = ()  # the conditions on the sizes that run holds under

    @classmethod
    def from_report(cls, report: Report, variables: tuple[Variable, ...], fit: Piece, counts: int,
                    verified: int, traced: int = 0, guards: tuple[str, ...] = ()) -> SymbolicReport:
        base = {f.name: getattr(report, f.name) for f in fields(Report)}
        return cls(**base, variables=variables, fit=fit, counts=counts, verified=verified, traced=traced,
                   guards=guards)

    @property
    def polynomials(self) -> dict[str, Any]:
        """{metric: sympy expression}, for sizes of 2 steps and more (and size 1 where `fit.ones` says nothing)."""
        return self.fit.polynomials

    def formula(self, metric: str = "macs") -> Any:
        """The exact polynomial of `metric` (macs, flops, bytes_read, bytes_written, bytes, params) as sympy."""
        if metric == "bytes":
            return self.polynomials["bytes_read"] + self.polynomials["bytes_written"]
        if metric not in self.polynomials:
            raise KeyError(f"no formula for {metric!r}; one of {', '.join([*METRICS, 'bytes'])}")
        return self.polynomials[metric]

    def at(self, **sizes: int) -> Evaluated:
        """The costs at these sizes (sizes not named stay as counted): `report.at(batch=8, seq=4096).macs`."""
        known = {v.name: v for v in self.variables}
        unknown = set(sizes) - set(known)
        if unknown:
            raise TypeError(f"at(): no size named {', '.join(sorted(unknown))}; the sizes are {', '.join(known)}")
        chosen = {n: v.check(sizes[n]) if n in sizes else v.counted for n, v in known.items()}
        return self.evaluate(chosen)

    def evaluate(self, sizes: dict[str, int]) -> Evaluated:
        """`at` without the domain check (the fit uses it to verify itself)."""
        piece = self.fit.lookup(sizes, {v.name: v.multiple for v in self.variables})
        result = {}
        for metric in METRICS:
            value = sum((c * math.prod(sizes[n] ** k for n, k in powers) for c, powers in piece.terms[metric]),
                        Fraction(0))
            if value.denominator != 1:
                raise ValueError(f"{LABELS[metric]} at {sizes} is {value}, not an integer: outside the fitted steps")
            result[metric] = int(value)
        return Evaluated(dict(sizes), **result)

    def formula_text(self, metric: str = "macs", piece: Piece | None = None) -> str:
        """`MACs = 1,536·batch·seq² + 24,576·batch·seq`: terms by falling degree, exact coefficients."""
        import sympy

        symbols = [sympy.Symbol(v.name, integer=True, positive=True) for v in self.variables]
        expr = self.formula(metric) if piece is None else piece.polynomials[metric]
        terms = sympy.Poly(expr, *symbols).terms()
        parts: list[str] = []
        for powers, coefficient in sorted(terms, key=lambda t: (-sum(t[0]), [-p for p in t[0]])):
            factors = [v.name + (str(p).translate(_SUPERSCRIPT) if p > 1 else "")
                       for v, p in zip(self.variables, powers, strict=True) if p]
            magnitude = abs(sympy.Rational(coefficient))
            number = f"{int(magnitude):,}" if magnitude.q == 1 else f"{magnitude.p:,}/{magnitude.q:,}"
            text = "·".join(factors if magnitude == 1 and factors else [number, *factors])
            parts.append(("− " if coefficient < 0 else "+ ") + text)
        joined = " ".join(parts).removeprefix("+ ") if parts else "0"
        return f"{LABELS.get(metric, metric)} = {joined}"

    def formulas(self) -> str:
        """The polynomials of every metric, and how they were found and checked."""
        lines = [self.formula_text(m) for m in METRICS]
        steps = {v.name: v.multiple for v in self.variables}

        def apart(piece: Piece, where: str) -> None:
            for name, later in piece.ones.items():
                at = f"{where}, {name} = {steps[name]}".removeprefix(", ")
                if isinstance(later, Later) and later.pending:
                    lines.append(f"at {at}: not counted yet (a size of one step may take its own path); "
                                 f"at({name}={steps[name]}) counts it")
                    continue
                sub = later.piece() if isinstance(later, Later) else later
                if sub is None:
                    continue
                lines.append(f"at {at} (its own path): " + "; ".join(self.formula_text(m, sub) for m in METRICS))
                apart(sub, at)

        apart(self.fit, "")
        domain = ", ".join(f"{v.name} ≥ {v.minimum}" + (f" in steps of {v.multiple}" if v.multiple > 1 else "")
                           for v in self.variables)
        degrees = ", ".join(f"{v.degree} in {v.name}" for v in self.variables)
        checks = _plural(self.verified, "size" if self.traced else "count")
        lines.append(f"exact for {domain}: degree {degrees} (the next finite difference is zero), fitted by exact "
                     f"interpolation and checked against {checks} not used to fit "
                     f"({_plural(self.counts, 'count')} in all)")
        if self.traced:
            held = f", under {', '.join(self.guards)}" if self.guards else ""
            lines.append(f"{_plural(self.traced, 'size')} costed op by op from one run with the sizes symbolic{held} "
                         "(the same ops, each formula at those sizes, as a count there gives)")
        return "\n".join(lines)

    def explain(self, depth: int | None = None, fmt: str = "text") -> str:
        """The polynomials, then the hand calculation of the count at the given inputs."""
        formulas = self.formulas()
        if fmt == "markdown":
            formulas = "\n".join(f"- {line}" for line in formulas.splitlines())
        return formulas + "\n\n" + super().explain(depth=depth, fmt=fmt)

    def __repr__(self) -> str:
        return super().__repr__().removesuffix(")") + f", symbolic={self.formula_text('macs')!r})"


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")
