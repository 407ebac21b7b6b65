"""Convolution of any rank, with stride, padding, dilation, groups and transposition.

Forward:    MACs = N · (output positions) · C_out · (C_in/groups) · (kernel elements)
Transposed: MACs = N · (input positions) · C_in · (C_out/groups) · (kernel elements)
            — every input element is multiplied by each kernel element of its group's output channels.
A bias adds one FLOP per output element and is not a MAC.
"""

from __future__ import annotations

from torch import ops

from ..cost import Flops, Term, Work
from ..registry import formula

aten = ops.aten

_SPATIAL = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


def _spatial_names(rank: int) -> tuple[str, ...]:
    return _SPATIAL.get(rank, tuple(f"S{i}" for i in range(rank)))


def conv_work(x_shape, w_shape, out_shape, transposed: bool, groups: int, has_bias: bool) -> Work:
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
def convolution(result, x, weight, bias, stride, padding, dilation, transposed, output_padding, groups, *rest):
    return conv_work(x.shape, weight.shape, result.shape, bool(transposed), int(groups), bias is not None)


@formula(aten.convolution_backward)
def convolution_backward(result, grad_out, x, weight, bias_sizes, stride, padding, dilation, transposed,
                         output_padding, groups, output_mask):
    # grad_input is the transposed convolution of grad_out, grad_weight correlates input with grad_out:
    # each costs the forward's MACs. The bias gradient is a sum over N and positions.
    forward = conv_work(x.shape, weight.shape, grad_out.shape, bool(transposed), int(groups), False)
    passes = int(output_mask[0]) + int(output_mask[1])
    macs = Term(f"{forward.macs.expr}·passes", passes=passes, **dict(forward.macs.sizes)) if forward.macs else None
    flops: tuple[Flops, ...] = ()
    if output_mask[2]:
        flops = (Flops("reduction", Term("E", E=grad_out.numel())),)
    return Work(macs=macs, dots=forward.dots * passes, flops=flops)
