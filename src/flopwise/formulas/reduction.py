"""Reductions, scans, sorts and distances.

A reduction of n elements into one output costs n−1 FLOPs (adds, multiplies or compares), so over a whole
tensor FLOPs = E_in − E_out; a mean adds one divide per output (E_in). Variance is 4 per element:
mean (add), centre (subtract), square, add (with the two divides per output folded in: 4n per row).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import ops

from ..core.cost import Flops, Term, Work
from .registry import TensorSpec, formula, zero_cost
from .shapes import INTEGER_NOTE, Output, Scalar, first, floating, is_tensor

aten = ops.aten


def _reduced(x: TensorSpec, result: Output) -> tuple[int, int]:
    """(input elements, output elements) of a reduction; a scalar input reduced to itself is one element."""
    return int(x.numel()), int(first(result).numel())


@formula(aten.sum, aten.nansum, aten.prod, aten.amax, aten.amin, aten.max, aten.min, aten.argmax, aten.argmin)
def reduce(result: Output, x: TensorSpec, *args: Any, **kwargs: Any) -> Work:
    """n−1 adds (or multiplies, or compares) per output of n inputs: E_in − E_out in all."""
    if not floating(x):
        return Work(note=INTEGER_NOTE)
    if args and is_tensor(args[0]):  # max(a, b), min(a, b): elementwise compares
        return Work(flops=(Flops("elementwise", Term("E", E=first(result).numel())),))
    e_in, e_out = _reduced(x, result)
    e_out = min(e_out, e_in)  # an empty input reduces to a value with no arithmetic
    return Work(flops=(Flops("reduction", Term("E_in − E_out", E_in=e_in, E_out=e_out)),))


@formula(aten.aminmax, aten._aminmax)  # _aminmax: the older name of the same kernel
def aminmax(result: tuple[TensorSpec, ...], x: TensorSpec, *args: int | bool, **kwargs: Any) -> Work:
    """Two reductions by compares (min and max): 2·(E_in − E_out)."""
    if not floating(x):
        return Work(note=INTEGER_NOTE)
    e_in, e_out = _reduced(x, result)
    return Work(flops=(Flops("reduction", Term("2·(E_in − E_out)", E_in=e_in, E_out=min(e_out, e_in))),))


@formula(aten.histc)
def histc(result: TensorSpec, x: TensorSpec, bins: int = 100, min: Scalar = 0, max: Scalar = 0, **kwargs: Any) -> Work:
    """6 per element: 2 compares (in range), the bin (x − lo)·bins/(hi − lo) (3), an add into it; with
    min = max the kernel first finds the data's range: 2·(E − 1) compares more."""
    if not floating(x):
        return Work(note=INTEGER_NOTE)
    e = int(x.numel())
    if min == max and e:  # the kernel takes the range from the data: a min and a max reduction
        return Work(flops=(Flops("histogram", Term("6·E + 2·(E − 1)", E=e)),), note="range from the data")
    return Work(flops=(Flops("histogram", Term("6·E", E=e)),))


@formula(aten.mean, aten.nanmean)
def mean(result: TensorSpec, x: TensorSpec, *args: Sequence[int] | bool | None, **kwargs: Any) -> Work:
    """E_in: n−1 adds and one divide per output of n inputs."""
    e_in, e_out = _reduced(x, result)  # (n−1) adds + 1 divide per output
    return Work(flops=(Flops("reduction", Term("E_in", E_in=e_in)),))


@formula(aten.var, aten.var_mean)
def var(result: Output, x: TensorSpec, *args: Sequence[int] | bool | float | None, **kwargs: Any) -> Work:
    """4 per input element: mean, centre, square, sum (the divides folded in: 4n per output)."""
    e_in, _ = _reduced(x, result)  # mean (add), centre, square, add per element; the two divides per row folded
    return Work(flops=(Flops("reduction", Term("4·E_in", E_in=e_in)),))


@formula(aten.std, aten.std_mean)
def std(result: Output, x: TensorSpec, *args: Sequence[int] | bool | None, **kwargs: Any) -> Work:
    """The variance (4 per input element) and one square root per output."""
    e_in, e_out = _reduced(x, result)  # the variance, then one square root per output
    return Work(flops=(Flops("reduction", Term("4·E_in + E_out", E_in=e_in, E_out=e_out)),))


@formula(aten.linalg_vector_norm, aten.norm, aten.native_norm, aten.linalg__powsum)
def vector_norm(
    result: TensorSpec,
    x: TensorSpec,
    ord: float | None = 2,
    *args: Sequence[int] | bool | torch.dtype | None,
    **kwargs: Any,
) -> Work:
    """‖x‖₂: square, add per element (2·E_in − E_out) and a sqrt per output; ‖x‖₁: abs, add; ‖x‖∞: abs, compare;
    other p: abs, pow, add per element and a pow per output."""
    e_in, e_out = _reduced(x, result)
    p = float(ord) if ord is not None else 2.0
    if p in (1.0, math.inf, -math.inf):
        term = Term("2·E_in − E_out", E_in=e_in, E_out=e_out)
    elif p == 2.0:
        term = Term("2·E_in", E_in=e_in)
    else:
        term = Term("3·E_in", E_in=e_in)
    return Work(flops=(Flops("reduction", term),))


@formula(aten.logsumexp)
def logsumexp(result: TensorSpec, x: TensorSpec, *args: Sequence[int] | bool, **kwargs: Any) -> Work:
    """4 per input element: max, subtract, exp, add (the log and the add-back per output folded in)."""
    e_in, e_out = _reduced(x, result)  # max (n−1), subtract n, exp n, add n−1, log 1, add back max 1
    return Work(flops=(Flops("reduction", Term("4·E_in", E_in=e_in)),))


@formula(aten.cumsum, aten.cumprod, aten.cummax, aten.cummin, aten.logcumsumexp, aten._logcumsumexp)
def scan(result: Output, x: TensorSpec, dim: int, *args: Any, **kwargs: Any) -> Work:
    """Each element after the first of its row is one add (multiply, compare): E − E/n."""
    if not floating(x):
        return Work(note=INTEGER_NOTE)
    n = int(x.shape[dim]) if x.dim() else 1
    rows = x.numel() // n if n else 0
    return Work(flops=(Flops("reduction", Term("R·(n − 1)", R=rows, n=n)),))


def _sort_work(rows: int, n: int, k: int) -> Work:
    log_k = max(1, math.ceil(math.log2(k))) if k > 1 else 0
    return Work(
        flops=(Flops("compare", Term("R·n·log_k", R=rows, n=n, log_k=log_k)),),
        note="comparison sort: n·⌈log₂ k⌉ compares per row (k = n for a full sort); the kernel may do fewer",
    )


@formula(aten.sort, aten.argsort)
def sort(result: Output, x: TensorSpec, *args: int | bool, **kwargs: Any) -> Work:
    """n·⌈log₂ n⌉ compares per row (a comparison sort)."""
    dim = kwargs.get("dim", next((a for a in args if isinstance(a, int) and not isinstance(a, bool)), -1))
    n = int(x.shape[dim]) if x.dim() else 1
    return _sort_work(x.numel() // max(n, 1), n, n)


@formula(aten.topk)
def topk(result: tuple[TensorSpec, ...], x: TensorSpec, k: int, dim: int = -1, *args: bool, **kwargs: Any) -> Work:
    """n·⌈log₂ k⌉ compares per row (a heap of k)."""
    n = int(x.shape[dim]) if x.dim() else 1
    return _sort_work(x.numel() // max(n, 1), n, int(k))


@formula(aten.any, aten.all, aten.count_nonzero)
def logical_reduce(result: TensorSpec, x: TensorSpec, *args: Sequence[int] | int | None, **kwargs: Any) -> Work:
    """0: a boolean reduction is not floating point."""
    return Work(note="boolean reduction: no floating-point arithmetic")


@formula(aten._cdist_forward, aten._euclidean_dist)
def cdist(result: TensorSpec, x1: TensorSpec, x2: TensorSpec, *args: float | None, **kwargs: Any) -> Work:
    """For each of the B·P·R pairs of D-vectors: D subtracts, D squares (or |·|^p), D−1 adds, one root."""
    pairs = int(first(result).numel())
    d = int(x1.shape[-1])
    return Work(flops=(Flops("distance", Term("P·3·D", P=pairs, D=d)),))


@formula(aten._pdist_forward)
def pdist(result: TensorSpec, x: TensorSpec, *args: float, **kwargs: Any) -> Work:
    """3·D per pair of D-vectors: subtract, square, add, and a root."""
    return Work(flops=(Flops("distance", Term("P·3·D", P=int(result.numel()), D=int(x.shape[-1]))),))


zero_cost(
    "finds or selects elements by value (no floating-point arithmetic counted)",
    [
        aten.nonzero,
        aten.unique_consecutive,
        aten._unique,
        aten._unique2,
        aten.unique_dim,
        aten.bucketize,
        aten.searchsorted,
        aten.nonzero_static,
        aten.unique_dim_consecutive,
    ],
)


@formula(aten._cummax_helper, aten._cummin_helper)
def cumulative_extreme(
    result: None, x: TensorSpec, values: TensorSpec, indices: TensorSpec, dim: int, *args: Any, **kwargs: Any
) -> Work:
    """The running max (min) kernel: one compare per element after the first of its row."""
    return scan(values, x, dim)


@formula(aten.dist)
def dist(result: TensorSpec, a: TensorSpec, b: TensorSpec, *args: Scalar, **kwargs: Any) -> Work:
    """‖a − b‖ₚ: a subtract per element, then the p-norm's 2 per element (abs or square, add) and a root."""
    e_in = max(int(a.numel()), int(b.numel()))  # the broadcast size
    return Work(flops=(Flops("reduction", Term("3·E_in", E_in=e_in)),))


@formula(aten.allclose)
def allclose(result: bool, a: TensorSpec, b: TensorSpec, *args: float | bool, **kwargs: Any) -> Work:
    """|a − b| ≤ atol + rtol·|b|: subtract, two abs, multiply, add, compare — 6 per element."""
    return Work(flops=(Flops("elementwise", Term("6·E", E=max(int(a.numel()), int(b.numel())))),))
