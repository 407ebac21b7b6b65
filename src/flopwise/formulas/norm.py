"""Normalization layers and their gradients.

Batch norm at inference: 4 FLOPs per element (the guide: subtract, divide, scale, shift), of kind
"bn_inference" so the "fused-bn" convention can fold it into the preceding convolution. In training the
statistics add 4 per element (mean add, centre, square, add) and 8 per channel (two divides, eps, rsqrt,
running-statistics updates). Layer and group norm: 7 per element and 4 per normalized group; RMS norm: 4 per
element and 3 per row (see `costs`). Without an affine weight and bias, 2 FLOPs per element fewer.
Backward: 8 per element for the input gradient, 2 for the weight's, 1 for the bias's.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import prod
from typing import Any

from torch import ops

from ..core.cost import Flops, Term, Work
from . import flops_per_element as costs
from .registry import TensorSpec, formula

aten = ops.aten


def _channels(x: TensorSpec) -> int:
    return int(x.shape[1]) if x.dim() > 1 else 1


def batch_norm_work(x: TensorSpec, training: bool, affine: bool) -> Work:
    e, c = int(x.numel()), _channels(x)
    per_element = costs.BATCH_NORM if affine else costs.BATCH_NORM - 2
    if not training:
        return Work(flops=(Flops("bn_inference", Term("E·c", E=e, c=per_element)),), note="statistics given")
    flops = (
        Flops("norm", Term("E·c", E=e, c=per_element)),
        Flops("norm", Term("E·s + C·k", E=e, s=costs.BN_STATS, C=c, k=costs.BN_PER_CHANNEL)),
    )
    return Work(flops=flops, note="training: batch statistics computed")


@formula(
    aten.native_batch_norm,
    aten._native_batch_norm_legit,
    aten._native_batch_norm_legit_functional,
    aten.cudnn_batch_norm,
    aten.miopen_batch_norm,
)
def batch_norm(
    result: tuple[TensorSpec, ...],
    x: TensorSpec,
    weight: TensorSpec | None,
    bias: TensorSpec | None,
    *args: TensorSpec | bool | float | None,
    **kwargs: Any,
) -> Work:
    """Inference 4 per element (kind bn_inference); training adds 4 per element and 8 per channel."""
    # (running_mean, running_var, training, …) or, for the no_stats overload, (training, momentum, eps)
    flag = next((a for a in args if isinstance(a, bool)), kwargs.get("training", True))
    return batch_norm_work(x, bool(flag), weight is not None)


@formula(aten._native_batch_norm_legit_no_training)
def batch_norm_inference(
    result: tuple[TensorSpec, ...],
    x: TensorSpec,
    weight: TensorSpec | None,
    bias: TensorSpec | None,
    *args: TensorSpec | float,
    **kwargs: Any,
) -> Work:
    """4 per element (the guide), kind bn_inference: folded away by the fused-bn convention."""
    return batch_norm_work(x, False, weight is not None)


@formula(aten._batch_norm_with_update, aten._batch_norm_with_update_functional)
def batch_norm_with_update(
    result: tuple[TensorSpec, ...],
    x: TensorSpec,
    weight: TensorSpec | None,
    bias: TensorSpec | None,
    *args: TensorSpec | float,
    **kwargs: Any,
) -> Work:
    """Training batch norm: 4 + 4 per element and 8 per channel."""
    return batch_norm_work(x, True, weight is not None)


@formula(aten._batch_norm_no_update)
def batch_norm_no_update(
    result: tuple[TensorSpec, ...],
    x: TensorSpec,
    weight: TensorSpec | None,
    bias: TensorSpec | None,
    running_mean: TensorSpec | None,
    *args: TensorSpec | float | None,
    **kwargs: Any,
) -> Work:
    """Inference batch norm when running statistics are given, else training."""
    # without running statistics the batch's own are computed, as in training
    return batch_norm_work(x, running_mean is None, weight is not None)


def norm_backward_work(x: TensorSpec, mask: Sequence[bool]) -> Work:
    e = int(x.numel())
    parts = [
        ("input", costs.NORM_BACKWARD_INPUT),
        ("weight", costs.NORM_BACKWARD_WEIGHT),
        ("bias", costs.NORM_BACKWARD_BIAS),
    ]
    wanted = [part for part, flag in zip(parts, mask, strict=True) if flag]
    flops = tuple(Flops("norm_backward", Term("E·c", E=e, c=cost)) for _, cost in wanted)
    return Work(flops=flops, note="gradients for " + ", ".join(name for name, _ in wanted))


@formula(aten.native_batch_norm_backward, aten.batch_norm_backward)
def batch_norm_backward(
    result: tuple[TensorSpec | None, ...], grad: TensorSpec, x: TensorSpec, *args: Any, **kwargs: Any
) -> Work:
    """Per element: 8 for the input gradient, 2 for the weight's, 1 for the bias's."""
    mask = kwargs.get("output_mask", next((a for a in args if isinstance(a, (list, tuple))), (True,) * 3))
    return norm_backward_work(x, mask)


@formula(aten.cudnn_batch_norm_backward, aten.miopen_batch_norm_backward)
def cudnn_batch_norm_backward(
    result: tuple[TensorSpec, ...], x: TensorSpec, grad: TensorSpec, *args: TensorSpec | float | None, **kwargs: Any
) -> Work:
    """Per element: 8 for the input gradient, 2 for the weight's, 1 for the bias's."""
    return norm_backward_work(x, (True, True, True))


def _grouped_norm(e: int, rows: int, affine: bool, per_element: int, per_row: int) -> Work:
    c = per_element if affine else per_element - 2
    return Work(flops=(Flops("norm", Term("E·c + R·r", E=e, c=c, R=rows, r=per_row)),))


@formula(aten.native_layer_norm)
def layer_norm(
    result: tuple[TensorSpec, ...],
    x: TensorSpec,
    normalized_shape: Sequence[int],
    weight: TensorSpec | None = None,
    bias: TensorSpec | None = None,
    *args: float,
    **kwargs: Any,
) -> Work:
    """7 per element and 4 per normalized row (5 per element without an affine weight and bias)."""
    n = prod(int(s) for s in normalized_shape)
    rows = x.numel() // n if n else 0
    return _grouped_norm(int(x.numel()), rows, weight is not None, costs.LAYER_NORM, costs.LAYER_NORM_ROW)


@formula(aten.native_group_norm)
def group_norm(
    result: tuple[TensorSpec, ...],
    x: TensorSpec,
    weight: TensorSpec | None,
    bias: TensorSpec | None,
    n: int,
    c: int,
    hxw: int,
    group: int,
    *args: float,
    **kwargs: Any,
) -> Work:
    """7 per element and 4 per (sample, group)."""
    return _grouped_norm(
        int(x.numel()), int(n) * int(group), weight is not None, costs.LAYER_NORM, costs.LAYER_NORM_ROW
    )


@formula(aten._fused_rms_norm)
def rms_norm(
    result: tuple[TensorSpec, ...],
    x: TensorSpec,
    normalized_shape: Sequence[int],
    weight: TensorSpec | None = None,
    *args: float | None,
    **kwargs: Any,
) -> Work:
    """4 per element (3 without weight) and 3 per row."""
    n = prod(int(s) for s in normalized_shape)
    rows = x.numel() // n if n else 0
    per_element = costs.RMS_NORM if weight is not None else costs.RMS_NORM - 1
    return Work(
        flops=(Flops("norm", Term("E·c + R·r", E=int(x.numel()), c=per_element, R=rows, r=costs.RMS_NORM_ROW)),)
    )


@formula(aten.native_layer_norm_backward)
def layer_norm_backward(
    result: tuple[TensorSpec | None, ...],
    grad: TensorSpec,
    x: TensorSpec,
    normalized_shape: Sequence[int],
    mean: TensorSpec,
    rstd: TensorSpec,
    weight: TensorSpec | None,
    bias: TensorSpec | None,
    output_mask: Sequence[bool],
    **kwargs: Any,
) -> Work:
    """Per element: 8 for the input gradient, 2 for the weight's, 1 for the bias's."""
    return norm_backward_work(x, output_mask)


@formula(aten.native_group_norm_backward)
def group_norm_backward(
    result: tuple[TensorSpec | None, ...],
    grad: TensorSpec,
    x: TensorSpec,
    mean: TensorSpec,
    rstd: TensorSpec,
    weight: TensorSpec | None,
    n: int,
    c: int,
    hxw: int,
    group: int,
    output_mask: Sequence[bool],
    **kwargs: Any,
) -> Work:
    """Per element: 8 for the input gradient, 2 for the weight's, 1 for the bias's."""
    return norm_backward_work(x, output_mask)


@formula(aten._fused_rms_norm_backward)
def rms_norm_backward(
    result: tuple[TensorSpec | None, ...],
    grad: TensorSpec,
    x: TensorSpec,
    normalized_shape: Sequence[int],
    rstd: TensorSpec,
    weight: TensorSpec | None,
    output_mask: Sequence[bool],
    **kwargs: Any,
) -> Work:
    """Per element: 8 for the input gradient, 2 for the weight's."""
    return norm_backward_work(x, (bool(output_mask[0]), bool(output_mask[1]), False))


@formula(aten._weight_norm_interface)
def weight_norm(result: tuple[TensorSpec, ...], v: TensorSpec, g: TensorSpec, dim: int = 0, **kwargs: Any) -> Work:
    """w = g · v / ‖v‖ per slice: square, add per element, sqrt and divide per slice, multiply per element."""
    return Work(flops=(Flops("norm", Term("3·E + 2·R", E=int(v.numel()), R=int(g.numel()))),))


@formula(aten._weight_norm_interface_backward)
def weight_norm_backward(
    result: tuple[TensorSpec, ...],
    grad_w: TensorSpec,
    v: TensorSpec,
    g: TensorSpec,
    norms: TensorSpec,
    dim: int = 0,
    **kwargs: Any,
) -> Work:
    """6 per weight element and 3 per slice."""
    # grad_g = Σ grad_w·v / ‖v‖ (2 per element); grad_v = g/‖v‖·(grad_w − v·grad_g/‖v‖) (4 per element)
    return Work(flops=(Flops("norm_backward", Term("6·E + 3·R", E=int(v.numel()), R=int(g.numel()))),))
