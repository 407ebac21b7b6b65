"""Convolution of any rank, with stride, padding, dilation, groups and transposition.

Forward:    MACs = N · (output positions) · C_out · (C_in/groups) · (kernel elements)
Transposed: MACs = N · (input positions) · C_in · (C_out/groups) · (kernel elements)
            — every input element is multiplied by each kernel element of its group's output channels.
A bias adds one FLOP per output element and is not a MAC.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import ops

from ..core.cost import Flops, Term, Work
from .registry import TensorSpec, formula

aten = ops.aten

_SPATIAL = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


def _spatial_names(rank: int) -> tuple[str, ...]:
    return _SPATIAL.get(rank, tuple(f"S{i}" for i in range(rank)))


def conv_work(
    x_shape: Sequence[int],
    w_shape: Sequence[int],
    out_shape: Sequence[int],
    transposed: bool,
    groups: int,
    has_bias: bool,
) -> Work:
    rank = len(w_shape) - 2
    names = _spatial_names(rank)
    kernel_names = tuple(f"K_{n.lower()}" if rank <= 3 else f"K{i}" for i, n in enumerate(names))
    sizes = {k: int(v) for k, v in zip(kernel_names, w_shape[2:], strict=True)}
    n, c_out = int(out_shape[0]), int(out_shape[1])
    c_in = int(x_shape[1])
    kernel = "·".join(kernel_names)
    if transposed:  # positions of the input are the ones each kernel element visits
        positions = tuple(f"{p}_in" for p in names)
        sizes.update(zip(positions, (int(v) for v in x_shape[2:]), strict=True))
        expr = f"{'·'.join(positions)}·{kernel}·C_in·(C_out/groups)·N"
    else:
        positions = tuple(f"{p}_out" for p in names)
        sizes.update(zip(positions, (int(v) for v in out_shape[2:]), strict=True))
        expr = f"{'·'.join(positions)}·{kernel}·(C_in/groups)·C_out·N"
    macs = Term(expr, C_in=c_in, C_out=c_out, groups=groups, N=n, **sizes)
    out_positions = 1
    for v in out_shape[2:]:
        out_positions *= int(v)
    flops: tuple[Flops, ...] = ()
    if has_bias:
        flops = (Flops("bias", Term("N·C_out·P_out", N=n, C_out=c_out, P_out=out_positions)),)
    return Work(macs=macs, dots=n * c_out * out_positions, flops=flops)


@formula(aten.convolution, aten._convolution)
def convolution(
    result: TensorSpec,
    x: TensorSpec,
    weight: TensorSpec,
    bias: TensorSpec | None,
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
    transposed: bool,
    output_padding: Sequence[int],
    groups: int,
    *rest: bool,
) -> Work:
    return conv_work(x.shape, weight.shape, result.shape, bool(transposed), int(groups), bias is not None)


@formula(aten.convolution_backward)
def convolution_backward(
    result: tuple[TensorSpec | None, ...],
    grad_out: TensorSpec,
    x: TensorSpec,
    weight: TensorSpec,
    bias_sizes: Sequence[int] | None,
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
    transposed: bool,
    output_padding: Sequence[int],
    groups: int,
    output_mask: Sequence[bool],
) -> Work:
    # grad_input is the transposed convolution of grad_out, grad_weight correlates input with grad_out:
    # each costs the forward's MACs. The bias gradient is a sum over N and positions.
    forward = conv_work(x.shape, weight.shape, grad_out.shape, bool(transposed), int(groups), False)
    passes = int(output_mask[0]) + int(output_mask[1])
    macs = Term(f"{forward.macs.expr}·passes", passes=passes, **dict(forward.macs.sizes)) if forward.macs else None
    flops: tuple[Flops, ...] = ()
    if output_mask[2]:
        flops = (Flops("reduction", Term("E", E=grad_out.numel())),)
    return Work(macs=macs, dots=forward.dots * passes, flops=flops)


# — device- and algorithm-specific convolution kernels: the same MACs, read from the shapes alone —


def _from_shapes(x: TensorSpec, weight: TensorSpec, out: TensorSpec, transposed: bool, bias: TensorSpec | None) -> Work:
    """Groups follow from the shapes: C_in / weight.shape[1] (C_out / weight.shape[1] when transposed)."""
    groups = int(out.shape[1] if transposed else x.shape[1]) // max(int(weight.shape[1]), 1)
    return conv_work(x.shape, weight.shape, out.shape, transposed, groups, bias is not None)


def _bias(args: tuple[Any, ...]) -> TensorSpec | None:
    """The bias: the first 1-d tensor among the arguments after the weight (kernels order them differently)."""
    return next((a for a in args if hasattr(a, "shape") and len(a.shape) == 1), None)


@formula(
    aten.cudnn_convolution,
    aten.miopen_convolution,
    aten.miopen_depthwise_convolution,
    aten.mkldnn_convolution,
    aten._mps_convolution,
    aten._nnpack_spatial_convolution,
    aten._conv_depthwise2d,
    aten.conv_depthwise3d,
    aten.slow_conv_dilated2d,
    aten.slow_conv_dilated3d,
    aten._slow_conv2d_forward,
    aten.slow_conv3d_forward,
)
def backend_convolution(
    result: TensorSpec | tuple[TensorSpec, ...], x: TensorSpec, weight: TensorSpec, *args: Any, **kwargs: Any
) -> Work:
    """The convolution's MACs (above), groups read from the shapes; a bias adds 1 per output."""
    out = result[0] if isinstance(result, (tuple, list)) else result
    return _from_shapes(x, weight, out, False, _bias(args))


@formula(
    aten.cudnn_convolution_transpose,
    aten.miopen_convolution_transpose,
    aten._mps_convolution_transpose,
    aten.slow_conv_transpose2d,
    aten.slow_conv_transpose3d,
)
def backend_convolution_transpose(
    result: TensorSpec, x: TensorSpec, weight: TensorSpec, *args: Any, **kwargs: Any
) -> Work:
    """The transposed convolution's MACs (above), groups read from the shapes."""
    return _from_shapes(x, weight, result, True, _bias(args))


@formula(
    aten.cudnn_convolution_relu,
    aten.miopen_convolution_relu,
    aten.cudnn_convolution_add_relu,
    aten.miopen_convolution_add_relu,
)
def convolution_relu(result: TensorSpec, x: TensorSpec, weight: TensorSpec, *args: Any, **kwargs: Any) -> Work:
    """The convolution's MACs, its bias, an add of z (the _add_ variants) and a ReLU compare per output."""
    added = next((a for a in args if hasattr(a, "shape") and len(a.shape) == len(x.shape)), None)
    work = _from_shapes(x, weight, result, False, _bias(args))
    extra = Term("E·c", E=result.numel(), c=1 + int(added is not None))
    return Work(work.macs, work.dots, work.flops + (Flops("activation", extra),))


formula(aten.convolution_overrideable)(convolution)  # the same arguments as aten.convolution


@formula(aten.conv_tbc)
def conv_tbc(
    result: TensorSpec, x: TensorSpec, weight: TensorSpec, bias: TensorSpec, *args: int, **kwargs: Any
) -> Work:
    """Time-major 1-d convolution, input (T, B, C_in), weight (K, C_in, C_out): T_out·B·C_out·K·C_in MACs."""
    k, c_in = int(weight.shape[0]), int(weight.shape[1])
    e_out = int(result.numel())
    return Work(
        macs=Term("E_out·K·C_in", E_out=e_out, K=k, C_in=c_in),
        dots=e_out,
        flops=(Flops("bias", Term("E_out", E_out=e_out)),),
    )


@formula(aten.convolution_backward_overrideable)
def convolution_backward_overrideable(
    result: tuple[TensorSpec | None, ...],
    grad_out: TensorSpec,
    x: TensorSpec,
    weight: TensorSpec,
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
    transposed: bool,
    output_padding: Sequence[int],
    groups: int,
    output_mask: Sequence[bool],
) -> Work:
    """As aten.convolution_backward: the forward's MACs for each of grad_input and grad_weight asked for."""
    return convolution_backward(
        result, grad_out, x, weight, None, stride, padding, dilation, transposed, output_padding, groups, output_mask
    )


@formula(aten._slow_conv2d_backward)
def slow_conv2d_backward(
    result: tuple[TensorSpec | None, ...],
    grad_out: TensorSpec,
    x: TensorSpec,
    weight: TensorSpec,
    kernel_size: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[int],
    output_mask: Sequence[bool] = (True,) * 3,
    **kwargs: Any,
) -> Work:
    """As aten.convolution_backward (groups 1, dilation 1)."""
    return convolution_backward(
        result, grad_out, x, weight, None, stride, padding, [1, 1], False, [0, 0], 1, output_mask
    )
