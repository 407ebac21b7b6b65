"""Quantized kernels outside the contractions: each costs the FLOPs of the float op it quantizes.

A quantized add, multiply, activation or norm stands for the float op on the dequantized values, and is counted as
that op (the FLOPs per element of `flops_per_element`, the norms and softmax as their aten formulas), as the
quantized products count the MACs of their float form: a quantized model's non-contraction FLOPs are its float
twin's. Dequantizing the inputs and requantizing the output (scales, zero points, rounding) is not counted, as for
the products. The fused ReLU of these kernels (add_relu, mul_relu, cat_relu, batch_norm_relu) is counted, 1 per
element, as the float graph's ReLU; concatenation copies (0 FLOPs).

The FLOPs count under the dtype the CPU's kernel (fbgemm, the x86 engine) computes in, in `report.by_dtype()`:
float32 for kernels that dequantize to float vectors, compute and requantize (add, add_relu, cat_relu, hardswish,
sigmoid, elu, celu, leaky_relu, prelu, threshold, softmax, the norms); int8 for those that stay in integers (mul:
a widening integer multiply, then a requantizing scale; add and multiply by a scalar: an integer add or a new
scale; clamp and relu6: compares with the bounds' quantized values). The bytes are the int8 tensors'.

PT2E's reference graphs (`convert_pt2e`) quantize and dequantize with `quantized_decomposed` ops around float aten
ops: quantize 5 FLOPs per element, dequantize 2, as `aten.quantize_per_tensor` and `aten.dequantize`
(integer_conversion.py); choosing the parameters reads each element's min and max (2 compares, the few scalar
steps after them not counted).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import ops

from ..core.cost import Flops, Term, Work
from . import flops_per_element as costs
from .activation import softmax as float_softmax
from .integer_conversion import DEQUANTIZE, QUANTIZE
from .norm import batch_norm_work
from .norm import group_norm as float_group_norm
from .norm import layer_norm as float_layer_norm
from .registry import Formula, TensorSpec, formula, zero_cost
from .shapes import Output, Scalar, first, is_tensor

quantized = ops.quantized

FLOAT_KERNEL = "float32"  # the dtype a dequantizing kernel computes in
_NOTE = "the float op's FLOPs on the dequantized values; requantization not counted"


def _float(work: Work) -> Work:
    """The work of a kernel that dequantizes to float32 vectors: its FLOPs under float32 in `by_dtype`."""
    return Work(flops=work.flops, note=_NOTE, other_dtype=FLOAT_KERNEL)


def _per_element(kind: str, per_element: int, in_float: bool, expr: str = "E·c") -> Formula:
    def fn(result: Output, x: TensorSpec | list[TensorSpec], *args: Any, **kwargs: Any) -> Work:
        work = Work(flops=(Flops(kind, Term(expr, E=int(first(result).numel()), c=per_element)),), note=_NOTE)
        return _float(work) if in_float else work

    where = "float32 (dequantized)" if in_float else "int8"
    flops = f"{per_element} FLOP{'s' if per_element != 1 else ''}"
    fn.__doc__ = f"{flops} per output element, as the float op it quantizes, computed in {where}"
    return fn


def _binary(per_element: int) -> Formula:
    """add/add_relu: two tensors are dequantized and added in float32; a scalar is added to the integers."""

    def fn(result: Output, a: TensorSpec | Scalar, b: TensorSpec | Scalar, *args: Any, **kwargs: Any) -> Work:
        work = Work(flops=(Flops("elementwise", Term("E·c", E=int(first(result).numel()), c=per_element)),), note=_NOTE)
        return _float(work) if is_tensor(a) and is_tensor(b) else work

    fn.__doc__ = (
        f"{per_element} per output element (the add{' and the ReLU' if per_element == 2 else ''}): "
        "float32 for two tensors, int8 for a scalar"
    )
    return fn


formula(quantized.add, quantized.add_out)(_binary(1))
formula(quantized.add_relu, quantized.add_relu_out)(_binary(2))
formula(
    quantized.add_scalar,
    quantized.add_scalar_out,
    quantized.mul,
    quantized.mul_out,
    quantized.mul_scalar,
    quantized.mul_scalar_out,
)(_per_element("elementwise", 1, False))
formula(
    quantized.add_scalar_relu,
    quantized.add_scalar_relu_out,
    quantized.mul_relu,
    quantized.mul_relu_out,
    quantized.mul_scalar_relu,
    quantized.mul_scalar_relu_out,
)(_per_element("elementwise", 2, False))
formula(quantized.cat_relu, quantized.cat_relu_out)(_per_element("activation", costs.RELU, True))
formula(quantized.hardswish)(_per_element("activation", costs.HARDSWISH, True))
formula(quantized.sigmoid)(_per_element("activation", costs.SIGMOID, True))
formula(quantized.elu, quantized.celu)(_per_element("activation", costs.ELU, True))
formula(quantized.leaky_relu, quantized.prelu)(_per_element("activation", costs.LEAKY_RELU, True))
formula(quantized.threshold)(_per_element("activation", 1, True))  # x > threshold ? x : value: one compare
formula(quantized.relu6)(_per_element("activation", costs.HARDTANH, False))  # clamp to [0, 6]: two compares

zero_cost("copies quantized (integer) values into one tensor", [quantized.cat_out])


@formula(quantized.clamp)
def clamp(result: TensorSpec, x: TensorSpec, min: Scalar | None = None, max: Scalar | None = None) -> Work:
    """One compare per bound given, per element, on the integers (the bounds quantized once)."""
    bounds = (min is not None) + (max is not None)
    return Work(flops=(Flops("activation", Term("E·c", E=int(result.numel()), c=bounds)),), note=_NOTE)


@formula(quantized.softmax)
def softmax(result: TensorSpec, x: TensorSpec, dim: int, output_scale: float, output_zero_point: int) -> Work:
    """3n−1 per row of n, as aten._softmax, in float32."""
    return _float(float_softmax(result, x, dim))


@formula(quantized.layer_norm)
def layer_norm(
    result: TensorSpec,
    x: TensorSpec,
    normalized_shape: Sequence[int],
    weight: TensorSpec | None,
    bias: TensorSpec | None,
    *args: float | int,
) -> Work:
    """7 per element and 4 per normalized row (5 per element without weight and bias), as aten.native_layer_norm."""
    return _float(float_layer_norm((result,), x, normalized_shape, weight, bias))


@formula(quantized.group_norm)
def group_norm(
    result: TensorSpec,
    x: TensorSpec,
    num_groups: int,
    weight: TensorSpec | None,
    bias: TensorSpec | None,
    *args: float | int,
) -> Work:
    """7 per element and 4 per (sample, group), as aten.native_group_norm."""
    n, c = int(x.shape[0]), int(x.shape[1])
    return _float(float_group_norm((result,), x, weight, bias, n, c, x.numel() // max(n * c, 1), int(num_groups)))


@formula(quantized.instance_norm)
def instance_norm(
    result: TensorSpec, x: TensorSpec, weight: TensorSpec | None, bias: TensorSpec | None, *args: float | int
) -> Work:
    """A group norm with a group per channel: 7 per element and 4 per (sample, channel)."""
    return group_norm(result, x, int(x.shape[1]), weight, bias)


def _batch_norm(relu: bool) -> Formula:
    def fn(result: TensorSpec, x: TensorSpec, weight: TensorSpec | None, *args: Any, **kwargs: Any) -> Work:
        work = batch_norm_work(x, False, weight is not None)
        if relu:
            work = Work(flops=work.flops + (Flops("activation", Term("E", E=int(x.numel()))),))
        return _float(work)

    fn.__doc__ = f"4 per element (inference batch norm, kind bn_inference){' and the ReLU' if relu else ''}"
    return fn


formula(quantized.batch_norm, quantized.batch_norm1d, quantized.batch_norm2d, quantized.batch_norm3d)(
    _batch_norm(False)
)
formula(
    quantized.batch_norm_relu, quantized.batch_norm1d_relu, quantized.batch_norm2d_relu, quantized.batch_norm3d_relu
)(_batch_norm(True))


# — PT2E's reference representation: quantized_decomposed (torch.ao.quantization.fx._decomposed) —


def _input_elements(kind: str, per_element: int, what: str) -> Formula:
    def fn(result: Output, x: TensorSpec, *args: Any, **kwargs: Any) -> Work:
        return Work(flops=(Flops(kind, Term("E·c", E=int(x.numel()), c=per_element)),))

    fn.__doc__ = f"{per_element} per input element: {what}"
    return fn


formula(
    "quantized_decomposed.quantize_per_tensor",
    "quantized_decomposed.quantize_per_channel",
    "quantized_decomposed.quantize_per_token",
    "quantized_decomposed.quantize_per_channel_group",
)(_input_elements("quantize", QUANTIZE, "multiply by 1/scale, round, add the zero point, clamp (2 compares)"))
formula(
    "quantized_decomposed.dequantize_per_tensor",
    "quantized_decomposed.dequantize_per_channel",
    "quantized_decomposed.dequantize_per_token",
    "quantized_decomposed.dequantize_per_channel_group",
)(_input_elements("quantize", DEQUANTIZE, "subtract the zero point, multiply by the scale"))
formula(
    "quantized_decomposed.choose_qparams",
    "quantized_decomposed.choose_qparams_symmetric",
    "quantized_decomposed.choose_qparams_per_token",
    "quantized_decomposed.choose_qparams_per_token_asymmetric",
    "quantized_decomposed._choose_qparams_per_token_asymmetric_impl",
)(_input_elements("quantize", 2, "a compare with the running min and one with the max"))
zero_cost("converts the dtype of each element (a copy)", ["quantized_decomposed.convert_element_type"])
