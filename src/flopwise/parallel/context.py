"""Context parallel (cp): each rank of a cp group holds a contiguous 1/cp of every sample's sequence, and its
attention takes its own queries against the keys and values of the whole sequence, gathered over the group.

torch's own `context_parallel` (torch.distributed.tensor.experimental) swaps SDPA for ring attention on its CUDA
kernels only (flash, efficient, cuDNN): on the CPU, SDPA runs `_scaled_dot_product_flash_attention_for_cpu`, which
its dispatcher does not take, so DTensor's generic rule gathers queries, keys and values and every rank computes
the whole attention (and under fake tensors its sharding propagation does not finish). A plan counted that way
would be torch's CPU fallback, not a context-parallel rank. The rank program here is the all-gather form of
context parallelism instead (Llama 3, "The Llama 3 Herd of Models" §3.3.2): SDPA patched as torch's
`context_parallel` patches it (the function `torch.nn.functional.scaled_dot_product_attention`, for the time of
the rank's step), keys and values all-gathered along the sequence with torch's functional collectives (autograd's
backward reduce-scatters their gradients), the rank's queries attending to all of them in one SDPA. A causal
attention keeps, for the query at global position p, the keys at positions ≤ p: an explicit mask whose diagonal
is offset by the rank's first position. Contiguous chunks, no load balancing. torch's ring attention with
`set_rotate_method("allgather")` moves the same bytes (keys and values concatenated, one all-gather) but runs one
SDPA per chunk of keys, skipping those a causal mask removes.

The inputs: dimension 1 of every tensor input that has the sequence length there is cut (input_ids, labels,
inputs_embeds, a padding mask); a transformers model is given its `position_ids` (the global positions of the
rank's chunk) when the inputs hold none, as torchtitan shards its rotary table. An attention called with a mask
of its own is refused (a mask over the local chunk would be the wrong one), as torch's context_parallel does.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributed import _functional_collectives as funcol
from torch.distributed.distributed_c10d import GroupName
from torch.utils._pytree import tree_map

MASKED = (
    "cp: attention called with a mask of its own cannot be split by sequence (the mask is over the local chunk); "
    "context parallel takes causal or full attention without a mask, as torch's context_parallel does"
)

NOTE = (
    "cp: attention as the all-gather form of context parallelism (each rank's queries against the keys and values "
    "gathered over cp; torch's context_parallel ring attention runs on CUDA kernels only)"
)


def sequence_length(args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    """The sequence: dimension 1 of the first tensor input with two dimensions or more."""
    for x in (*args, *kwargs.values()):
        if isinstance(x, torch.Tensor) and x.dim() > 1:
            return int(x.shape[1])
    raise ValueError("cp: the inputs hold no tensor with a sequence dimension (dimension 1) to split")


def slice_sequence(
    model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], parts: int, index: int
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The inputs of chunk `index` of `parts` (module docstring); a sequence `parts` does not divide is refused."""
    seq = sequence_length(args, kwargs)
    if seq % parts:
        raise ValueError(
            f"cp: a sequence of {seq} does not split into {parts} context-parallel chunks; give a length that "
            f"{parts} divides"
        )
    step = seq // parts
    chunk = slice(index * step, (index + 1) * step)
    kwargs = dict(kwargs)
    if "position_ids" not in kwargs and "position_ids" in inspect.signature(model.forward).parameters and not args:
        batch = next(x.shape[0] for x in kwargs.values() if isinstance(x, torch.Tensor) and x.dim() > 1)
        kwargs["position_ids"] = torch.arange(seq).expand(batch, seq)

    def cut(x: Any) -> Any:
        if isinstance(x, torch.Tensor) and x.dim() > 1 and x.shape[1] == seq:
            return x[:, chunk]
        return x

    out: tuple[tuple[Any, ...], dict[str, Any]] = tree_map(cut, (args, kwargs))
    return out


@contextlib.contextmanager
def gathered_attention(group: str, parts: int, index: int) -> Iterator[None]:
    """`F.scaled_dot_product_attention` as a cp rank runs it (module docstring), for the time of the block; `group`
    names the cp process group, `index` is the rank's chunk."""
    original = F.scaled_dot_product_attention

    def gather(t: torch.Tensor) -> torch.Tensor:
        out = funcol.all_gather_single_autograd(t.contiguous(), gather_dim=2, group=GroupName(group))
        waited: torch.Tensor = funcol.wait_tensor(out)  # type: ignore[no-untyped-call]
        return waited

    def attend(
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        attn_mask: torch.Tensor | None = None,
        dropout_p: float = 0.0,
        is_causal: bool = False,
        scale: float | None = None,
        enable_gqa: bool = False,
    ) -> torch.Tensor:
        if attn_mask is not None:
            raise ValueError(MASKED)
        keys, values = gather(key), gather(value)
        mask = None
        if is_causal:  # the query at global position index·L + i keeps the keys at positions ≤ it
            local = query.shape[-2]
            mask = torch.ones(local, keys.shape[-2], dtype=torch.bool, device=query.device).tril(index * local)
        return original(query, keys, values, attn_mask=mask, dropout_p=dropout_p, scale=scale, enable_gqa=enable_gqa)

    F.scaled_dot_product_attention = attend
    try:
        yield
    finally:
        F.scaled_dot_product_attention = original
