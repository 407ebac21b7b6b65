"""One op call's cost: how the op is costed (its plan) and what the call costs under a convention.

Shared by the dispatch-level count (capture.py), a run with symbolic sizes (symbolic_trace.py) and ONNX graphs
(onnx_count/), so that every route charges a call the same way.
"""

from __future__ import annotations

from typing import Any

import torch

from ..core.conventions import Convention
from ..core.cost import Cost, Work
from .attention import mask_argument
from .registry import Formula, compute_dtype, is_view, is_zero_cost, lookup, op_name, padded_shape, specs, stored_bytes

VIEW, ZERO_PLAN, UNKNOWN = "view", "zero", "unknown"  # plans that are not a formula


def nbytes(tensors: list[torch.Tensor]) -> int:
    seen: set[int] = set()
    total = 0
    for t in tensors:
        if id(t) not in seen:
            seen.add(id(t))
            total += stored_bytes(t)  # a sparse tensor moves its values and indices, not its dense size
    return total


def plan_of(func: torch._ops.OpOverload, overrides: dict[str, Formula | None]) -> tuple[str, Any]:
    """(op name, how it is costed): its formula (None when an override ignores it), else VIEW, ZERO or UNKNOWN."""
    name = op_name(func)
    fn = lookup(name, overrides)
    if fn is not False:
        return name, fn
    if is_view(func):
        return name, VIEW
    return name, ZERO_PLAN if is_zero_cost(name) else UNKNOWN


def cost_call(
    convention: Convention,
    plan: Any,
    out: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    inputs: list[torch.Tensor],
    outputs: list[torch.Tensor],
    mask: tuple[str, int | None] = ("", None),
    lengths: dict[int, tuple[int, ...]] | None = None,
) -> tuple[Work, Cost, tuple[tuple[int, ...], ...], str]:
    """One call's work (its formula on the shapes of `args`), its cost under `convention`, the shapes of the
    tensors it reads and the dtype it computes in; bytes are those of `inputs` and `outputs` unless the formula
    says otherwise."""
    work = Work()
    if plan not in (UNKNOWN, ZERO_PLAN, None):
        out_spec, args_spec, extra_spec = specs((out, args, kwargs))  # shapes only: formulas never see values
        if mask[1] is not None:  # a value a formula gets: how many pairs an attention mask keeps
            mask_argument(mask[0], args_spec, extra_spec).kept = mask[1]
        for position, found in (lengths or {}).items():  # and the lengths of packed sequences
            args_spec[position].lengths = found
        work = plan(out_spec, *args_spec, **extra_spec)
    bytes_read = nbytes(inputs) if work.bytes_read is None else work.bytes_read
    bytes_written = nbytes(outputs) if work.bytes_written is None else work.bytes_written
    cost = Cost(convention.macs(work), convention.flops(work), bytes_read, bytes_written)
    dtype = work.dtype or compute_dtype(inputs, outputs)
    return work, cost, tuple(padded_shape(t) for t in inputs), dtype
