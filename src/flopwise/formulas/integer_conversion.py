"""Quantization to and from integer tensors (PyTorch's quantized dtypes qint8, quint8, qint32, …).

Affine quantization maps each element q = clamp(round(x / scale) + zero_point, q_min, q_max): a multiply by
1/scale, a round, an add, two compares (5 FLOPs); dequantization x = (q − zero_point)·scale is a subtract and
a multiply (2), done in floating point. Per-channel forms do the same per element with their channel's scale.

Torch has no fake or meta quantized tensors (on fake tensors `quantize_per_tensor` returns a float tensor, and
allocating a quantized one raises): the ops that make one are `real_only`, so a shape-only count of a statically
quantized model counts again in real mode, with a warning, and gives the real count.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import ops

from ..core.cost import Flops, Term, Work
from .registry import TensorSpec, formula, real_only

aten = ops.aten

QUANTIZE = 5  # x·(1/scale), round, + zero_point, clamp to [q_min, q_max] (two compares)
DEQUANTIZE = 2  # (q − zero_point)·scale
_QUANTIZED = {torch.qint8, torch.quint8, torch.qint32, torch.quint4x2, torch.quint2x4}


def _elements(x: TensorSpec | list[TensorSpec]) -> int:
    """Elements of a tensor, or of a list of tensors (the `.tensors` overloads)."""
    return sum(int(t.numel()) for t in x) if isinstance(x, (list, tuple)) else int(x.numel())


@formula(aten.quantize_per_tensor, aten.quantize_per_channel)
def quantize(
    result: TensorSpec | list[TensorSpec],
    x: TensorSpec | list[TensorSpec],
    *args: TensorSpec | float | torch.dtype,
    **kwargs: Any,
) -> Work:
    """5 per element: multiply by 1/scale, round, add the zero point, clamp (2 compares)."""
    return Work(flops=(Flops("quantize", Term("E·c", E=_elements(x), c=QUANTIZE)),))


@formula(aten.dequantize)
def dequantize(
    result: TensorSpec | list[TensorSpec], x: TensorSpec | list[TensorSpec], *args: Any, **kwargs: Any
) -> Work:
    """2 per element: subtract the zero point, multiply by the scale (0 for a tensor that is not quantized)."""
    tensors = x if isinstance(x, (list, tuple)) else [x]
    quantized = [t for t in tensors if t.dtype in _QUANTIZED]
    if not quantized:
        return Work(note="not a quantized tensor: returned as it is")
    return Work(flops=(Flops("quantize", Term("E·c", E=_elements(quantized), c=DEQUANTIZE)),))


real_only(
    "makes a quantized tensor (torch has no fake or meta quantized tensors)",
    [
        aten.quantize_per_tensor,
        aten.quantize_per_channel,
        aten.quantize_per_tensor_dynamic,
        aten._make_per_tensor_quantized_tensor,
        aten._make_per_channel_quantized_tensor,
        aten._empty_affine_quantized,
        aten._empty_per_channel_affine_quantized,
        aten.empty_quantized,
    ],
)
