"""Matrix products: mm, addmm, bmm, baddbmm, mv, dot and their fused forms. MACs = M·N·K (× batch).

Complex operands: one complex multiply-add (a + bi)(c + di) + s is 4 real multiplies (ac, bd, ad, bc) and
4 real adds (ac − bd, ad + bc, and the two accumulations), i.e. 4 real MACs; the count is of real arithmetic,
so MACs = 4·M·K·N, a complex dot product of length K is two real ones of length 2K (8K − 2 FLOPs exactly), and a
complex bias add is 2 real adds per output.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import torch
from torch import ops

from ..core.cost import Flops, Term, Work
from . import flops_per_element as costs
from .registry import TensorSpec, dtype_name, formula
from .shapes import Scalar

aten = ops.aten

COMPLEX_NOTE = "complex: 1 complex multiply-add = 4 real MACs ((a + bi)(c + di) = (ac − bd) + (ad + bc)i, accumulated)"


def _product(a_shape: tuple[int, ...], b_shape: tuple[int, ...]) -> tuple[int, int, int]:
    (m, k), (_, n) = a_shape[-2:], b_shape[-2:]
    return m, n, k


SPARSE_NOTE = (
    "sparse operand: one MAC per stored value per column it meets (nnz·N), blocks stored whole; "
    "the exact convention counts these 2 FLOPs each"
)


def product(a: TensorSpec, b: TensorSpec, expr: str, dots: int, bias: str = "", **sizes: int) -> Work:
    """`contraction` of a·b, where a sparse operand (COO, CSR, CSC, BSR) does one multiply-add per value it stores
    and per column (row) of the dense operand it meets: nnz·N for a sparse left operand, M·nnz for a sparse right
    one. The dense count `expr` stands when both are dense; sparse·sparse is left to its own op."""
    if a.nnz is not None:
        work = contraction(a, "nnz·N", 0, bias, **{**sizes, "nnz": a.nnz})
    elif b.nnz is not None:
        work = contraction(a, "M·nnz", 0, bias, **{**sizes, "nnz": b.nnz})
    else:
        return contraction(a, expr, dots, bias, **sizes)
    return Work(macs=work.macs, dots=0, flops=work.flops, note=(work.note + "; " if work.note else "") + SPARSE_NOTE)


def contraction(a: TensorSpec, expr: str, dots: int, bias: str = "", **sizes: int) -> Work:
    """MACs `expr` (and a bias add of `bias` per output), in real arithmetic: a complex `a` multiplies the MACs
    by 4, the dot products by 2 (each is a real and an imaginary one) and the bias adds by 2."""
    flops: tuple[Flops, ...] = ()
    if not a.is_complex():
        if bias:
            flops = (Flops("bias", Term(bias, **sizes)),)
        return Work(macs=Term(expr, **sizes), dots=dots, flops=flops)
    if bias:
        flops = (Flops("bias", Term(f"2·{bias}", **sizes)),)
    return Work(macs=Term(f"4·{expr}", **sizes), dots=2 * dots, flops=flops, note=COMPLEX_NOTE)


@formula(aten.mm, aten._int_mm)
def mm(result: TensorSpec, a: TensorSpec, b: TensorSpec, *args: torch.dtype, **kwargs: Any) -> Work:
    m, n, k = _product(a.shape, b.shape)
    return product(a, b, "M·K·N", m * n, M=m, K=k, N=n)


@formula(aten._scaled_mm, aten._scaled_mm_v2)
def scaled_mm(result: TensorSpec, a: TensorSpec, b: TensorSpec, *args: Any, **kwargs: Any) -> Work:
    """M·K·N MACs in the dtype of a and b (float8), whatever the output dtype; the scales multiply nothing."""
    return replace(mm(result, a, b), dtype=dtype_name(a.dtype))


@formula(aten._sparse_addmm, aten.sspaddmm)
def sparse_addmm(result: TensorSpec, bias: TensorSpec, a: TensorSpec, b: TensorSpec, *args: Any, **kwargs: Any) -> Work:
    """torch.sparse.mm / torch.sparse.addmm: bias + a·b with a sparse: nnz·N MACs, one bias add per output."""
    m, n, k = _product(a.shape, b.shape)
    return product(a, b, "M·K·N", m * n, "M·N", M=m, K=k, N=n)


@formula(aten.hspmm)
def hspmm(result: TensorSpec, a: TensorSpec, b: TensorSpec, *args: Any, **kwargs: Any) -> Work:
    """a (sparse) · b (dense), the result kept sparse by rows: nnz·N MACs."""
    m, n, k = _product(a.shape, b.shape)
    return product(a, b, "M·K·N", m * n, M=m, K=k, N=n)


@formula(aten.addmm)
def addmm(
    result: TensorSpec, bias: TensorSpec, a: TensorSpec, b: TensorSpec, *args: torch.dtype, **kwargs: Any
) -> Work:
    m, n, k = _product(a.shape, b.shape)
    return product(a, b, "M·K·N", m * n, "M·N", M=m, K=k, N=n)


@formula(aten._addmm_activation)
def addmm_activation(
    result: TensorSpec,
    bias: TensorSpec,
    a: TensorSpec,
    b: TensorSpec,
    beta: Scalar = 1,
    alpha: Scalar = 1,
    use_gelu: bool = False,
    **kwargs: Any,
) -> Work:
    work = addmm(result, bias, a, b)
    m, n, _ = _product(a.shape, b.shape)
    activation = Term("M·N·gelu", M=m, N=n, gelu=costs.GELU) if use_gelu else Term("M·N", M=m, N=n)
    return Work(work.macs, work.dots, work.flops + (Flops("activation", activation),))


@formula(aten.bmm)
def bmm(result: TensorSpec, a: TensorSpec, b: TensorSpec, *args: torch.dtype, **kwargs: Any) -> Work:
    batch = a.shape[0]
    m, n, k = _product(a.shape, b.shape)
    return product(a, b, "B·M·N·K", batch * m * n, B=batch, M=m, N=n, K=k)


@formula(aten.matmul)
def nested_matmul(result: TensorSpec, a: TensorSpec, b: TensorSpec, **kwargs: Any) -> Work:
    """`matmul` reaches the counting mode only for nested tensors (it decomposes into mm/bmm for the rest): each
    component is its own product, Σᵢ batchᵢ·Mᵢ·Nᵢ·Kᵢ — never the padded size."""
    if a.nested is None or b.nested is None:
        batch = math.prod(result.shape[:-2])
        m, n, k = _product(a.shape, b.shape)
        return product(a, b, "B·M·N·K", batch * m * n, B=batch, M=m, N=n, K=k)
    parts: list[str] = []
    sizes: dict[str, int] = {}
    dots = 0
    for i, (left, right) in enumerate(zip(a.nested, b.nested, strict=True), start=1):
        (m, k), n = left[-2:], right[-1]
        batch = math.prod(max(x, y) for x, y in zip(left[:-2], right[:-2], strict=False))
        parts.append(f"B{i}·M{i}·N{i}·K{i}")
        sizes.update({f"B{i}": batch, f"M{i}": m, f"N{i}": n, f"K{i}": k})
        dots += batch * m * n
    return Work(macs=Term(" + ".join(parts) or "0", **sizes), dots=dots)


@formula(aten.baddbmm)
def baddbmm(
    result: TensorSpec, bias: TensorSpec, a: TensorSpec, b: TensorSpec, *args: torch.dtype, **kwargs: Any
) -> Work:
    batch = a.shape[0]
    m, n, k = _product(a.shape, b.shape)
    return contraction(a, "B·M·N·K", batch * m * n, "B·M·N", B=batch, M=m, N=n, K=k)


@formula(aten.addbmm)
def addbmm(result: TensorSpec, bias: TensorSpec, a: TensorSpec, b: TensorSpec, *args: Any, **kwargs: Any) -> Work:
    # the batch of products is summed into one M×N matrix: each output is a dot product of length B·K
    batch = a.shape[0]
    m, n, k = _product(a.shape, b.shape)
    return contraction(a, "B·M·N·K", m * n, "M·N", B=batch, M=m, N=n, K=k)


@formula(aten.mv)
def mv(result: TensorSpec, a: TensorSpec, x: TensorSpec, *args: Any, **kwargs: Any) -> Work:
    m, k = a.shape
    return contraction(a, "M·K", m, M=m, K=k)


@formula(aten.addmv)
def addmv(result: TensorSpec, bias: TensorSpec, a: TensorSpec, x: TensorSpec, *args: Any, **kwargs: Any) -> Work:
    m, k = a.shape
    return contraction(a, "M·K", m, "M", M=m, K=k)


@formula(aten.dot, aten.vdot)
def dot(result: TensorSpec, a: TensorSpec, b: TensorSpec, *args: Any, **kwargs: Any) -> Work:
    return contraction(a, "K", 1, K=a.shape[0])


@formula(aten.linear, aten.mkldnn_linear)
def linear(
    result: TensorSpec, x: TensorSpec, weight: TensorSpec, bias: TensorSpec | None = None, *args: Any, **kwargs: Any
) -> Work:
    """x·Wᵀ (+ b): rows·K·N MACs, one bias add per output (aten.linear only reaches the mode as linear.out)."""
    n, k = int(weight.shape[0]), int(x.shape[-1])
    rows = int(x.numel()) // max(k, 1)
    flops = (Flops("bias", Term("R·N", R=rows, N=n)),) if bias is not None else ()
    if weight.nnz is not None:  # a sparse weight: one MAC per stored value per input row
        return Work(macs=Term("R·nnz", R=rows, nnz=weight.nnz), flops=flops, note=SPARSE_NOTE)
    return Work(macs=Term("R·K·N", R=rows, K=k, N=n), dots=rows * n, flops=flops)


@formula(aten._mixed_dtypes_linear)
def mixed_dtypes_linear(
    result: TensorSpec,
    x: TensorSpec,
    weight: TensorSpec,
    scale: TensorSpec,
    *,
    bias: TensorSpec | None = None,
    activation: str | None = None,
) -> Work:
    """x·W with an int8/int4 weight in the CUTLASS kernel's packed layout: rows·K·N MACs (N read from the output);
    the epilogue scales each output by its column's scale (R·N), adds the bias and applies the activation."""
    n, k = int(result.shape[-1]), int(x.shape[-1])
    rows = int(result.numel()) // max(n, 1)
    per_output = (
        1 + int(bias is not None) + {None: 0, "none": 0, "relu": costs.RELU, "silu": costs.SILU}.get(activation, 0)
    )
    flops = (Flops("elementwise", Term("R·N·c", R=rows, N=n, c=per_output)),)
    return Work(macs=Term("R·K·N", R=rows, K=k, N=n), dots=rows * n, flops=flops)


def _linear_grads(x_shape: Sequence[int], grad: TensorSpec, weight: TensorSpec, mask: Sequence[bool]) -> Work:
    n, k = int(weight.shape[0]), int(weight.shape[1])
    rows = int(grad.numel()) // max(n, 1)
    passes = int(bool(mask[0])) + int(bool(mask[1]))  # grad_input = g·W, grad_weight = gᵀ·x: R·K·N each
    flops = (Flops("reduction", Term("R·N", R=rows, N=n)),) if len(mask) > 2 and mask[2] else ()
    return Work(macs=Term("R·K·N·passes", R=rows, K=k, N=n, passes=passes), dots=passes * rows * n, flops=flops)


@formula(aten.linear_backward, aten.mkldnn_linear_backward)
def linear_backward(
    result: tuple[TensorSpec | None, ...],
    x: TensorSpec,
    grad: TensorSpec,
    weight: TensorSpec,
    output_mask: Sequence[bool],
    *args: Any,
    **kwargs: Any,
) -> Work:
    """R·K·N MACs for each of grad_input and grad_weight asked for; the bias gradient sums R·N."""
    return _linear_grads(x.shape, grad, weight, output_mask)


@formula(aten.mkldnn_linear_backward_input)
def mkldnn_linear_backward_input(
    result: TensorSpec, input_size: Sequence[int], grad: TensorSpec, weight: TensorSpec, *args: Any, **kwargs: Any
) -> Work:
    """grad_input = g·W: R·K·N MACs."""
    return _linear_grads(input_size, grad, weight, (True, False))


@formula(aten.mkldnn_linear_backward_weights)
def mkldnn_linear_backward_weights(
    result: tuple[TensorSpec | None, ...],
    grad: TensorSpec,
    x: TensorSpec,
    weight: TensorSpec,
    bias_defined: bool,
    *args: Any,
    **kwargs: Any,
) -> Work:
    """grad_weight = gᵀ·x: R·K·N MACs; the bias gradient sums R·N."""
    return _linear_grads(x.shape, grad, weight, (False, True, bias_defined))


@formula(aten.matmul_backward)
def matmul_backward(
    result: tuple[TensorSpec | None, ...],
    grad: TensorSpec,
    a: TensorSpec,
    b: TensorSpec,
    mask: Sequence[bool],
    *args: Any,
    **kwargs: Any,
) -> Work:
    """Each gradient asked for is a product as large as the forward: E_out·K MACs (E_out = grad elements)."""
    k = int(a.shape[-1])
    passes = int(bool(mask[0])) + int(bool(mask[1]))
    e_out = int(grad.numel())
    return Work(macs=Term("E_out·K·passes", E_out=e_out, K=k, passes=passes), dots=passes * e_out)


@formula(aten._compute_linear_combination)
def linear_combination(result: TensorSpec, x: TensorSpec, coefficients: TensorSpec, *args: Any, **kwargs: Any) -> Work:
    """out[i] = Σ_j c[i, j]·x[j]: (output elements)·J MACs."""
    j = int(coefficients.shape[-1])
    e_out = int(result.numel())
    return Work(macs=Term("E_out·J", E_out=e_out, J=j), dots=e_out)


@formula(aten._trilinear)
def trilinear(
    result: TensorSpec,
    i1: TensorSpec,
    i2: TensorSpec,
    i3: TensorSpec,
    expand1: Sequence[int],
    expand2: Sequence[int],
    expand3: Sequence[int],
    sumdim: Sequence[int],
    *args: int,
    **kwargs: Any,
) -> Work:
    """Σ over sumdim of i1·i2·i3 (the core of nn.Bilinear): one MAC per term, P = the broadcast size of the
    three inputs with their expanded dimensions (N·O·I₁·I₂ for a bilinear layer)."""
    rank = i1.dim() + len(expand1)
    size = [1] * rank
    for t, expand in ((i1, expand1), (i2, expand2), (i3, expand3)):
        kept = iter(int(d) for d in t.shape)
        for d in range(rank):
            size[d] = max(size[d], 1 if d in expand else next(kept))
    terms = 1
    for s in size:
        terms *= s
    return Work(macs=Term("P", P=terms), dots=int(result.numel()))
