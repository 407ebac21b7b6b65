"""Costs as exact polynomials in named input sizes: `count(model, inputs, symbolic={"seq": ("input_ids", 1)})`.

A count is a function of the input sizes, and for the models people count it is a polynomial in each size
(linear in batch, quadratic in sequence length through attention). We find that polynomial by exact
interpolation with a proof of degree, never by guessing a shape:

1. per size, count at consecutive sizes until the next finite difference is zero twice in a row: the degree;
2. count on the tensor-product grid of those sizes and interpolate with exact rationals (sympy);
3. count again at sizes never used to fit, and raise `SymbolicError` naming the size when any count differs
   (a size that switches kernels or pads to a multiple is piecewise, not one polynomial); the given inputs, counted
   anyway, serve as that check when they lie far enough out (a sweep from one count at S = 4096).

The sizes come from one run with them symbolic where it can stand for them (symbolic_trace.py), else from counts.
Counting is injected (`fit_symbolic(count_at, ...)`), so this module sits beside count.py without importing it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import product
from typing import Any, NamedTuple

import torch

from ..report.report import Report
from .report import METRICS, Later, Piece, SymbolicReport, Variable
from .trace import Trace

MAX_DEGREE = 4  # attention is 2 in sequence length, a conv 2 in image side; more is not a model we know
FIRST = 2  # fits start at 2 multiples: size 1 often takes its own path (no mask, a squeezed dim), checked apart

Where = tuple[str | int, int]  # (keyword name or positional index of an input, dimension)
Values = tuple[int, ...]  # one count's METRICS, in order
CountAt = Callable[[tuple[Any, ...], dict[str, Any]], Report]


RunTraced = Callable[[tuple[Any, ...], dict[str, Any], Trace], Report]  # one count with a Trace of symbolic sizes


class Traced(NamedTuple):
    """One run with the named sizes symbolic: its trace (the costs at any size where its guards hold, without
    counting again) and its count, which is the given inputs' count when they are 2 steps or more (else None)."""

    report: Report | None
    trace: Trace


def trace_run(run: RunTraced, dims: dict[str, Dim], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Traced | None:
    """The run with symbolic sizes, at the given sizes, or at 2 steps where a given size is smaller (torch never
    makes 0 or 1 symbolic); None when it cannot be made (the fit then counts each size)."""
    counted = current_sizes(dims, args, kwargs)
    sizes = {n: s if s >= 2 else 2 * dims[n].multiple for n, s in counted.items()}
    trace = Trace(dims)
    try:
        report = run(*resized(dims, sizes, args, kwargs) if sizes != counted else (args, kwargs), trace)
    except Exception:  # noqa: BLE001 - whatever stops it, the plain counts meet it again and say it properly
        return None
    if not trace.symbolic():
        return None
    return Traced(report if sizes == counted else None, trace)


class SymbolicError(ValueError):
    """The counts are not one polynomial in a named size (or the size was named wrongly)."""


@dataclass(frozen=True)
class Dim:
    """What one named size labels: dimensions of inputs, given as (input, dim) pairs, sampled at multiples of
    `multiple` (a ViT's image side moves by whole patches: `Dim((0, 2), (0, 3), multiple=16)`)."""

    where: tuple[Where, ...]
    multiple: int = 1

    def __init__(self, *where: Where | int, multiple: int = 1) -> None:
        if multiple < 1:
            raise SymbolicError(f"Dim: multiple must be a positive integer, got {multiple}")
        object.__setattr__(self, "where", tuple((0, w) if isinstance(w, int) else w for w in where))
        object.__setattr__(self, "multiple", multiple)


def parse_symbolic(spec: dict[str, Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Dim]:
    """{name: Dim}; a value is a Dim, an (input, dim) pair, a list of pairs, or a bare dim of a single input."""
    if not spec:
        raise SymbolicError("symbolic= names no size; e.g. symbolic={'batch': 0} or {'seq': ('input_ids', 1)}")
    single = len(args) == 1 and not kwargs
    dims: dict[str, Dim] = {}
    for name, value in spec.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise SymbolicError(f"symbolic= size names must be identifiers like 'seq', got {name!r}")
        entries = value.where if isinstance(value, Dim) else value if isinstance(value, list) else [value]
        where: list[Where] = []
        for entry in entries:
            if isinstance(entry, int) and not isinstance(entry, bool):
                if not single:
                    raise SymbolicError(f"symbolic={{{name!r}: {entry}}}: a bare dimension needs a single input "
                                        f"tensor; name the input: ({next(iter(kwargs), 0)!r}, {entry})")
                entry = (0, entry)
            if not (isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[1], int)):
                raise SymbolicError(f"symbolic={{{name!r}: {value!r}}}: expected (input, dim), e.g. ('input_ids', 1)")
            _tensor_at(args, kwargs, entry, name)  # fails early, naming the input
            where.append(entry)
        dims[name] = Dim(*where, multiple=value.multiple if isinstance(value, Dim) else 1)
    return dims


def _tensor_at(args: tuple[Any, ...], kwargs: dict[str, Any], where: Where, name: str) -> torch.Tensor:
    key, dim = where
    found = kwargs.get(key) if isinstance(key, str) else args[key] if -len(args) <= key < len(args) else None
    if not isinstance(found, torch.Tensor):
        inputs = [*range(len(args)), *kwargs]
        raise SymbolicError(f"symbolic size {name!r}: input {key!r} is not a tensor input of this call "
                            f"(inputs: {inputs})")
    if not -found.dim() <= dim < found.dim():
        raise SymbolicError(f"symbolic size {name!r}: input {key!r} has {found.dim()} dimensions, no dimension {dim}")
    return found


def current_sizes(dims: dict[str, Dim], args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for name, dim in dims.items():
        seen = {int(_tensor_at(args, kwargs, w, name).shape[w[1]]) for w in dim.where}
        if len(seen) > 1:
            raise SymbolicError(f"symbolic size {name!r} labels dimensions of different sizes {sorted(seen)}")
        sizes[name] = seen.pop()
    return sizes


def resized(
    dims: dict[str, Dim], sizes: dict[str, int], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The inputs with each labelled dimension at its new size: the data is tiled along it, so token ids stay
    valid ids and masks stay masks (only the shape matters to a count)."""
    new_args, new_kwargs = list(args), dict(kwargs)
    for name, dim in dims.items():
        for key, axis in dim.where:
            source: Any = new_kwargs if isinstance(key, str) else new_args
            t: torch.Tensor = source[key]
            index = torch.arange(sizes[name], device=t.device) % t.shape[axis]
            source[key] = t.index_select(axis, index)
    return tuple(new_args), new_kwargs


def fit_symbolic(
    count_at: CountAt, spec: dict[str, Any], args: tuple[Any, ...], kwargs: dict[str, Any],
    run_traced: RunTraced | None = None, check_trace: bool = False,
) -> SymbolicReport:
    """Count at the given inputs, fit the exact polynomial of every metric in the named sizes, verify it. With
    `run_traced`, one run with the sizes symbolic costs every size its guards hold at; `check_trace`: that run, on
    fake tensors for a real count, is used only if it agrees with the given inputs' count in every metric."""
    dims = parse_symbolic(spec, args, kwargs)
    traced = trace_run(run_traced, dims, args, kwargs) if run_traced is not None else None
    names = list(dims)
    counted = current_sizes(dims, args, kwargs)
    cache: dict[Values, Values] = {}
    from_trace: set[Values] = set()

    def at(point: Sequence[int]) -> Values:  # point: sizes in units of each Dim's multiple
        key = tuple(point)
        if key not in cache:
            sizes = {n: k * dims[n].multiple for n, k in zip(names, key, strict=True)}
            if traced is not None and traced.trace.holds_at(sizes):
                cache[key] = (*traced.trace.totals(sizes), params)
                from_trace.add(key)
            else:
                report = count_at(*resized(dims, sizes, args, kwargs))
                cache[key] = tuple(_metric(report, m) for m in METRICS)
        return cache[key]

    given_count = traced.report if traced is not None and not check_trace else None  # check_trace: a real count
    report = given_count or count_at(args, kwargs)
    params = report.params  # the parameters do not change with the sizes
    if traced is not None and check_trace and not (traced.trace.holds_at(counted) and (
            *traced.trace.totals(counted), params) == tuple(_metric(report, m) for m in METRICS)):
        traced = None  # the fake run is not what the real one counts: each size is counted
    given = None  # the given inputs in steps, when they lie on the steps: a count already made, checked free
    if all(counted[n] % dims[n].multiple == 0 for n in names):
        given = {n: counted[n] // dims[n].multiple for n in names}
        cache[tuple(given[n] for n in names)] = tuple(_metric(report, m) for m in METRICS)
    checked: set[tuple[tuple[str, int], ...]] = set()
    try:
        top = _fit(names, dims, lambda ks: at([ks[n] for n in names]), {}, checked, given, lazy=traced is not None)
    except SymbolicError as error:
        if traced is not None and traced.trace.guards():
            error.add_note(f"the run with symbolic sizes holds under {', '.join(traced.trace.guards())}")
        raise
    variables = tuple(
        Variable(n, dims[n].where, dims[n].multiple, top.minimum[n], top.degrees[n], counted[n]) for n in names
    )
    counts = len(cache) - len(from_trace) + (given is None)
    guards = tuple(traced.trace.guards()) if traced is not None and from_trace else ()
    result = SymbolicReport.from_report(report, variables, top, counts=counts, verified=len(checked),
                                       traced=len(from_trace), guards=guards)
    if all(counted[n] % dims[n].multiple == 0 for n in names):  # one more check, free: the given inputs
        if result.evaluate(counted).values != tuple(_metric(report, m) for m in METRICS):
            raise SymbolicError(f"the fit disagrees with the count at the given inputs ({report.inputs})")
    return result


def _fit(
    names: list[str], dims: dict[str, Dim], at: Callable[[dict[str, int]], Values], fixed: dict[str, int],
    checked: set[tuple[tuple[str, int], ...]], given: dict[str, int] | None = None, lazy: bool = False,
) -> Piece:
    """The polynomials in the names not `fixed` (sizes in steps), fitted, verified, with size 1 checked apart.
    `given`: the inputs' own sizes (steps), counted already; one size alone as far out as the check needs is
    checked there instead of at a new count."""
    import sympy  # an optional dependency: flopwise[symbolic]

    free = [n for n in names if n not in fixed]
    base = {n: FIRST for n in free}

    def at_free(point: dict[str, int]) -> Values:
        return at({**fixed, **point})

    degrees: dict[str, int] = {}
    for n in free:
        def along(k: int, n: str = n) -> Values:
            return at_free({**base, n: k})

        degrees[n] = _degree(n, dims[n].multiple, along)
    grids = [list(range(FIRST, FIRST + degrees[n] + 1)) for n in free]
    symbols = [sympy.Symbol(n, integer=True, positive=True) for n in free]
    polynomials: dict[str, Any] = {}
    for m, metric in enumerate(METRICS):
        total = sympy.Integer(0)
        for point in product(*grids):
            term = sympy.Integer(at_free(dict(zip(free, point, strict=True)))[m])
            for i, k in enumerate(point):  # the tensor-product Lagrange basis, on sizes in units of the step
                term *= _lagrange(symbols[i] / dims[free[i]].multiple, grids[i], k)
            total += term
        polynomials[metric] = sympy.expand(total)

    def check(point: dict[str, int]) -> bool:
        sizes = {symbols[i]: point[n] * dims[n].multiple for i, n in enumerate(free)}
        checked.add(tuple(sorted({**fixed, **point}.items())))
        return tuple(polynomials[m].subs(sizes) for m in METRICS) == at_free(point)

    # each size alone, far out (padding to a multiple hides near the grid), then all together, off every axis
    verify = [{**base, n: 3 * (FIRST + d + 2) + 2} for n, d in degrees.items()]
    if given is not None and len(free) == 1 and given[free[0]] >= verify[0][free[0]]:
        verify = [given]
    verify += [{n: FIRST + d + 3 for n, d in degrees.items()}] if len(free) > 1 else []
    for far in verify:
        if not check(far):
            where = ", ".join(f"{n} = {k * dims[n].multiple}" for n, k in {**fixed, **far}.items())
            moved = [n for n in free if far[n] != base[n]]
            grid = "; ".join(f"{n} ∈ {{{', '.join(str(k * dims[n].multiple) for k in g)}}}"
                             for n, g in zip(free, grids, strict=True))
            raise SymbolicError(
                f"the counts are not one polynomial in {', '.join(moved)}: fitted at {grid}, the fit disagrees with "
                f"the count at {where}. A size that switches kernels or pads to a multiple is piecewise: count "
                f"those sizes directly, or sample whole steps with Dim(..., multiple=N)"
            )
    piece = Piece(polynomials, degrees, {n: dims[n].multiple for n in free}, {})
    for n in free:  # size 1 (one step) often takes its own path (no mask, a squeezed dim): its own polynomial
        def own(n: str = n) -> Piece | None:
            return None if check({**base, n: 1}) else _fit(names, dims, at, {**fixed, n: 1}, checked, lazy=lazy)

        if lazy:  # counted when asked: a traced fit needs no count but the given one
            piece.ones[n] = Later(own)
        else:
            found = own()
            if found is not None:
                piece.ones[n] = found
    return piece


def _metric(report: Report, metric: str) -> int:
    return int(getattr(report, metric))


def _degree(name: str, multiple: int, values_at: Callable[[int], Values]) -> int:
    """The smallest d whose (d+1)-th finite difference is zero in two consecutive windows, for every metric."""
    seen: list[Values] = []
    for k in range(FIRST, FIRST + MAX_DEGREE + 3):
        seen.append(values_at(k))
        for d in range(len(seen) - 2):
            if _difference(seen[-d - 2:], d + 1) and _difference(seen[-d - 3:-1], d + 1):
                return d
    sizes = ", ".join(str(k * multiple) for k in range(FIRST, FIRST + len(seen)))
    raise SymbolicError(f"the counts are not a polynomial of degree ≤ {MAX_DEGREE} in {name!r} "
                        f"(counted at {name} = {sizes}); count those sizes directly")


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
