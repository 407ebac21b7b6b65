"""A rank's program at its local shapes, and its collectives: the dispatch mode a plan counts under.

torch's DTensor runs each op on a rank's local shard (and redistributes with collectives) inside its own
dispatch, below any TorchDispatchMode; a mode sees the op at the DTensor's global shapes first, which is why
torch's FlopCounterMode reports the unsharded work on every rank. `LocalShards` sits above the counting mode and
declines every op that has a DTensor argument, so DTensor takes it, and the ops DTensor then runs on local tensors
(its local kernels, its redistributions' collectives) reach the counting mode below: the count is the rank's own.

DTensor's sharding propagation also runs ops: the op at global shapes on fake tensors, to learn the output's
shape (cached per op and shapes, so only on the first call of each). They are no part of the rank's program and
run here with the counting modes set aside, under the fake mode they run in alone. The mode works the same in a
real run (torchrun, any backend): see tests/parallel_rank_step.py.

Each collective the rank runs (process-group ops of FSDP2, functional collectives of DTensor) is recorded with its
kind, its size and the mesh dimension of its group. Size is what nccl-tests calls a collective's size: the whole
tensor of an all-reduce or broadcast, the gathered output of an all-gather, the input of a reduce-scatter or an
all-to-all, the message of a send or recv.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass
from typing import Any

import torch
from torch.distributed import distributed_c10d as c10d
from torch.distributed.tensor import DTensor
from torch.distributed.tensor._sharding_prop import ShardingPropagator
from torch.utils._python_dispatch import TorchDispatchMode, _disable_current_modes
from torch.utils._pytree import tree_leaves

PROPAGATION = {ShardingPropagator._propagate_tensor_meta_non_cached.__code__}
FRAMES = 12  # how far up the stack propagation's own frame can be from an op it runs

KINDS = {
    "all_reduce": ("allreduce_", "allreduce_coalesced_", "all_reduce", "all_reduce_coalesced"),
    "all_gather": (
        "_allgather_base_",
        "allgather_",
        "allgather_coalesced_",
        "allgather_into_tensor_coalesced_",
        "all_gather_into_tensor",
        "all_gather_into_tensor_coalesced",
        "all_gather_into_tensor_out",
    ),
    "reduce_scatter": (
        "_reduce_scatter_base_",
        "reduce_scatter_",
        "reduce_scatter_tensor_coalesced_",
        "reduce_scatter_tensor",
        "reduce_scatter_tensor_coalesced",
        "reduce_scatter_tensor_out",
    ),
    "all_to_all": ("alltoall_", "alltoall_base_", "all_to_all_single"),
    "broadcast": ("broadcast_", "broadcast"),
    "send": ("send", "isend"),
    "recv": ("recv_", "irecv"),
}
KIND_OF = {name: kind for kind, names in KINDS.items() for name in names}
# c10d ops whose first argument is the output buffer and second the input: the size is the larger of the two
OUTPUT_FIRST = {
    "_allgather_base_",
    "allgather_",
    "allgather_into_tensor_coalesced_",
    "_reduce_scatter_base_",
    "reduce_scatter_",
    "reduce_scatter_tensor_coalesced_",
    "alltoall_base_",
    "alltoall_",
}


@dataclass(frozen=True)
class CollectiveCall:
    kind: str  # all_reduce, all_gather, reduce_scatter, all_to_all, broadcast, send, recv
    mesh_dim: str  # the mesh dimension of its group ("world" for the default group beyond the mesh)
    group_size: int
    bytes: int  # the collective's size (module docstring)
    op: str  # the aten-level op, e.g. "c10d._allgather_base_"
    backward: bool = False  # run by the autograd engine (a backward pass)


def _bytes(x: Any) -> int:
    return sum(t.numel() * t.element_size() for t in tree_leaves(x) if isinstance(t, torch.Tensor))


def _in_propagation() -> bool:
    frame: Any = sys._getframe(2)
    for _ in range(FRAMES):
        if frame is None:
            return False
        if frame.f_code in PROPAGATION:
            return True
        frame = frame.f_back
    return False


class LocalShards(TorchDispatchMode):  # type: ignore[no-untyped-call]  # torch's __init_subclass__
    """Above the counting mode: DTensor ops left to DTensor (so their local ops are counted), DTensor's
    shape propagation run uncounted, and every collective recorded (module docstring)."""

    def __init__(self, groups: dict[str, str]) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.groups = groups  # process group name → mesh dimension
        self.collectives: list[CollectiveCall] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        if any(issubclass(t, DTensor) for t in types):
            return NotImplemented  # DTensor runs it, on local shards, and its ops come back here
        if _in_propagation():  # shape propagation at global shapes, not the rank's work: under its fake mode alone
            fake = torch._C._get_dispatch_mode(torch._C._TorchDispatchModeKey.FAKE)
            with _disable_current_modes(), fake if fake is not None else contextlib.nullcontext():
                return func(*args, **kwargs)
        namespace, _, name = func.name().partition("::")
        if namespace in ("c10d", "_c10d_functional") and name.split(".")[0] in KIND_OF:
            self._record(namespace, name.split(".")[0], args, kwargs)
        return func(*args, **kwargs)

    def _record(self, namespace: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        group_name, size = "", 1
        for a in (*args, *kwargs.values()):
            if isinstance(a, torch.ScriptObject) and "ProcessGroup" in str(a._type()):
                group = torch.distributed.ProcessGroup.unbox(a)
                group_name, size = group.group_name, group.size()
            elif isinstance(a, str) and a in self.groups:
                group_name = a
        if namespace == "_c10d_functional":
            size = c10d._get_group_size_by_name(group_name) if group_name else 1  # type: ignore[arg-type]
        if name in OUTPUT_FIRST:
            moved = max(_bytes(args[0]), _bytes(args[1]))
        elif namespace == "_c10d_functional" and KIND_OF[name] == "all_gather":
            moved = _bytes(args[0]) * size
        else:
            moved = _bytes(args[0])
        self.collectives.append(
            CollectiveCall(
                KIND_OF[name],
                self.groups.get(group_name, "world"),
                size,
                moved,
                f"{namespace}.{name}",
                torch._C._current_graph_task_id() != -1,
            )
        )
