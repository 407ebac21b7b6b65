"""Collectives of torch.distributed's process groups (the `c10d` ops that DDP, FSDP and `dist.all_reduce` run).

Communication, not arithmetic: 0 FLOPs here (the sums of a reducing collective run inside the communication
library, spread over ranks in a way the op's arguments do not fix), and the bytes of the local tensors it is
handed (inputs and output buffers). `flopwise.Monitor` reports those bytes per collective as the step's
collective traffic.
"""

from __future__ import annotations

from .registry import zero_cost

# by name: the namespace exists only once torch.distributed is imported
zero_cost(
    "communication between ranks (a process-group collective): 0 FLOPs, the local bytes read and written",
    [
        f"c10d.{name}"
        for name in (
            "_allgather_base_ _reduce_scatter_base_ allgather_ allgather_coalesced_ allgather_into_tensor_coalesced_ "
            "allreduce_ allreduce_coalesced_ alltoall_ alltoall_base_ barrier broadcast_ gather_ gather_into_tensor_ "
            "monitored_barrier_ recv_ recv_any_source_ reduce_ reduce_scatter_ reduce_scatter_tensor_coalesced_ "
            "scatter_ send"
        ).split()
    ],
)
zero_cost("checks a tensor for NaN before a collective (no arithmetic counted)", ["c10d.check_for_nan"])
zero_cost(
    "FSDP2's copies into and out of its collective buffers (no arithmetic)",
    ["fsdp.all_gather_copy_in", "fsdp.split_with_sizes_copy", "fsdp.chunk_cat"],
)
