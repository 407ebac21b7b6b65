"""Matrix products: mm, addmm, bmm, baddbmm, mv, dot and their fused forms. MACs = M·N·K (× batch)."""

from __future__ import annotations

from torch import ops

from ..cost import Flops, Term, Work
from ..registry import formula
from . import costs

aten = ops.aten


def _product(a_shape: tuple[int, ...], b_shape: tuple[int, ...]) -> tuple[int, int, int]:
    (m, k), (_, n) = a_shape[-2:], b_shape[-2:]
    return m, n, k


@formula(aten.mm, aten._int_mm)
def mm(result, a, b, *args, **kwargs) -> Work:
    m, n, k = _product(a.shape, b.shape)
    return Work(macs=Term("M·K·N", M=m, K=k, N=n), dots=m * n)


@formula(aten._scaled_mm)
def scaled_mm(result, a, b, *args, **kwargs) -> Work:
    return mm(result, a, b)


@formula(aten.addmm)
def addmm(result, bias, a, b, *args, **kwargs) -> Work:
    m, n, k = _product(a.shape, b.shape)
    return Work(
        macs=Term("M·K·N", M=m, K=k, N=n),
        dots=m * n,
        flops=(Flops("bias", Term("M·N", M=m, N=n)),),
    )


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
    return Work(macs=Term("B·M·N·K", B=batch, M=m, N=n, K=k), dots=batch * m * n)


@formula(aten.baddbmm)
def baddbmm(result, bias, a, b, *args, **kwargs) -> Work:
    batch = a.shape[0]
    m, n, k = _product(a.shape, b.shape)
    return Work(
        macs=Term("B·M·N·K", B=batch, M=m, N=n, K=k),
        dots=batch * m * n,
        flops=(Flops("bias", Term("B·M·N", B=batch, M=m, N=n)),),
    )


@formula(aten.addbmm)
def addbmm(result, bias, a, b, *args, **kwargs) -> Work:
    # the batch of products is summed into one M×N matrix: each output is a dot product of length B·K
    batch = a.shape[0]
    m, n, k = _product(a.shape, b.shape)
    return Work(
        macs=Term("B·M·N·K", B=batch, M=m, N=n, K=k),
        dots=m * n,
        flops=(Flops("bias", Term("M·N", M=m, N=n)),),
    )


@formula(aten.mv)
def mv(result, a, x, *args, **kwargs) -> Work:
    m, k = a.shape
    return Work(macs=Term("M·K", M=m, K=k), dots=m)


@formula(aten.addmv)
def addmv(result, bias, a, x, *args, **kwargs) -> Work:
    m, k = a.shape
    return Work(macs=Term("M·K", M=m, K=k), dots=m, flops=(Flops("bias", Term("M", M=m)),))


@formula(aten.dot, aten.vdot)
def dot(result, a, b, *args, **kwargs) -> Work:
    return Work(macs=Term("K", K=a.shape[0]), dots=1)
