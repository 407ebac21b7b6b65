"""Variable-length attention over packed sequences (`varlen_attn`, flash attention's `cu_seqlens`): the kernel
attends within each sequence only, so its work is Σᵢ Lᵢ·Sᵢ query–key pairs per head, never (Σᵢ Lᵢ)². The lengths
come from the offsets' values, the one value besides a mask's kept pairs that a formula is given (TensorSpec.lengths,
filled in by engine/mask_census.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..core.cost import Flops, Term, Work
from .registry import TensorSpec, formula

# variable-length attention: the argument positions of its sequence offsets (cu_seq_q, cu_seq_k)
VARLEN_OFFSETS: dict[str, tuple[int, ...]] = {
    "torch_attn._varlen_attn": (3, 4),
    "aten._flash_attention_forward": (3, 4),
}


def varlen_work(
    q: TensorSpec,
    k: TensorSpec,
    v: TensorSpec,
    offsets_q: TensorSpec,
    offsets_k: TensorSpec | None,
    causal: bool,
    window: Sequence[int] | None,
) -> Work:
    """Packed sequences (q: total tokens × heads × E): the kernel attends within each sequence only, Σᵢ Lᵢ·Sᵢ pairs
    per head, never the cross-sequence ones; a causal mask or window (flash's, aligned bottom-right) keeps fewer."""
    tokens, heads, e = (int(d) for d in q.shape[-3:])
    e_v = int(v.shape[-1])
    lengths_q = offsets_q.lengths
    lengths_k = offsets_k.lengths if offsets_k is not None else lengths_q
    if lengths_q is None or lengths_k is None:  # unknown offsets: one sequence (the count says so in its warnings)
        lengths_q, lengths_k = (tokens,), (int(k.shape[-3]),)
    pairs = sum(a * b for a, b in zip(lengths_q, lengths_k, strict=True))
    macs = Term("H·P·E + H·P·E_v", H=heads, P=pairs, E=e, E_v=e_v)
    flops = (Flops("scale", Term("H·P", H=heads, P=pairs)), Flops("softmax", Term("3·H·P", H=heads, P=pairs)))
    left, right = (int(w) for w in (window or (-1, -1)))
    right = 0 if causal else right
    if left < 0 and right < 0:
        return Work(macs=macs, dots=heads * pairs, flops=flops)
    kept = 0
    for a, b in zip(lengths_q, lengths_k, strict=True):
        for i in range(a):  # query i sits at key position i + b − a (the last query on the last key)
            at = i + b - a
            low, high = (at - left if left >= 0 else 0), (at + right if right >= 0 else b - 1)
            kept += max(0, min(high, b - 1) - max(low, 0) + 1)
    note = f"the mask (causal or a window) keeps K = {kept:,} of the {pairs:,} pairs of the packed sequences"
    return Work(
        macs=macs,
        dots=heads * pairs,
        flops=flops,
        note=note,
        masked_macs=Term("H·K·E + H·K·E_v", H=heads, K=kept, E=e, E_v=e_v),
    )


@formula("torch_attn._varlen_attn")
def varlen(
    result: tuple[TensorSpec, ...],
    q: TensorSpec,
    k: TensorSpec,
    v: TensorSpec,
    cu_seq_q: TensorSpec,
    cu_seq_k: TensorSpec | None,
    max_q: int,
    max_k: int,
    is_causal: bool = False,
    scale: float | None = None,
    window_size: Sequence[int] | None = None,
    *rest: Any,
    **kwargs: Any,
) -> Work:
    return varlen_work(q, k, v, cu_seq_q, cu_seq_k, bool(is_causal), window_size)
