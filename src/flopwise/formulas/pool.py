"""Pooling, adaptive pooling and their gradients.

Max pooling: K−1 compares per output, K the kernel's element count (dilation changes positions, not K).
Average pooling: K+1 per output (the guide: K adds into the sum, as it counts them, and one divide).
Adaptive pooling has windows of varying size: for an output i of a dim of size In → Out the window is
[⌊i·In/Out⌋, ⌈(i+1)·In/Out⌉); the windows' sizes multiply across dims, so the total window elements are
W = Π_d Σ_i w_{d,i}; adaptive average costs W (w−1 adds and a divide per output of window w, as `mean`,
which torch runs for a global average pool), adaptive max W − P (w−1 compares per output).
Gradients: max pooling routes each output gradient to one input (1 add each); average pooling spreads it,
divided once, over its window (K+1 per output, as the forward).
"""

from __future__ import annotations

from math import prod
from typing import Any

from torch import ops

from ..core.cost import Flops, Term, Work
from .registry import Formula, TensorSpec, formula
from .shapes import Output, first

aten = ops.aten


def _kernel(kernel_size: int | list[int] | tuple[int, ...], rank: int) -> int:
    """Kernel elements; a single size stands for every one of the `rank` spatial dims."""
    sizes = [int(k) for k in kernel_size] if isinstance(kernel_size, (list, tuple)) else [int(kernel_size)]
    return prod(sizes * rank if len(sizes) == 1 else sizes)


def _max_pool(rank: int) -> Formula:
    def fn(
        result: Output, x: TensorSpec, kernel_size: int | list[int] | tuple[int, ...], *args: Any, **kwargs: Any
    ) -> Work:
        outputs = int(first(result).numel())
        return Work(flops=(Flops("pool", Term("P·(K−1)", P=outputs, K=_kernel(kernel_size, rank))),))

    fn.__doc__ = f"max pooling ({rank}d): K−1 compares per output"
    return fn


def _avg_pool(rank: int) -> Formula:
    def fn(
        result: TensorSpec, x: TensorSpec, kernel_size: int | list[int] | tuple[int, ...], *args: Any, **kwargs: Any
    ) -> Work:
        outputs = int(first(result).numel())
        return Work(flops=(Flops("pool", Term("P·(K+1)", P=outputs, K=_kernel(kernel_size, rank))),))

    fn.__doc__ = f"average pooling ({rank}d): K+1 per output (the guide's count)"
    return fn


def _avg_pool_backward(rank: int) -> Formula:
    def fn(
        result: TensorSpec,
        grad: TensorSpec,
        x: TensorSpec,
        kernel_size: int | list[int] | tuple[int, ...],
        *args: Any,
        **kwargs: Any,
    ) -> Work:
        k = _kernel(kernel_size, rank)
        return Work(flops=(Flops("pool_backward", Term("P·(K+1)", P=int(grad.numel()), K=k)),))

    fn.__doc__ = f"average pooling gradient ({rank}d): one divide and K adds per output gradient"
    return fn


formula(aten.max_pool1d, aten.max_pool1d_with_indices)(_max_pool(1))
formula(aten.fractional_max_pool2d)(_max_pool(2))  # pseudo-random regions of the kernel's size
formula(aten.fractional_max_pool3d)(_max_pool(3))
formula(aten.max_pool2d, aten.max_pool2d_with_indices, aten.mkldnn_max_pool2d)(_max_pool(2))
formula(aten.max_pool3d, aten.max_pool3d_with_indices, aten.mkldnn_max_pool3d)(_max_pool(3))
formula(aten.avg_pool1d)(_avg_pool(1))
formula(aten.avg_pool2d)(_avg_pool(2))
formula(aten.avg_pool3d)(_avg_pool(3))
formula(aten.avg_pool2d_backward)(_avg_pool_backward(2))
formula(aten.avg_pool3d_backward)(_avg_pool_backward(3))


@formula(
    aten.max_pool2d_with_indices_backward,
    aten.max_pool3d_with_indices_backward,
    aten.max_pool2d_backward,
    aten.mkldnn_max_pool2d_backward,
    aten.mkldnn_max_pool3d_backward,
    aten.fractional_max_pool2d_backward,
    aten.fractional_max_pool3d_backward,
)
def max_pool_backward(result: TensorSpec, grad: TensorSpec, *args: Any, **kwargs: Any) -> Work:
    """One add per output gradient, routed to its argmax."""
    return Work(flops=(Flops("pool_backward", Term("P", P=int(grad.numel()))),))


def window_elements(in_sizes: tuple[int, ...], out_sizes: tuple[int, ...]) -> int:
    """Π over dims of the summed adaptive-window sizes (see the module docstring)."""
    total = 1
    for size_in, size_out in zip(in_sizes, out_sizes, strict=True):
        total *= sum(-((-(i + 1) * size_in) // size_out) - (i * size_in) // size_out for i in range(size_out))
    return total


def _adaptive(x: TensorSpec, out: TensorSpec, rank: int) -> tuple[int, int, int]:
    """(planes, window elements per plane, outputs) of adaptive pooling over the last `rank` dims."""
    spatial_in = tuple(int(s) for s in x.shape[-rank:])
    spatial_out = tuple(int(s) for s in out.shape[-rank:])
    planes = int(out.numel()) // max(prod(spatial_out), 1)
    return planes, window_elements(spatial_in, spatial_out), int(out.numel())


def _adaptive_pool(rank: int, kind: str, expr: str, grad_first: bool = False) -> Formula:

    def fn(result: Output, a: TensorSpec, b: Any, *args: Any, **kwargs: Any) -> Work:
        x, out = (b, a) if grad_first else (a, first(result))  # a backward gets (grad, input)
        planes, window, outputs = _adaptive(x, out, rank)
        return Work(flops=(Flops(kind, Term(expr, N=planes, W=window, P=outputs)),))

    fn.__doc__ = f"adaptive pooling ({rank}d): {expr}, W the summed window elements per plane"
    return fn


formula(aten.adaptive_avg_pool1d)(_adaptive_pool(1, "pool", "N·W"))
formula(aten._adaptive_avg_pool2d, aten.adaptive_avg_pool2d, aten.mkldnn_adaptive_avg_pool2d)(
    _adaptive_pool(2, "pool", "N·W")
)
formula(aten._adaptive_avg_pool3d, aten.adaptive_avg_pool3d)(_adaptive_pool(3, "pool", "N·W"))
formula(aten.adaptive_max_pool1d)(_adaptive_pool(1, "pool", "N·W − P"))
formula(aten.adaptive_max_pool2d)(_adaptive_pool(2, "pool", "N·W − P"))
formula(aten.adaptive_max_pool3d)(_adaptive_pool(3, "pool", "N·W − P"))
formula(aten._adaptive_avg_pool2d_backward)(_adaptive_pool(2, "pool_backward", "N·W", grad_first=True))
formula(aten._adaptive_avg_pool3d_backward, aten.adaptive_avg_pool3d_backward)(
    _adaptive_pool(3, "pool_backward", "N·W", grad_first=True)
)


@formula(aten.adaptive_max_pool2d_backward, aten.adaptive_max_pool3d_backward)
def adaptive_max_pool_backward(result: TensorSpec, grad: TensorSpec, *args: TensorSpec, **kwargs: Any) -> Work:
    """One add per output gradient, routed to its argmax."""
    return Work(flops=(Flops("pool_backward", Term("P", P=int(grad.numel()))),))


@formula(aten.mkldnn_adaptive_avg_pool2d_backward)
def mkldnn_adaptive_avg_pool_backward(
    result: TensorSpec, grad: TensorSpec, x: TensorSpec, *args: Any, **kwargs: Any
) -> Work:
    """As the adaptive average pooling gradient: N·W, W the summed window elements per plane."""
    planes, window, outputs = _adaptive(x, grad, 2)
    return Work(flops=(Flops("pool_backward", Term("N·W", N=planes, W=window)),))
