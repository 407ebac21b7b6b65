"""Gradients of the fused attention kernels (kept apart from `attention`, whose forward formulas they reuse).

A flash-style backward keeps only the log-sum-exp of each score row, so it recomputes the scores and runs
five batched products (`_PRODUCTS`); their MACs and dot products are both read from that one list.
Non-contraction per score: re-exponentiate (subtract, exp), dS = P·(dP − D) (subtract, multiply), scale (1);
plus D = rowsum(dO·O): 2·E_v per query row.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import ops

from ..core.cost import Flops, Term, Work
from .registry import TensorSpec, formula

aten = ops.aten


# Per batch and head: (what it computes, output rows, output columns, summed dimension).
_PRODUCTS = (
    ("S = Q·Kᵀ again", "L", "S", "E"),
    ("dV = Pᵀ·dO", "S", "E_v", "L"),
    ("dP = dO·Vᵀ", "L", "S", "E_v"),
    ("dQ = dS·K", "L", "E", "S"),
    ("dK = dSᵀ·Q", "S", "E", "L"),
)


def sdpa_backward_work(b: int, h: int, l: int, s: int, e: int, e_v: int) -> Work:
    sizes = dict(B=b, H=h, L=l, S=s, E=e, E_v=e_v)
    macs = Term(" + ".join(f"B·H·{rows}·{cols}·{k}" for _, rows, cols, k in _PRODUCTS), **sizes)
    dots = sum(b * h * sizes[rows] * sizes[cols] for _, rows, cols, _ in _PRODUCTS)  # one per output element
    flops = (Flops("softmax_backward", Term("5·B·H·L·S + 2·B·H·L·E_v", **sizes)),)
    return Work(macs=macs, dots=dots, flops=flops, note="scores recomputed from the saved log-sum-exp")


@formula(
    aten._scaled_dot_product_flash_attention_for_cpu_backward,
    aten._scaled_dot_product_flash_attention_backward,
    aten._scaled_dot_product_efficient_attention_backward,
    aten._scaled_dot_product_cudnn_attention_backward,
)
def sdpa_backward(
    result: tuple[TensorSpec | None, ...],
    grad: TensorSpec,
    q: TensorSpec,
    k: TensorSpec,
    v: TensorSpec,
    *args: Any,
    **kwargs: Any,
) -> Work:
    """MACs of five products, 3·B·H·L·S·E + 2·B·H·L·S·E_v (scores recomputed), 5 FLOPs per score; (B, H, L, E)."""
    *lead, h, l, e = (int(d) for d in q.shape)
    b = 1
    for d in lead:
        b *= d
    return sdpa_backward_work(b, h, l, int(k.shape[-2]), e, int(v.shape[-1]))


def flex_attention_backward_work(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    out: torch.Tensor,
    logsumexp: torch.Tensor,
    grad_out: torch.Tensor,
) -> Work:
    """flex_attention's backward: the flash-style backward above over (B, H, L, E) queries; the gradient of
    score_mod (its joint graph) is left out of the count."""
    *lead, h, l, e = (int(d) for d in q.shape)
    b = 1
    for d in lead:
        b *= d
    work = sdpa_backward_work(b, h, l, int(k.shape[-2]), e, int(v.shape[-1]))
    note = f"{work.note}; the gradient of score_mod is not counted"
    return Work(macs=work.macs, dots=work.dots, flops=work.flops, note=note)
