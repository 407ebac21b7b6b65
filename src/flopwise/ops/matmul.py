"""Matrix products: mm, addmm, bmm, baddbmm, mv, dot and their fused forms. MACs = M·N·K (× batch).

Complex operands: one complex multiply-add (a + bi)(c + di) + s is 4 real multiplies (ac, bd, ad, bc) and
4 real adds (ac − bd, ad + bc, and the two accumulations), i.e. 4 real MACs; the count is of real arithmetic,
so MACs = 4·M·K·N, a complex dot product of length K is two real ones of length 2K (8K − 2 FLOPs exactly), and a
complex bias add is 2 real adds per output.
"""

from __future__ import annotations

from typing import Any

from torch import ops

from ..cost import Flops, Term, Work
from ..registry import formula
from . import costs

aten = ops.aten

COMPLEX_NOTE = "complex: 1 complex multiply-add = 4 real MACs ((a + bi)(c + di) = (ac − bd) + (ad + bc)i, accumulated)"


def _product(a_shape: tuple[int, ...], b_shape: tuple[int, ...]) -> tuple[int, int, int]:
    (m, k), (_, n) = a_shape[-2:], b_shape[-2:]
    return m, n, k


def contraction(a: Any, expr: str, dots: int, bias: str = "", **sizes: int) -> Work:
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
def mm(result, a, b, *args, **kwargs) -> Work:
    m, n, k = _product(a.shape, b.shape)
    return contraction(a, "M·K·N", m * n, M=m, K=k, N=n)


@formula(aten._scaled_mm)
def scaled_mm(result, a, b, *args, **kwargs) -> Work:
    return mm(result, a, b)


@formula(aten.addmm)
def addmm(result, bias, a, b, *args, **kwargs) -> Work:
    m, n, k = _product(a.shape, b.shape)
    return contraction(a, "M·K·N", m * n, "M·N", M=m, K=k, N=n)


@formula(aten._addmm_activation)
def addmm_activation(result, bias, a, b, beta=1, alpha=1, use_gelu=False, **kwargs) -> Work:
    work = addmm(result, bias, a, b)
    m, n, _ = _product(a.shape, b.shape)
    activation = Term("M·N·gelu", M=m, N=n, gelu=costs.GELU) if use_gelu else Term("M·N", M=m, N=n)
    return Work(work.macs, work.dots, work.flops + (Flops("activation", activation),))


@formula(aten.bmm)
def bmm(result, a, b, *args, **kwargs) -> Work:
    batch = a.shape[0]
    m, n, k = _product(a.shape, b.shape)
    return contraction(a, "B·M·N·K", batch * m * n, B=batch, M=m, N=n, K=k)


@formula(aten.baddbmm)
def baddbmm(result, bias, a, b, *args, **kwargs) -> Work:
    batch = a.shape[0]
    m, n, k = _product(a.shape, b.shape)
    return contraction(a, "B·M·N·K", batch * m * n, "B·M·N", B=batch, M=m, N=n, K=k)


@formula(aten.addbmm)
def addbmm(result, bias, a, b, *args, **kwargs) -> Work:
    # the batch of products is summed into one M×N matrix: each output is a dot product of length B·K
    batch = a.shape[0]
    m, n, k = _product(a.shape, b.shape)
    return contraction(a, "B·M·N·K", m * n, "M·N", B=batch, M=m, N=n, K=k)


@formula(aten.mv)
def mv(result, a, x, *args, **kwargs) -> Work:
    m, k = a.shape
    return contraction(a, "M·K", m, M=m, K=k)


@formula(aten.addmv)
def addmv(result, bias, a, x, *args, **kwargs) -> Work:
    m, k = a.shape
    return contraction(a, "M·K", m, "M", M=m, K=k)


@formula(aten.dot, aten.vdot)
def dot(result, a, b, *args, **kwargs) -> Work:
    return contraction(a, "K", 1, K=a.shape[0])
