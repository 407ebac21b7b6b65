"""Costs as exact polynomials in named input sizes: `count(model, inputs, symbolic={"seq": ("input_ids", 1)})`.

A count is a function of the input sizes, and for the models people count it is a polynomial in each size
(linear in batch, quadratic in sequence length through attention) over a region: where a run with the sizes
symbolic holds (trace.py: its guards), or, for a fit by counting, every size it was checked at. We find that
polynomial by exact interpolation with a proof of degree, never by guessing a shape:

1. per size, cost consecutive sizes until the next finite difference is zero twice in a row: the degree;
2. cost the tensor-product grid of those sizes and interpolate with exact rationals (sympy);
3. cost again at sizes never used to fit: inside the trace's region, far out; for a fit by counting, far out, past
   every breakpoint the model shows (its guards, its config's window and position limits) and at a size that is a
   multiple of no power of two (padding). Where they differ, `refused` names the size: no polynomial is given
   (formula() raises SymbolicError), and `at()` still answers every size, from the trace where it holds, else by
   counting (region.py).

Counting is injected (`fit_symbolic(count_at, ...)`), so this module sits beside count.py without importing it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import product
from typing import Any, NamedTuple

from ..report.report import Report
from .region import Costs, SymbolicError, conditions, past, start
from .report import METRICS, Piece, SymbolicReport, Variable
from .sizes import Dim, current_sizes, parse_symbolic, resized
from .trace import Trace

MAX_DEGREE = 4  # attention is 2 in sequence length, a conv 2 in image side; more is not a model we know
FIRST = 2  # fits start at 2 multiples: size 1 often takes its own path (no mask, a squeezed dim), checked apart

Values = tuple[int, ...]  # one count's METRICS, in order
CountAt = Callable[[tuple[Any, ...], dict[str, Any]], Report]


RunTraced = Callable[[tuple[Any, ...], dict[str, Any], Trace], Report]  # one count with a Trace of symbolic sizes


class Traced(NamedTuple):
    """One run with the named sizes symbolic: its trace (the costs at any size where its guards hold, without
    counting again; None where the run cannot stand for other sizes) and its count, which is the given inputs'
    count when they are 2 steps or more (else None). `seen`: the run as far as it went (its guards)."""

    report: Report | None
    trace: Trace | None
    seen: Trace


def trace_run(run: RunTraced, dims: dict[str, Dim], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Traced:
    """The run with symbolic sizes, at the given sizes, or at 2 steps where a given size is smaller (torch never
    makes 0 or 1 symbolic); its trace is None when it broke (the fit then counts each size)."""
    counted = current_sizes(dims, args, kwargs)
    sizes = {n: s if s >= 2 else 2 * dims[n].multiple for n, s in counted.items()}
    trace = Trace(dims)
    try:
        report = run(*resized(dims, sizes, args, kwargs) if sizes != counted else (args, kwargs), trace)
    except Exception:  # noqa: BLE001 - whatever stops it, the plain counts meet it again and say it properly
        return Traced(None, None, trace)
    if not trace.symbolic():
        return Traced(None, None, trace)
    return Traced(report if sizes == counted else None, trace, trace)


def fit_symbolic(
    count_at: CountAt,
    spec: dict[str, Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    run_traced: RunTraced | None = None,
    check_trace: bool = False,
    limits: dict[str, int] | None = None,
) -> SymbolicReport:
    """Count at the given inputs and fit the exact polynomial of every metric in the named sizes, verified. With
    `run_traced`, one run with the sizes symbolic costs every size its guards hold at; `check_trace`: that run, on
    fake tensors for a real count, is used only if it agrees with the given inputs' count in every metric.
    `limits`: sizes where the model's config says costs may change (region.config_limits), checked past."""
    dims = parse_symbolic(spec, args, kwargs)
    names = list(dims)
    counted = current_sizes(dims, args, kwargs)
    run = trace_run(run_traced, dims, args, kwargs) if run_traced is not None else None
    report = (run.report if run is not None and not check_trace else None) or count_at(args, kwargs)
    given = tuple(_metric(report, m) for m in METRICS)
    trace = run.trace if run is not None else None
    if (
        trace is not None
        and check_trace
        and not (trace.holds_at(counted) and (*trace.totals(counted), report.params) == given)
    ):
        trace = None  # the fake run is not what the real one counts: each size is counted

    def count(sizes: dict[str, int]) -> Values:
        return tuple(_metric(count_at(*resized(dims, sizes, args, kwargs)), m) for m in METRICS)

    costs = Costs(names, count, trace, report.params)
    costs.counted[costs.key(counted)] = given
    fitter = _Fitter(dims, costs, conditions(run.seen) if run is not None else [], limits or {})
    on_steps = all(counted[n] % dims[n].multiple == 0 for n in names)
    steps = {n: counted[n] // dims[n].multiple for n in names} if on_steps else None
    top: Piece | None = None
    refused = ""
    try:
        top = fitter.fit({}, steps)
        piece = top.lookup(counted, {n: dims[n].multiple for n in names})
        if on_steps and (trace is None or costs.holds(counted)) and _at(piece, counted) != given:
            raise SymbolicError(f"the fit disagrees with the count at the given inputs ({report.inputs})")
    except _Outside as outside:
        where = ", ".join(f"{n} = {s:,}" for n, s in outside.sizes.items())
        refused = (
            f"the run with symbolic sizes holds only where {', '.join(fitter.guards)}: too few sizes to prove "
            f"a polynomial there ({where} is outside)"
        )
        top = None
    except SymbolicError as error:
        refused, top = " ".join([str(error), *getattr(error, "__notes__", [])]), None
        if trace is None and run is not None and run.seen.guards():
            refused += f" (the run with symbolic sizes, set aside, met the guards {', '.join(run.seen.guards())})"
    variables = tuple(
        Variable(
            n,
            dims[n].where,
            dims[n].multiple,
            top.minimum[n] if top else dims[n].multiple,
            top.degrees[n] if top else 0,
            counted[n],
        )
        for n in names
    )
    return SymbolicReport.from_report(
        report,
        variables,
        top,
        counts=len(costs.counted),
        verified=len(fitter.checked),
        traced=len(costs.traced),
        guards=tuple(fitter.guards),
        refused=refused,
        checks=tuple(fitter.notes),
        unchecked=tuple(fitter.skipped),
        costs=costs,
    )


class _Outside(Exception):
    """A size a traced fit needs lies outside the region where the trace holds."""

    def __init__(self, sizes: dict[str, int]) -> None:
        super().__init__(sizes)
        self.sizes = sizes


class _Fitter:
    """Fits polynomials from the costs at whole steps: from the trace inside its region only, else by counting."""

    def __init__(self, dims: dict[str, Dim], costs: Costs, seen: list[Any], limits: dict[str, int]) -> None:
        self.dims, self.costs, self.seen, self.limits = dims, costs, seen, limits
        self.names = list(dims)
        self.trace = costs.trace
        self.guards = self.trace.guards() if self.trace is not None else []
        self.checked: set[tuple[tuple[str, int], ...]] = set()
        self.notes: list[str] = []  # the sizes checked, and why
        self.skipped: list[str] = []

    def sizes(self, point: dict[str, int]) -> dict[str, int]:
        return {n: k * self.dims[n].multiple for n, k in point.items()}

    def inside(self, point: dict[str, int]) -> bool:
        return self.trace is None or self.costs.holds(self.sizes(point))

    def at(self, point: dict[str, int]) -> Values:
        if not self.inside(point):
            raise _Outside(self.sizes(point))
        return self.costs.at(self.sizes(point))[0]

    def fit(self, fixed: dict[str, int], given: dict[str, int] | None) -> Piece:
        """The polynomials in the names not `fixed` (sizes in steps), fitted, verified; for a fit by counting, size
        1 checked apart. `given`: the inputs' own sizes (steps), counted already: one size alone as far out as the
        check needs is checked there instead of at a new count."""
        import sympy  # an optional dependency: flopwise[symbolic]

        free = [n for n in self.names if n not in fixed]
        if self.trace is not None:  # the region may start above 2 steps (a branch on a size: `seq > 16`)
            hints = {n: self.trace.hints[n] for n in self.names}
            base = start(self.trace, free, {n: self.dims[n].multiple for n in free}, hints, FIRST)
        else:
            base = {n: FIRST for n in free}

        def at_free(point: dict[str, int]) -> Values:
            return self.at({**fixed, **point})

        degrees: dict[str, int] = {}
        for n in free:

            def along(k: int, n: str = n) -> Values:
                return at_free({**base, n: k})

            degrees[n] = _degree(n, self.dims[n].multiple, along, base[n])
        grids = [list(range(base[n], base[n] + degrees[n] + 1)) for n in free]
        symbols = [sympy.Symbol(n, integer=True, positive=True) for n in free]
        polynomials: dict[str, Any] = {}
        for m, metric in enumerate(METRICS):
            total = sympy.Integer(0)
            for point in product(*grids):
                term = sympy.Integer(at_free(dict(zip(free, point, strict=True)))[m])
                for i, k in enumerate(point):  # the tensor-product Lagrange basis, on sizes in units of the step
                    term *= _lagrange(symbols[i] / self.dims[free[i]].multiple, grids[i], k)
                total += term
            polynomials[metric] = sympy.expand(total)

        def check(point: dict[str, int], why: str = "") -> bool:
            sizes = {symbols[i]: point[n] * self.dims[n].multiple for i, n in enumerate(free)}
            self.checked.add(tuple(sorted({**fixed, **point}.items())))
            return tuple(polynomials[m].subs(sizes) for m in METRICS) == at_free(point)

        for far, why in self.checks(free, base, degrees, given):
            try:
                agrees = check(far, why)
            except Exception as error:  # noqa: BLE001 - a size past the model's limits: it does not run there
                if not why:
                    raise
                self.skipped.append(f"{self.where({**fixed, **far})} ({why}: the model raised {type(error).__name__})")
                continue
            if not fixed:
                self.notes.append(self.where(far) + (f" ({why})" if why else ""))
            if not agrees:
                moved = [n for n in free if far[n] != base[n]]
                grid = "; ".join(
                    f"{n} ∈ {{{', '.join(str(k * self.dims[n].multiple) for k in g)}}}"
                    for n, g in zip(free, grids, strict=True)
                )
                raise SymbolicError(
                    f"the counts are not one polynomial in {', '.join(moved)}: fitted at {grid}, the fit disagrees "
                    f"with the count at {self.where({**fixed, **far})}{f' ({why})' if why else ''}. A size that "
                    "switches kernels or pads to a multiple is piecewise: at() counts such sizes directly"
                )
        lowest = base if self.trace is not None else {n: 1 for n in free}  # a fit by counting checks size 1 too
        piece = Piece(polynomials, degrees, {n: lowest[n] * self.dims[n].multiple for n in free}, {})
        if self.trace is None:  # size 1 (one step) often takes its own path (no mask, a squeezed dim)
            for n in free:
                if not fixed:
                    self.notes.append(f"{self.where({**base, n: 1})} (one step: its own path, or the same polynomial)")
                if not check({**base, n: 1}):
                    piece.ones[n] = self.fit({**fixed, n: 1}, None)
        return piece

    def checks(
        self, free: list[str], base: dict[str, int], degrees: dict[str, int], given: dict[str, int] | None
    ) -> list[tuple[dict[str, int], str]]:
        """Sizes never used to fit, with why: each size alone, far out (padding to a multiple hides near the
        grid), inside the trace's region; for a fit by counting, past every breakpoint; then all together."""
        found: list[tuple[dict[str, int], str]] = []
        for n, d in degrees.items():
            last = base[n] + d + 2  # the degree was proven on base … last
            far = next((k for k in range(3 * last + 2, last, -1) if self.inside({**base, n: k})), None)
            if given is not None and len(free) == 1 and far is not None and given[n] >= far and self.inside(given):
                far = given[n]
            if far is not None:
                found.append(({**base, n: far}, ""))
            if self.trace is None:
                sequence = any(axis != 0 for _, axis in self.dims[n].where)
                past_checks, skipped = past(
                    n, self.dims[n].multiple, max(last, far or 0), self.seen, self.limits, sequence
                )
                found += [({**base, n: k}, why) for k, why in past_checks]
                self.skipped += [s for s in skipped if s not in self.skipped]
        together = {n: base[n] + d + 3 for n, d in degrees.items()}
        if len(free) > 1 and self.inside(together):
            found.append((together, ""))
        return found

    def where(self, point: dict[str, int]) -> str:
        return ", ".join(f"{n} = {k * self.dims[n].multiple:,}" for n, k in point.items())


def _at(piece: Piece, sizes: dict[str, int]) -> Values:
    import sympy

    values = {sympy.Symbol(n, integer=True, positive=True): s for n, s in sizes.items()}
    return tuple(int(piece.polynomials[m].subs(values)) for m in METRICS)


def _metric(report: Report, metric: str) -> int:
    return int(getattr(report, metric))


def _degree(name: str, multiple: int, values_at: Callable[[int], Values], first: int = FIRST) -> int:
    """The smallest d whose (d+1)-th finite difference is zero in two consecutive windows, for every metric."""
    seen: list[Values] = []
    for k in range(first, first + MAX_DEGREE + 3):
        seen.append(values_at(k))
        for d in range(len(seen) - 2):
            if _difference(seen[-d - 2 :], d + 1) and _difference(seen[-d - 3 : -1], d + 1):
                return d
    sizes = ", ".join(str(k * multiple) for k in range(first, first + len(seen)))
    raise SymbolicError(
        f"the counts are not a polynomial of degree ≤ {MAX_DEGREE} in {name!r} "
        f"(counted at {name} = {sizes}); at() counts those sizes directly"
    )


def _difference(values: Sequence[Values], order: int) -> bool:
    """Is the `order`-th forward difference of `values` (order + 1 of them) zero in every metric?"""
    rows = [list(v) for v in values]
    for _ in range(order):
        rows = [[b - a for a, b in zip(x, y, strict=True)] for x, y in zip(rows, rows[1:], strict=False)]
    return len(rows) == 1 and all(v == 0 for v in rows[0])


def _lagrange(x: Any, nodes: list[int], node: int) -> Any:
    import sympy

    basis = sympy.Integer(1)
    for other in nodes:
        if other != node:
            basis *= (x - other) / sympy.Integer(node - other)
    return basis
