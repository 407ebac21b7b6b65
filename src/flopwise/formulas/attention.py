"""Scaled dot-product attention kernels and PyTorch's fused transformer fast paths.

For queries (B, H, L, E), keys (B, H_kv, S, E) and values (B, H_kv, S, E_v) — grouped-query attention
shares each key/value head among H/H_kv query heads, which changes no product:
    MACs = B·H·L·S·E (scores QKᵀ) + B·H·L·S·E_v (weighted sum of values)
Non-contraction: scaling the scores (B·H·L·S), an additive mask when one is given (B·H·L·S), and the
softmax (3S−1 per row of S). Dense attention counts the full score matrix, also when causal; each call also
states the MACs of the pairs its mask keeps (`masked_macs`), which attention="masked" counts instead: P pairs
per head under is_causal, the K pairs a mask tensor keeps over all B·H heads (its census, masks.py).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import ops

from ..core.cost import Flops, Term, Work
from . import flops_per_element as costs
from .registry import TensorSpec, formula
from .shapes import nested_sizes
from .varlen_attention import varlen_work

aten = ops.aten


# op → (position, keyword) of its mask argument, whose census (`TensorSpec.kept`) the capture takes
MASK_ARGUMENTS: dict[str, tuple[int, str]] = {
    "aten._scaled_dot_product_flash_attention_for_cpu": (-1, "attn_mask"),
    "aten._scaled_dot_product_efficient_attention": (3, "attn_bias"),
    "aten._scaled_dot_product_cudnn_attention": (3, "attn_bias"),
    "aten._scaled_dot_product_fused_attention_overrideable": (3, "attn_bias"),
    "aten._efficient_attention_forward": (3, "bias"),
}


def _kept(mask: TensorSpec | None) -> int | None:
    return getattr(mask, "kept", None) if mask is not None else None


def sdpa_work(
    b: int,
    h: int,
    l: int,
    s: int,
    e: int,
    e_v: int,
    masked: bool,
    causal: bool,
    kept: int | None = None,
    bottom_right: bool = False,
) -> Work:
    macs = Term("B·H·L·S·E + B·H·L·S·E_v", B=b, H=h, L=l, S=s, E=e, E_v=e_v)
    flops = [
        Flops("scale", Term("B·H·L·S", B=b, H=h, L=l, S=s)),
        Flops("softmax", Term("B·H·L·(3·S−1)", B=b, H=h, L=l, S=s)),
    ]
    if masked:
        flops.append(Flops("mask", Term("B·H·L·S", B=b, H=h, L=l, S=s)))
    dots = b * h * l * (s + e_v)
    if kept is not None:  # a mask tensor: K pairs kept over all B·H heads
        kept_macs = Term("K·E + K·E_v", K=kept, E=e, E_v=e_v)
        note = f"dense: the full L×S score matrix is counted; attention='masked' counts the K = {kept:,} pairs kept"
        return Work(macs=macs, dots=dots, flops=tuple(flops), note=note, masked_macs=kept_macs)
    if not causal:
        return Work(macs=macs, dots=dots, flops=tuple(flops))
    if bottom_right:  # query i sees keys 0..i + S − L (the last query sees every key)
        pairs = l * (s - l + 1) + l * (l - 1) // 2 if l <= s else s * (s + 1) // 2
    else:  # query i sees keys 0..i (PyTorch's is_causal aligns the mask top-left)
        pairs = l * (l + 1) // 2 if l <= s else s * (s + 1) // 2 + (l - s) * s
    causal_macs = Term("B·H·P·E + B·H·P·E_v", B=b, H=h, P=pairs, E=e, E_v=e_v)
    note = (
        "dense: the full L×S score matrix is counted although the mask is causal; "
        f"attention='masked' counts the P = {pairs:,} unmasked query–key pairs per head instead"
    )
    return Work(macs=macs, dots=dots, flops=tuple(flops), note=note, masked_macs=causal_macs)


def _heads_first(q: TensorSpec, k: TensorSpec, v: TensorSpec, mask: TensorSpec | None, causal: bool) -> Work:
    """Layout (B, H, L, E), as F.scaled_dot_product_attention takes it; extra leading dims fold into B."""
    *lead, h, l, e = q.shape
    b = 1
    for d in lead:
        b *= int(d)
    return sdpa_work(
        b, int(h), int(l), int(k.shape[-2]), int(e), int(v.shape[-1]), mask is not None, causal, _kept(mask)
    )


def _seq_first(
    q: TensorSpec, k: TensorSpec, v: TensorSpec, mask: TensorSpec | None, causal: bool, bottom_right: bool = False
) -> Work:
    """Layout (B, L, H, E), as the raw flash / memory-efficient kernels take it."""
    b, l, h, e = q.shape
    return sdpa_work(
        int(b),
        int(h),
        int(l),
        int(k.shape[1]),
        int(e),
        int(v.shape[-1]),
        mask is not None,
        causal,
        _kept(mask),
        bottom_right,
    )


def mask_argument(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The mask argument of an attention op (a tensor, its TensorSpec, or None)."""
    position, keyword = MASK_ARGUMENTS[name]
    return kwargs.get(keyword, args[position] if 0 <= position < len(args) else None)


def mask_target(name: str, q: torch.Tensor, k: torch.Tensor) -> tuple[int, ...]:
    """The (B, H, L, S) scores a mask argument of op `name` broadcasts to."""
    if name == "aten._efficient_attention_forward":  # (B, L, H, E)
        return (int(q.shape[0]), int(q.shape[2]), int(q.shape[1]), int(k.shape[1]))
    *lead, h, l, _ = q.shape
    b = 1
    for d in lead:
        b *= int(d)
    return (b, int(h), int(l), int(k.shape[-2]))


@formula(aten._scaled_dot_product_flash_attention_for_cpu)
def flash_cpu(
    result: tuple[TensorSpec, ...],
    q: TensorSpec,
    k: TensorSpec,
    v: TensorSpec,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    *,
    attn_mask: TensorSpec | None = None,
    scale: float | None = None,
) -> Work:
    return _heads_first(q, k, v, attn_mask, bool(is_causal))


@formula(aten._scaled_dot_product_flash_attention)
def flash(
    result: tuple[TensorSpec | int, ...], q: TensorSpec, k: TensorSpec, v: TensorSpec, *rest: Any, **kwargs: Any
) -> Work:
    # the .quantized overload takes q_descale, k_descale, v_descale (tensors, or None) before dropout_p, is_causal
    quantized = bool(rest) and not isinstance(rest[0], (int, float))
    at = 4 if quantized else 1
    return _heads_first(q, k, v, None, bool(kwargs.get("is_causal", rest[at] if len(rest) > at else False)))


@formula(aten._scaled_dot_product_efficient_attention, aten._scaled_dot_product_cudnn_attention)
def efficient(
    result: tuple[TensorSpec | int, ...],
    q: TensorSpec,
    k: TensorSpec,
    v: TensorSpec,
    attn_bias: TensorSpec | None,
    compute_log_sumexp: bool,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    *rest: Any,
    **kwargs: Any,
) -> Work:
    return _heads_first(q, k, v, attn_bias, bool(is_causal))


@formula(aten._scaled_dot_product_fused_attention_overrideable)
def overrideable(
    result: tuple[TensorSpec | int, ...],
    q: TensorSpec,
    k: TensorSpec,
    v: TensorSpec,
    attn_bias: TensorSpec | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    *rest: bool,
    **kwargs: Any,
) -> Work:
    return _heads_first(q, k, v, attn_bias, bool(is_causal))


@formula(aten._flash_attention_forward)
def flash_forward(
    result: tuple[TensorSpec, ...],
    q: TensorSpec,
    k: TensorSpec,
    v: TensorSpec,
    cum_seq_q: TensorSpec | None,
    cum_seq_k: TensorSpec | None,
    max_q: int,
    max_k: int,
    dropout_p: float,
    is_causal: bool,
    *rest: Any,
    **kwargs: Any,
) -> Work:
    if cum_seq_q is not None:  # packed sequences (total tokens × heads × E)
        window = (kwargs.get("window_size_left", -1), kwargs.get("window_size_right", -1))
        window = (-1 if window[0] is None else window[0], -1 if window[1] is None else window[1])
        return varlen_work(q, k, v, cum_seq_q, cum_seq_k, bool(is_causal), window)
    return _seq_first(q, k, v, None, bool(is_causal))


@formula(aten._efficient_attention_forward)
def efficient_forward(
    result: tuple[TensorSpec | int, ...],
    q: TensorSpec,
    k: TensorSpec,
    v: TensorSpec,
    bias: TensorSpec | None,
    *rest: Any,
    **kwargs: Any,
) -> Work:
    # custom_mask_type: 0 none, 1 causal aligned top-left, 2 causal aligned bottom-right
    mask_type = int(kwargs.get("custom_mask_type", rest[5] if len(rest) > 5 else 0))
    return _seq_first(q, k, v, bias, mask_type != 0, bottom_right=mask_type == 2)


def _mha_terms(b: int, l: int, s: int, e: int, heads: int, masked: bool) -> Work:
    """Projections of q (L rows) and k, v (S rows), attention over `heads` heads, output projection."""
    projections = Term("B·L·E·E + 2·B·S·E·E + B·L·E·E", B=b, L=l, S=s, E=e)
    attention = sdpa_work(b, heads, l, s, e // heads, e // heads, masked, False)
    assert attention.macs is not None
    macs = Term("B·L·E·E + 2·B·S·E·E + B·L·E·E + B·H·L·S·(E/H) + B·H·L·S·(E/H)", B=b, L=l, S=s, E=e, H=heads)
    assert macs.value == projections.value + attention.macs.value
    bias = Flops("bias", Term("2·B·L·E + 2·B·S·E", B=b, L=l, S=s, E=e))
    return Work(macs=macs, dots=b * (2 * l + 2 * s) * e + attention.dots, flops=(bias,) + attention.flops)


def _nested_mha(lengths: list[int], e: int, heads: int) -> Work:
    """PyTorch's CPU kernel on a nested batch (B sequences of L_i real tokens, T = ΣL_i, padded length L =
    max L_i): the q, k, v and output projections run on the T real tokens; the q, k, v biases and the scaling
    on the batch padded to L tokens (`to_padded_tensor`), and so do the score and value products (bmm of
    B·H matrices L×L); the softmax runs on each sequence's real L_i×L_i scores (Q = ΣL_i²)."""
    b, t, q, l = len(lengths), sum(lengths), sum(n * n for n in lengths), max(lengths, default=0)
    sizes = {"B": b, "T": t, "L": l, "E": e, "H": heads}
    macs = Term("3·T·E·E + T·E·E + B·H·L·L·(E/H) + B·H·L·L·(E/H)", **sizes)
    flops = (
        Flops("bias", Term("3·B·L·E + T·E", **sizes)),
        Flops("scale", Term("B·H·L·L", **sizes)),
        Flops("softmax", Term("H·(3·Q − T)", H=heads, Q=q, T=t)),
    )
    note = f"nested batch of {b} sequences of {', '.join(map(str, lengths))} tokens: attention products padded to {l}"
    return Work(macs=macs, dots=4 * t * e + b * heads * l * (l + e // heads), flops=flops, note=note)


def _lengths(x: TensorSpec) -> list[int] | None:
    """Tokens per sequence of a nested (sequence, features) batch; None for a regular tensor."""
    sizes = nested_sizes(x)
    return None if sizes is None else [int(s[0]) for s in sizes]


@formula(aten._native_multi_head_attention)
def native_mha(
    result: tuple[TensorSpec, ...],
    q: TensorSpec,
    k: TensorSpec,
    v: TensorSpec,
    embed_dim: int,
    num_head: int,
    qkv_weight: TensorSpec,
    qkv_bias: TensorSpec,
    proj_weight: TensorSpec,
    proj_bias: TensorSpec,
    mask: TensorSpec | None = None,
    *rest: bool | int | None,
    **kwargs: Any,
) -> Work:
    lengths = _lengths(q)
    if lengths is not None:  # self-attention on a nested batch (PyTorch refuses a mask with it)
        return _nested_mha(lengths, int(embed_dim), int(num_head))
    b, l, e = q.shape
    return _mha_terms(int(b), int(l), int(k.shape[1]), int(e), int(num_head), mask is not None)


@formula(aten._transform_bias_rescale_qkv)
def transform_bias_rescale_qkv(
    result: tuple[TensorSpec, ...], qkv: TensorSpec, qkv_bias: TensorSpec, num_heads: int
) -> Work:
    """The MHA fast path's first step: add the q, k, v biases to the packed (B, L, 3·E) projection (3·B·L·E) and
    scale q by 1/√(E/H) (B·L·E); a nested batch is padded to its longest sequence first. It runs inside
    `_native_multi_head_attention` and `_transformer_encoder_layer_fwd`, whose formulas count it (bias, scale):
    the mode never sees it there, only when it is called on its own."""
    b, h, l, d = (int(n) for n in result[0].shape)
    sizes = {"B": b, "L": l, "E": h * d}
    return Work(flops=(Flops("bias", Term("3·B·L·E", **sizes)), Flops("scale", Term("B·L·E", **sizes))))


@formula(aten._transformer_encoder_layer_fwd)
def encoder_layer(
    result: TensorSpec,
    src: TensorSpec,
    embed_dim: int,
    num_heads: int,
    qkv_weight: TensorSpec,
    qkv_bias: TensorSpec,
    proj_weight: TensorSpec,
    proj_bias: TensorSpec,
    use_gelu: bool,
    norm_first: bool,
    eps: float,
    norm_weight_1: TensorSpec,
    norm_bias_1: TensorSpec,
    norm_weight_2: TensorSpec,
    norm_bias_2: TensorSpec,
    ffn_weight_1: TensorSpec,
    ffn_bias_1: TensorSpec,
    ffn_weight_2: TensorSpec,
    ffn_bias_2: TensorSpec,
    mask: TensorSpec | None = None,
    mask_type: int | None = None,
) -> Work:
    """Attention (as `_native_multi_head_attention`), two layer norms, two residual adds and the feed-forward
    network; on a nested batch the feed-forward network, norms and adds run on the T real tokens only."""
    lengths = _lengths(src)
    e, f = int(embed_dim), int(ffn_weight_1.shape[0])
    if lengths is not None:
        attention = _nested_mha(lengths, e, int(num_heads))
        rows, sizes = "T", {"T": sum(lengths)}
    else:
        b, l, _ = (int(d) for d in src.shape)
        attention = _mha_terms(b, l, l, e, int(num_heads), mask is not None)
        rows, sizes = "B·L", {"B": b, "L": l}
    assert attention.macs is not None
    n = sizes.get("T", sizes.get("B", 0) * sizes.get("L", 0))  # token rows of the feed-forward network
    macs = Term(f"{attention.macs.expr} + {rows}·E·F + {rows}·F·E", F=f, **dict(attention.macs.sizes))
    activation = costs.GELU if use_gelu else costs.RELU
    flops = attention.flops + (
        Flops("bias", Term(f"{rows}·F + {rows}·E", E=e, F=f, **sizes)),
        Flops("activation", Term(f"{rows}·F·act", F=f, act=activation, **sizes)),
        Flops("residual", Term(f"2·{rows}·E", E=e, **sizes)),
        Flops(
            "norm", Term(f"2·({rows}·E·ln + {rows}·row)", E=e, ln=costs.LAYER_NORM, row=costs.LAYER_NORM_ROW, **sizes)
        ),
    )
    return Work(macs=macs, dots=attention.dots + n * (f + e), flops=flops, note=attention.note)


def flex_attention_work(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    per_pair: dict[str, int | str],
    blocks: tuple[int, int, int] | None = None,
) -> Work:
    """flex_attention: dense attention over (B, H, L, E) queries (GQA as in SDPA), plus `score_mod` and
    `mask_mod` once per query–key pair (`per_pair`: their FLOPs on one pair, or why they could not be costed).
    Dense counts every pair, also in the blocks a mask skips; `blocks` — (N blocks computed over all B·H
    heads, Q block, KV block) of its BlockMask — gives attention="masked" the N·QB·KB pairs the kernel computes."""
    *lead, h, l, e = q.shape
    b = 1
    for d in lead:
        b *= int(d)
    base = sdpa_work(b, int(h), int(l), int(k.shape[-2]), int(e), int(v.shape[-1]), False, False)
    flops, notes = list(base.flops), ["dense: every query–key pair is counted, also in blocks the mask skips"]
    for kind, cost in per_pair.items():
        if isinstance(cost, str):
            notes.append(f"{kind} left out: it could not run on one query–key pair ({cost})")
        elif cost:
            flops.append(
                Flops(kind, Term(f"B·H·L·S·{kind}", B=b, H=int(h), L=int(l), S=int(k.shape[-2]), **{kind: cost}))
            )
    masked_macs = None
    if blocks is not None:  # a block at the sequence's end holds fewer pairs: never more than the dense count
        pairs = min(blocks[0] * blocks[1] * blocks[2], b * int(h) * int(l) * int(k.shape[-2]))
        masked_macs = Term("N·E + N·E_v", N=pairs, E=int(e), E_v=int(v.shape[-1]))
        notes.append(
            f"attention='masked' counts the {blocks[0]:,} blocks of {blocks[1]}×{blocks[2]} its BlockMask computes"
        )
    return Work(macs=base.macs, dots=base.dots, flops=tuple(flops), note="; ".join(notes), masked_macs=masked_macs)
