"""Collectives of `torch.distributed._functional_collectives` (the `_c10d_functional` ops).

A collective is communication: it moves tensors between ranks, so it is 0 FLOPs here and its bytes are the
local tensors it reads and writes. The reductions a reducing collective performs (all_reduce,
reduce_scatter) run inside the communication library, spread over the ranks in a way the op's arguments do
not fix (ring, tree, in-network), so they are not counted.
"""

from __future__ import annotations

from .registry import zero_cost


def _ops(names: str) -> list[str]:
    # by name: the namespace exists only once torch.distributed._functional_collectives is imported
    return [f"_c10d_functional.{name}" for name in names.split()]


zero_cost(
    "communication between ranks: 0 FLOPs, the local bytes read and written",
    _ops(
        "all_reduce all_reduce_coalesced all_gather_into_tensor all_gather_into_tensor_coalesced "
        "all_gather_into_tensor_out reduce_scatter_tensor reduce_scatter_tensor_coalesced reduce_scatter_tensor_out "
        "all_to_all_single broadcast isend irecv batch_p2p_ops"
    ),
)
zero_cost(
    "waits for or wraps the result of a collective (no arithmetic)",
    _ops("wait_tensor _wrap_tensor_autograd"),
)
