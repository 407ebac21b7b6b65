"""Fake tensors made directly: an op's outputs described once (`describe`) and made again (`make`) as
FakeTensorMode's cache makes them, without its slower per-op key (replays, prepare.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode
from torch.utils._pytree import tree_flatten, tree_unflatten

from ..formulas.registry import PLAIN_TYPES

_LAYOUT = torch.Tensor.layout.__get__  # type: ignore[attr-defined]  # C property: FakeTensor's own is slower


def storage_key(t: torch.Tensor) -> int | None:
    """What identifies a tensor's storage (None for a sparse or other storage-less tensor)."""
    try:
        return int(t.untyped_storage()._cdata)
    except (RuntimeError, NotImplementedError):
        return None


class Output(NamedTuple):
    """What a replay makes for one output tensor: a new storage, or a view of input `alias`'s storage."""

    shape: tuple[int | torch.SymInt, ...]  # SymInts in a run with symbolic sizes (symbolic_trace.py)
    stride: tuple[int | torch.SymInt, ...]
    offset: int | torch.SymInt
    dtype: torch.dtype
    device: torch.device
    alias: int | None
    nbytes: int  # of a new storage, at the sizes being counted (a replay with symbolic sizes declares them)


def _natural_bytes(t: torch.Tensor) -> int:
    """Bytes of a fresh storage for `t`'s sizes and strides (what empty_strided allocates)."""
    if t.numel() == 0:
        return 0
    return (1 + sum((n - 1) * s for n, s in zip(t.shape, t.stride(), strict=True))) * t.element_size()


def storage_of(t: torch.Tensor) -> int | None:
    """The key of `t`'s storage; for a view that a replay with symbolic sizes made on an empty storage of its own
    (replay.py), the storage of the tensor it views."""
    base = getattr(t, "_flopwise_base", None)
    while base is not None:
        t, base = base, getattr(base, "_flopwise_base", None)
    return storage_key(t)


def describe(
    out: Any,
    inputs: list[torch.Tensor],
    fake: FakeTensorMode,
    declared: Callable[[int | None], int | None] | None = None,
) -> Any:
    """The outputs' metadata as a replay rebuilds it; None when an output is not a plain fresh or view tensor.
    `declared(storage key)`: the bytes a storage was declared to have (a replay with symbolic sizes makes its
    outputs on empty storages), None for one made with them."""
    leaves, spec = tree_flatten(out)
    storages = [storage_of(t) for t in inputs]
    described: list[Any] = []
    fresh: set[int | None] = set()
    for leaf in leaves:
        if not isinstance(leaf, torch.Tensor):
            if type(leaf) not in PLAIN_TYPES:
                return None
            described.append(leaf)
            continue
        if (
            type(leaf) is not FakeTensor
            or leaf.fake_mode is not fake
            or leaf.constant is not None
            or leaf.layout != torch.strided
            or leaf.requires_grad
            or leaf.is_conj()
            or leaf.is_neg()
        ):
            return None
        storage = storage_of(leaf)
        alias = storages.index(storage) if storage in storages else None
        nbytes = declared(storage) if declared is not None else None
        nbytes = int(leaf.untyped_storage().nbytes()) if nbytes is None else nbytes
        if alias is None and (storage in fresh or leaf.storage_offset() != 0 or nbytes != _natural_bytes(leaf)):
            return None
        fresh.add(storage)
        described.append(
            Output(tuple(leaf.shape), leaf.stride(), leaf.storage_offset(), leaf.dtype, leaf.device, alias, nbytes)
        )
    if isinstance(out, torch.Tensor):
        return described[0], None  # one tensor, the common case: no tree to rebuild
    return described, spec


def rebuild(described: Any, make_leaf: Callable[[Any], Any]) -> Any:
    """The outputs `describe` described, each leaf made by `make_leaf`."""
    leaves, spec = described
    return make_leaf(leaves) if spec is None else tree_unflatten([make_leaf(leaf) for leaf in leaves], spec)


def make(fake: FakeTensorMode, leaf: Any, inputs: list[torch.Tensor]) -> Any:
    """An output as `describe` left it: a new fake tensor, a view of an input's storage, or the value itself."""
    if not isinstance(leaf, Output):
        return leaf
    if leaf.alias is None:
        return fake_empty(fake, leaf.shape, leaf.stride, leaf.dtype, leaf.device)
    with torch._C._DisableTorchDispatch():  # a plain meta tensor on the input's storage, as FakeTensorMode does
        meta = torch.empty_strided(leaf.shape, leaf.stride, dtype=leaf.dtype, device="meta")
        meta.set_(inputs[leaf.alias].untyped_storage(), leaf.offset, leaf.shape, leaf.stride)
    return wrap(fake, meta, leaf.device)


def fake_empty(fake: FakeTensorMode, shape: Any, stride: Any, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A new fake tensor, made as FakeTensorMode's cache makes one: many times cheaper than `torch.empty_strided`
    dispatched through the fake mode."""
    with torch._C._DisableTorchDispatch():
        meta = torch.empty_strided(shape, stride, dtype=dtype, device="meta")
    return wrap(fake, meta, device)


def wrap(fake: FakeTensorMode, meta: torch.Tensor, device: torch.device) -> FakeTensor:
    """`FakeTensor(fake, meta, device)` for a CPU device, made the way its constructor makes it, in a fifth of the
    time: the constructor's argument checks and its twenty attribute writes (memo descriptors) are what it costs, and
    a count makes one for every weight and every op output. Any other device takes the constructor."""
    if not _FAST or device.type != "cpu":
        return FakeTensor(fake, meta, device)
    made = torch.Tensor._make_subclass(
        FakeTensor, meta, meta.requires_grad, dispatch_device=True, device_for_backend_keys=device
    )
    if fake._allow_unsafe_data_ptr_access:
        torch._C._set_warn_deprecated_on_mutable_data_ptr(made)
    else:
        torch._C._set_throw_on_mutable_data_ptr(made)
    made.__dict__.update(_BLANK, fake_mode=fake, _fake_device=device)
    return made


def _blank_state() -> dict[str, Any] | None:
    """The attributes torch's constructor gives a CPU fake tensor besides its mode and device (all None), or None
    when this torch's constructor sets any other (then `wrap` always takes the constructor)."""
    with FakeTensorMode() as mode:
        pass
    made = FakeTensor(mode, torch.empty(0, device="meta"), torch.device("cpu"))
    state = {k: v for k, v in vars(made).items() if k not in ("fake_mode", "_fake_device")}
    return state if all(v is None for v in state.values()) else None


_BLANK = _blank_state() or {}
_FAST = bool(_BLANK)
