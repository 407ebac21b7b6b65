"""How many query–key pairs an attention mask keeps: what `attention="masked"` counts.

A formula never reads values, so the capture takes this census of a mask argument (the one place a count reads
data) and hands the formula the number alone (`TensorSpec.kept`). A boolean mask keeps its True entries; an
additive mask keeps every entry above the dtype's lowest value (PyTorch adds −inf, transformers the dtype's
minimum). In shape-only modes a mask built by index arithmetic (transformers' causal, sliding-window and
padding masks) has its values followed by shapes_only/values.py; a mask whose values nobody knows gives None, and the
count falls back to dense with a warning.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.utils._python_dispatch import _disable_current_modes

from ..formulas.attention import mask_argument, mask_target
from ..formulas.varlen_attention import VARLEN_OFFSETS
from ..shapes_only.values import Values, known_value


def kept_entries(mask: torch.Tensor, target: tuple[int, ...], known: Values | None) -> int | None:
    """Entries of `mask` broadcast to `target` (B, H, L, S) that keep their pair; None when its values are unknown."""
    values = known_value(mask, known)
    if values is None:
        return None
    if values.dtype == torch.bool:
        kept = int(values.sum())
    elif values.is_floating_point():
        kept = int((values > torch.finfo(values.dtype).min).sum())
    else:
        return None
    # broadcasting repeats the mask along every dimension it lacks or has as 1
    shape = (1,) * (len(target) - values.dim()) + tuple(values.shape)
    return kept * math.prod(t // m if m == 1 else 1 for t, m in zip(target, shape, strict=True))


def census(name: str, args: tuple[Any, ...], kwargs: dict[str, Any], known: Values | None) -> int | None:
    """The pairs kept by the mask argument of attention op `name`; None without a mask or its values."""
    mask = mask_argument(name, args, kwargs)
    if not isinstance(mask, torch.Tensor):
        return None
    with _disable_current_modes():  # the census is arithmetic on plain CPU values, outside any fake mode
        return kept_entries(mask, mask_target(name, args[0], args[1]), known)


def block_mask_pairs(block_mask: tuple[Any, ...], b: int, h: int, known: Values | None) -> tuple[int, int, int] | None:
    """A FlexAttention BlockMask (as its `as_tuple()`): (blocks computed over all B·H, Q block, KV block), or None
    when its block counts are unknown. A block is computed whole when the mask keeps any pair in it (partial
    blocks, `kv_num_blocks`) or all of them (`full_kv_num_blocks`)."""
    partial, full = block_mask[2], block_mask[4]
    q_block, kv_block = int(block_mask[-3]), int(block_mask[-2])
    with _disable_current_modes():
        return _blocks(partial, full, b, h, q_block, kv_block, known)


def _blocks(
    partial: Any, full: Any, b: int, h: int, q_block: int, kv_block: int, known: Values | None
) -> tuple[int, int, int] | None:
    blocks = 0
    for counts in (partial, full):
        if counts is None:
            continue
        values = known_value(counts, known)
        if values is None:
            return None
        lead = (1,) * (3 - values.dim()) + tuple(values.shape)
        repeat = (b // lead[0] if lead[0] == 1 else 1) * (h // lead[1] if lead[1] == 1 else 1)
        blocks += int(values.sum()) * repeat
    return blocks, q_block, kv_block


def sequence_lengths(name: str, args: tuple[Any, ...], known: Values | None) -> dict[int, tuple[int, ...]] | None:
    """The lengths of the packed sequences a variable-length attention op's offsets (`cu_seq_q`, `cu_seq_k`)
    delimit, by argument position; None when the op has none or their values are unknown."""
    found: dict[int, tuple[int, ...]] = {}
    for position in VARLEN_OFFSETS.get(name, ()):
        offsets = args[position] if position < len(args) else None
        if not isinstance(offsets, torch.Tensor):
            continue
        values = known_value(offsets, known)
        if values is None:
            return None
        with _disable_current_modes():
            ends = [int(v) for v in values.reshape(-1).tolist()]
        found[position] = tuple(b - a for a, b in zip(ends, ends[1:], strict=False))
    return found or None
