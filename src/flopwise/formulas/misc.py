"""Embeddings, scatters with arithmetic, losses and FFTs.

An embedding lookup is 0 FLOPs (a gather; its bytes are counted); its gradient adds each output-gradient row
into the weight gradient (1 add per element). Scatters that accumulate (scatter_add, index_add, index_put with
accumulate=True) cost one add per source element; plain scatters are copies. FFTs follow the radix-2
Cooley–Tukey count: 5·N·log₂N per complex transform of N points, half that for real input or output.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from torch import ops

from ..core.cost import Flops, Term, Work
from .registry import TensorSpec, formula
from .shapes import first

aten = ops.aten


@formula(aten.embedding_dense_backward, aten.embedding_backward, aten._embedding_bag_dense_backward)
def embedding_backward(result: TensorSpec, grad: TensorSpec, *args: TensorSpec | int | None, **kwargs: Any) -> Work:
    """One add per output-gradient element (rows scattered into the weight gradient)."""
    return Work(flops=(Flops("scatter_add", Term("E", E=int(grad.numel()))),), note="rows added into the gradient")


@formula(aten._embedding_bag, aten._embedding_bag_forward_only)
def embedding_bag(
    result: tuple[TensorSpec, ...],
    weight: TensorSpec,
    indices: TensorSpec,
    offsets: TensorSpec,
    scale_grad_by_freq: bool = False,
    mode: int = 0,
    sparse: bool = False,
    per_sample_weights: TensorSpec | None = None,
    *args: int | bool,
    **kwargs: Any,
) -> Work:
    """Sum or max of each bag's rows ((I − B)·D adds or compares); mean adds a divide per output (I·D)."""
    out = first(result)
    rows, bags, width = int(indices.numel()), int(out.shape[0]), int(weight.shape[-1])
    expr = "I·D" if int(mode) == 1 else "(I − B)·D"
    flops = [Flops("reduction", Term(expr, I=rows, B=bags, D=width))]
    if per_sample_weights is not None:
        flops.append(Flops("elementwise", Term("I·D", I=rows, D=width)))
    return Work(flops=tuple(flops))


@formula(aten.scatter_add, aten.index_add)
def scatter_add(
    result: TensorSpec, x: TensorSpec, dim: int, index: TensorSpec, src: TensorSpec, *args: Any, **kwargs: Any
) -> Work:
    """One add per source element."""
    return Work(flops=(Flops("scatter_add", Term("E_src", E_src=int(src.numel()))),))


@formula(aten.scatter_reduce, aten.index_reduce)
def scatter_reduce(
    result: TensorSpec,
    x: TensorSpec,
    dim: int,
    index: TensorSpec,
    src: TensorSpec,
    reduce: str = "sum",
    *args: Any,
    **kwargs: Any,
) -> Work:
    """One add (multiply, compare) per source element; mean adds a divide per output."""
    if reduce == "mean":  # the adds, then one divide per output element
        term = Term("E_src + E_out", E_src=int(src.numel()), E_out=int(first(result).numel()))
    else:
        term = Term("E_src", E_src=int(src.numel()))
    return Work(flops=(Flops("scatter_add", term),), note=f"reduce={reduce}")


@formula(aten.index_put, aten._index_put_impl)
def index_put(
    result: TensorSpec,
    x: TensorSpec,
    indices: Sequence[TensorSpec | None],
    values: TensorSpec,
    accumulate: bool = False,
    *args: bool,
    **kwargs: Any,
) -> Work:
    """One add per value when accumulating; otherwise a copy (0)."""
    if not accumulate:
        return Work(note="a scatter: copies values, no arithmetic")
    return Work(flops=(Flops("scatter_add", Term("E_values", E_values=int(values.numel()))),))


@formula(aten.col2im)
def col2im(result: TensorSpec, columns: TensorSpec, *args: Sequence[int], **kwargs: Any) -> Work:
    """One add per column element into its overlapping output position."""
    # every column element is added into its (overlapping) output position
    return Work(flops=(Flops("scatter_add", Term("E_in", E_in=int(columns.numel()))),))


def _fft_work(signal: TensorSpec, dims: Sequence[int], real: bool) -> Work:
    """FFTs over `dims` of `signal` (the complex side of a real transform is the same length)."""
    n = math.prod(int(signal.shape[d]) for d in dims)
    batch = int(signal.numel()) // max(n, 1)
    log_n = math.ceil(math.log2(n)) if n > 1 else 0
    expr = "B·5·N·lg/2" if real else "B·5·N·lg"
    note = "radix-2 Cooley–Tukey count; real transforms cost half of a complex one"
    return Work(flops=(Flops("fft", Term(expr, B=batch, N=n, lg=log_n)),), note=note)


@formula(aten._fft_c2c)
def fft_c2c(result: TensorSpec, x: TensorSpec, dim: Sequence[int], *args: int | bool, **kwargs: Any) -> Work:
    """5·N·log₂N per complex transform of N points (radix-2 Cooley–Tukey)."""
    return _fft_work(x, dim, False)


@formula(aten._fft_r2c)
def fft_r2c(result: TensorSpec, x: TensorSpec, dim: Sequence[int], *args: int | bool, **kwargs: Any) -> Work:
    """Half a complex transform: 2.5·N·log₂N per real transform."""
    return _fft_work(x, dim, True)


@formula(aten._fft_c2r)
def fft_c2r(result: TensorSpec, x: TensorSpec, dim: Sequence[int], *args: int, **kwargs: Any) -> Work:
    """Half a complex transform: 2.5·N·log₂N per real transform."""
    return _fft_work(result, dim, True)


# — losses (those torch does not decompose into ops above) —


_REDUCTIONS = {0: "none", 1: "mean", 2: "sum"}  # torch's loss `reduction` numbers


def _loss(e: int, per_element: int, reduction: int) -> Work:
    """`per_element` FLOPs each; a sum adds E−1 adds, a mean E−1 adds and a divide."""
    how = _REDUCTIONS.get(int(reduction), "mean")
    expr = {"none": "E·c", "mean": "E·c + E", "sum": "E·c + E − 1"}[how]
    return Work(flops=(Flops("loss", Term(expr, E=e, c=per_element)),), note=f"reduction={how}")


def _reduction(args: tuple[Any, ...], kwargs: dict[str, Any], position: int) -> Any:
    return kwargs.get("reduction", args[position] if len(args) > position else 1)


@formula(aten.nll_loss_forward, aten.nll_loss2d_forward)
def nll_loss(
    result: tuple[TensorSpec, ...],
    x: TensorSpec,
    target: TensorSpec,
    weight: TensorSpec | None = None,
    *args: int,
    **kwargs: Any,
) -> Work:
    """1 per target (2 with class weights), plus the sum or mean."""
    per_element = 2 if weight is not None else 1  # negate (and weight) each picked log-probability
    return _loss(int(target.numel()), per_element, _reduction(args, kwargs, 0))


@formula(aten.nll_loss_backward, aten.nll_loss2d_backward)
def nll_loss_backward(
    result: TensorSpec,
    grad: TensorSpec,
    x: TensorSpec,
    target: TensorSpec,
    *args: TensorSpec | int | None,
    **kwargs: Any,
) -> Work:
    """2 per target: −g·w/N."""
    return Work(flops=(Flops("loss_backward", Term("2·E", E=int(target.numel()))),))  # −g·w/N at each target


@formula(aten.mse_loss)
def mse_loss(result: TensorSpec, x: TensorSpec, target: TensorSpec, *args: int, **kwargs: Any) -> Work:
    """2 per element (subtract, square), plus the sum or mean."""
    return _loss(int(x.numel()), 2, _reduction(args, kwargs, 0))  # subtract, square


@formula(aten.mse_loss_backward)
def mse_loss_backward(
    result: TensorSpec, grad: TensorSpec, x: TensorSpec, *args: TensorSpec | int, **kwargs: Any
) -> Work:
    """3 per element: 2·(x − y)·g/N."""
    return Work(flops=(Flops("loss_backward", Term("3·E", E=int(x.numel()))),))  # 2·(x − y)·g/N


@formula(aten.binary_cross_entropy)
def binary_cross_entropy(
    result: TensorSpec, x: TensorSpec, target: TensorSpec, weight: TensorSpec | None = None, *args: int, **kwargs: Any
) -> Work:
    """8 per element (9 with weights), plus the sum or mean."""
    # −(y·log x + (1 − y)·log(1 − x)): 2 logs, 2 subtracts, 2 multiplies, an add, a negate
    return _loss(int(x.numel()), 8 if weight is None else 9, _reduction(args, kwargs, 0))


@formula(aten.binary_cross_entropy_backward)
def binary_cross_entropy_backward(
    result: TensorSpec, grad: TensorSpec, x: TensorSpec, *args: TensorSpec | int | None, **kwargs: Any
) -> Work:
    """5 per element: g·(x − y) / (x·(1 − x))."""
    # g·(x − y) / (x·(1 − x)): 2 subtracts, 2 multiplies, a divide
    return Work(flops=(Flops("loss_backward", Term("5·E", E=int(x.numel()))),))
