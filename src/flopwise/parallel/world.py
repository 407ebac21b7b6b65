"""One rank's world: torch's fake process group, the device mesh on it, and a copy of the model without data.

`torch.distributed.init_process_group("fake", rank=r, world_size=W, store=FakeStore())` makes this process rank r
of W: every collective returns at once and moves no data, so any world size runs on one laptop, and the program a
rank runs (its local shapes, its collectives) is the one a real job's rank r runs. One rank at a time: the group
is destroyed when the block ends. A process that already belongs to a process group (under torchrun) cannot plan.
"""

from __future__ import annotations

import contextlib
import copy
import sys
import weakref
from collections.abc import Iterator
from typing import Any

import torch
import torch.distributed as dist
from torch.distributed.device_mesh import DeviceMesh, init_device_mesh

from .layout import Layout

# mesh → its flattened dimensions by name
FLATTENED: weakref.WeakKeyDictionary[DeviceMesh, dict[str, DeviceMesh]] = weakref.WeakKeyDictionary()


@contextlib.contextmanager
def fake_world(layout: Layout, rank: int) -> Iterator[DeviceMesh]:
    """This process as rank `rank` of `layout`'s world, on the fake process group; yields the device mesh."""
    from torch.testing._internal.distributed.fake_pg import FakeStore  # registers the "fake" backend

    if dist.is_initialized():
        raise RuntimeError(
            "parallel plans run on torch's fake process group, and this process already belongs to "
            "a process group: plan outside torchrun (one process is enough for any world size)"
        )
    hook = sys.excepthook  # init_process_group wraps it to prefix tracebacks with "[rank r]": put back after
    forget_meshes()
    dist.init_process_group("fake", rank=rank, world_size=layout.world, store=FakeStore())
    try:
        yield device_mesh(layout)
    finally:
        dist.destroy_process_group()
        sys.excepthook = hook
        forget_meshes()


def device_mesh(layout: Layout) -> DeviceMesh:
    """The device mesh of `layout` on the default process group (fake or real). With ep, "dp" is the flattening of
    "edp" and "ep"; with cp, "dp_cp" that of "dp" and "cp" (layout.py); both kept in `FLATTENED`. The ep and cp
    groups are process groups of their own even where they hold every rank (torch would reuse the default group,
    and the flattening would too: one name for two dimensions)."""
    borrowed: dict[int | str, Any] = {d: dist.get_backend() for d in ("ep", "cp") if layout.sizes.get(d, 1) > 1}
    mesh = init_device_mesh(
        "cpu", layout.mesh_shape, mesh_dim_names=layout.mesh_dims, backend_override=borrowed or None
    )
    flattened: dict[str, DeviceMesh] = {}
    if layout.ep > 1:
        flattened["dp"] = mesh[tuple(d for d in ("edp", "ep") if d in layout.mesh_dims)]._flatten("dp")
    if layout.sizes["cp"] > 1:
        flattened["dp_cp"] = mesh[tuple(d for d in ("dp", "cp") if d in layout.mesh_dims)]._flatten("dp_cp")
    if flattened:
        FLATTENED[mesh] = flattened
    return mesh


def sub_mesh(mesh: DeviceMesh, name: str) -> DeviceMesh:
    """`mesh[name]`, the flattened dimensions ("dp" with ep, "dp_cp" with cp) included."""
    return FLATTENED.get(mesh, {}).get(name) or mesh[name]


def forget_meshes() -> None:
    """Empty DTensor's sharding-propagation caches. Device meshes of two ranks' worlds compare equal (same shape,
    same names), so a decision cached for one rank's mesh would be reused with the next rank's, and its
    collectives would name the first world's process groups."""
    from torch.distributed.tensor._sharding_prop import ShardingPropagator
    from torch.distributed.tensor.debug import _clear_sharding_prop_cache

    _clear_sharding_prop_cache()  # type: ignore[no-untyped-call]
    FLATTENED.clear()
    ShardingPropagator._propagate_tensor_meta_cached.cache_clear()


def group_dims(mesh: DeviceMesh) -> dict[str, str]:
    """{process group name: mesh dimension} for each dimension of `mesh` (a world of one: the default group) and
    each flattened one."""
    names = [*(mesh.mesh_dim_names or ()), *FLATTENED.get(mesh, {})]
    return {sub_mesh(mesh, d).get_group().group_name: d for d in names}


def has_dim(mesh: DeviceMesh, name: str) -> bool:
    """Whether `mesh` has dimension `name` of size above 1 (the flattened ones included)."""
    names = (*(mesh.mesh_dim_names or ()), *FLATTENED.get(mesh, {}))
    return name in names and sub_mesh(mesh, name).size() > 1


def fsdp_dim(mesh: DeviceMesh) -> str:
    """The name of the dense layers' FSDP2 group on `mesh` (layout.FSDP_DIMS)."""
    return "dp_cp" if "dp_cp" in FLATTENED.get(mesh, {}) else "dp"


def meta_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A deep copy of `model` whose parameters and buffers are on the meta device (no data is copied); tied
    parameters stay tied, requires_grad is kept."""
    memo: dict[int, object] = {}
    for module in model.modules():
        for table in (module._parameters, module._buffers):
            for t in table.values():
                if t is None or id(t) in memo:
                    continue
                meta = torch.empty_like(t, device="meta")
                if isinstance(t, torch.nn.Parameter):
                    memo[id(t)] = torch.nn.Parameter(meta, requires_grad=t.requires_grad)
                else:
                    memo[id(t)] = meta
    return copy.deepcopy(model, memo)
