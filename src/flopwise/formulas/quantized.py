"""Quantized and weight-only-quantized contractions, counted as MACs under the dtype they multiply in.

Statically quantized layers multiply quint8 activations by qint8 weights: int8 MACs. Dynamically quantized ones
(quantize_dynamic with qint8) quantize their float input to 8 bits at run time: int8 MACs too, stated by the
formula since their tensors are float. Weight-only kernels (`_weight_int8pack_mm`, `_weight_int4pack_mm*`) and
fp16-weight dynamic layers convert the weight to the input's dtype before multiplying: their MACs count under
the input's dtype (bfloat16, float32), and the narrow weight shows in the bytes they read. For fp16 that is
fbgemm's fp16 GEMM (`linear_dynamic_fp16`): it keeps the weight in float16, widens it to float32 as it loads it
(vcvtph2ps) and multiplies-adds in float32 (vfmadd231ps) — float32 MACs, 2 bytes read per weight.

A quantized linear layer does M·K·N integer multiply-adds, the same contraction as its float form:
MACs = (output elements)·K, K the input's last dimension — read from the input and output, since the weight
is a packed object. A quantized convolution reads its kernel size and groups from its packed parameters.
The requantization around the integer products (scales, zero points, rounding) is not counted; fused
activations (relu, tanh) act on the integer output and are not counted either (integer arithmetic, as for
every integer op). Quantized non-contraction kernels (adds, multiplies, activations, norms) are costed in
`quantized_elementwise` as the float ops they quantize.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import torch
from torch import ops
from torch.utils._python_dispatch import _disable_current_modes

from ..core.cost import Term, Work
from .conv import conv_work
from .registry import TensorSpec, formula, output_rule, zero_cost
from .shapes import first

aten, quantized = ops.aten, ops.quantized

_NOTE = "integer MACs of the quantized product; requantization not counted"


def unpacked(packed: Any) -> list[torch.Tensor]:  # a packed-params script object: its methods are not typed
    """The tensors a packed weight holds (weight, then bias if any), read outside the count's modes: unpacking is
    a real op on the real packed object, which fake tensors cannot stand in for."""
    with _disable_current_modes():
        return [t for t in packed.unpack() if isinstance(t, torch.Tensor)]


def _stored_bytes(t: torch.Tensor) -> int:
    """Bytes a packed tensor is stored in: a float weight was packed in float16 (fbgemm's fp16 packing, the only
    float one) and comes back from `unpack` widened to float32; qint8 weights and float32 biases are as they are."""
    return t.numel() * (2 if t.is_floating_point() and t.dim() > 1 else t.element_size())


def tensor_bytes(args: object) -> int:
    """Bytes of the tensors among `args` (lists of them too), packed weights included as they are stored."""
    if isinstance(args, TensorSpec):
        return args.numel() * args.element_size()
    if isinstance(args, (list, tuple)):
        return sum(tensor_bytes(a) for a in args)
    if hasattr(args, "unpack"):
        return sum(_stored_bytes(t) for t in unpacked(args))
    return 0


def _reads_packed(work: Work, *args: object) -> Work:
    """A packed weight is a script object, not a tensor, so the bytes a count tallies would leave it out: its
    weight and bias are read too, beside the op's tensors."""
    if not any(hasattr(a, "unpack") for a in args):
        return work
    return dataclasses.replace(work, bytes_read=tensor_bytes(args))


@formula(
    quantized.linear,
    quantized.linear_relu,
    quantized.linear_leaky_relu,
    quantized.linear_tanh,
    quantized.matmul,
    quantized.int4mm_packed_weight_cpu,
    aten._weight_int4pack_mm,
    aten._weight_int4pack_mm_for_cpu,
    aten._weight_int4pack_mm_with_scales_and_zeros,
    aten._weight_int8pack_mm,
    aten._dyn_quant_matmul_4bit,
)
def quantized_product(result: TensorSpec, x: TensorSpec, *args: Any, **kwargs: Any) -> Work:
    """(output elements)·K MACs, K the input's last dimension (a matrix product with a packed weight)."""
    out = first(result)
    k = int(x.shape[-1])
    work = Work(macs=Term("E_out·K", E_out=int(out.numel()), K=k), dots=int(out.numel()), note=_NOTE)
    return _reads_packed(work, x, *args)


@formula(
    quantized.linear_dynamic_fp16, quantized.linear_relu_dynamic_fp16, quantized.linear_dynamic_fp16_unpacked_weight
)
def fp16_product(result: TensorSpec, x: TensorSpec, *args: Any, **kwargs: Any) -> Work:
    """(output elements)·K float32 MACs: the float16 weight is widened to float32 before each multiply-add."""
    work = quantized_product(result, x, *args)
    return dataclasses.replace(work, note="float32 MACs: fbgemm widens each float16 weight to float32 as it loads it")


@formula(quantized.linear_dynamic, quantized.linear_relu_dynamic)
def dynamic_product(result: TensorSpec, x: TensorSpec, *args: Any, **kwargs: Any) -> Work:
    """(output elements)·K int8 MACs: the float input is quantized to 8 bits at run time, then multiplied."""
    return dataclasses.replace(quantized_product(result, x, *args), dtype="int8")


@output_rule(
    quantized.linear_dynamic,
    quantized.linear_relu_dynamic,
    quantized.linear_dynamic_fp16,
    quantized.linear_relu_dynamic_fp16,
)
def dynamic_linear_output(x: torch.Tensor, packed: Any, *args: Any, **kwargs: Any) -> torch.Tensor | None:
    """On the meta device (no kernel there): a float output of x's rows by the packed weight's output features."""
    if not x.is_meta:
        return None  # fake tensors have the op's own fake kernel
    out_features = int(unpacked(packed)[0].shape[0])
    return torch.empty((*x.shape[:-1], out_features), dtype=x.dtype, device=x.device)


@formula(
    quantized.linear_with_input_q_dq_qweight_dq_output_fp32,
    quantized.linear_with_input_q_dq_qweight_dq_relu_output_fp32,
)
def reference_linear(result: TensorSpec, x: TensorSpec, *args: Any, **kwargs: Any) -> Work:
    """(output elements)·K MACs, as a quantized linear layer."""
    return quantized_product(result, x, *args)


def _packed_conv(result: TensorSpec, x: TensorSpec, packed: Any, *tensors: TensorSpec) -> Work:
    weight = tuple(unpacked(packed)[0].shape)  # the packed object's weight tensor: only its shape is used
    if len(weight) == len(x.shape) + 1:  # a 1-d kernel is packed as 2-d: (C_out, C_in, 1, K) for (N, C, L) input
        weight = weight[:2] + weight[3:]
    groups, transposed = int(packed.groups()), bool(packed.transpose())
    work = conv_work(tuple(x.shape), weight, tuple(first(result).shape), transposed, groups, False)
    return _reads_packed(Work(macs=work.macs, dots=work.dots, note=_NOTE), x, packed, *tensors)


@formula(
    quantized.conv1d,
    quantized.conv1d_relu,
    quantized.conv2d,
    quantized.conv2d_relu,
    quantized.conv3d,
    quantized.conv3d_relu,
    quantized.conv_transpose1d,
    quantized.conv_transpose2d,
    quantized.conv_transpose3d,
)
def quantized_conv(result: TensorSpec, x: TensorSpec, packed: Any, *args: Sequence[int] | float, **kwargs: Any) -> Work:
    """Convolution MACs (see conv.py) with the kernel and groups of the packed weight."""
    return _packed_conv(result, x, packed)


@formula(
    quantized.conv1d_dynamic,
    quantized.conv2d_dynamic,
    quantized.conv3d_dynamic,
    quantized.conv_transpose1d_dynamic,
    quantized.conv_transpose2d_dynamic,
    quantized.conv_transpose3d_dynamic,
)
def dynamic_conv(result: TensorSpec, x: TensorSpec, packed: Any, *args: bool, **kwargs: Any) -> Work:
    """Convolution MACs with the packed weight's kernel; int8, the float input being quantized at run time."""
    return dataclasses.replace(_packed_conv(result, x, packed), dtype="int8")


@formula(quantized.conv2d_add, quantized.conv2d_add_relu)
def quantized_conv_add(
    result: TensorSpec, x: TensorSpec, accumulator: TensorSpec, packed: Any, *args: float, **kwargs: Any
) -> Work:
    """Convolution MACs; the fused add of the accumulator is integer arithmetic."""
    return _packed_conv(result, x, packed, accumulator)


zero_cost(
    "packs, unpacks or reads the parameters of quantized weights (no arithmetic)",
    [
        quantized.linear_prepack,
        quantized.linear_prepack_fp16,
        quantized.linear_prepack_legacy,
        quantized.linear_prepack_fp16_legacy,
        quantized.linear_unpack,
        quantized.linear_unpack_fp16,
        quantized.conv_prepack,
        quantized.conv1d_prepack,
        quantized.conv2d_prepack,
        quantized.conv3d_prepack,
        quantized.conv_transpose1d_prepack,
        quantized.conv_transpose2d_prepack,
        quantized.conv_transpose3d_prepack,
        quantized.embedding_bag_prepack,
        quantized.embedding_bag_byte_prepack,
        quantized.embedding_bag_4bit_prepack,
        quantized.embedding_bag_2bit_prepack,
        quantized.embedding_bag_unpack,
        quantized.embedding_bag_byte_unpack,
        quantized.embedding_bag_4bit_unpack,
        quantized.embedding_bag_2bit_unpack,
        quantized.make_quantized_cell_params,
        quantized.make_quantized_cell_params_dynamic,
        aten._convert_weight_to_int4pack,
        aten._convert_weight_to_int4pack_for_cpu,
        aten._dyn_quant_pack_4bit_weight,
        aten.int_repr,
        aten._make_per_tensor_quantized_tensor,
        aten._make_per_channel_quantized_tensor,
        aten.q_scale,
        aten.q_zero_point,
        aten.qscheme,
        aten.q_per_channel_axis,
        aten.q_per_channel_scales,
        aten.q_per_channel_zero_points,
        aten._empty_affine_quantized,
        aten._empty_per_channel_affine_quantized,
        aten.empty_quantized,
    ],
)
zero_cost(
    "copies or compares quantized (integer) values: not floating point",
    [
        quantized.cat,
        quantized.dropout,
        quantized.max_pool1d,
        quantized.max_pool2d,
        aten.quantized_max_pool1d,
        aten.quantized_max_pool2d,
        aten.quantized_max_pool3d,
    ],
)
