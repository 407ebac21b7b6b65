"""The one keyer: what makes two op calls the same call, for every cache that lets one stand for another.

A key holds everything an op's cost and its fake kernel's outputs depend on: each tensor's shape, dtype, strides,
storage offset, device and which argument it is (`x * x` is not `x * y`); a nested tensor's component sizes and a
sparse tensor's stored values; plain values by type and value (2, 2.0 and True are different arguments); in a run
with symbolic sizes, sizes by expression. `call_key` adds the global state a kernel may read (`dispatch_state`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch._subclasses.fake_tensor import FakeTensor

from ..formulas.registry import PLAIN_TYPES, Unkeyable, nested_sizes, stored_values

_LAYOUT = torch.Tensor.layout.__get__  # type: ignore[attr-defined]  # C property: FakeTensor's own is slower


def dispatch_state() -> tuple[Any, ...]:
    """Global state that may change an op's outputs without changing its arguments: the default dtype and device
    (factories given none), the backend flags that choose a convolution's output layout, determinism, inference
    mode. Autocast needs no place here: it casts the arguments before the op reaches the counting mode."""
    return (
        torch.get_default_dtype(),
        torch._C._get_default_device(),
        torch._C._get_mkldnn_enabled(),
        torch._C._get_cudnn_enabled(),
        torch.are_deterministic_algorithms_enabled(),
        torch.is_inference_mode_enabled(),
    )


def tree_key(tree: Any, ids: dict[int, int], found: list[torch.Tensor]) -> Any:
    """A hashable key of an argument tree, collecting its tensors into `found`; Unkeyable for an object."""
    kind = type(tree)
    if kind in PLAIN_TYPES:  # 2, 2.0 and True are equal keys, but not the same argument (pow's output dtype)
        return (kind, tree) if kind is float or kind is bool else tree
    if kind is FakeTensor and _LAYOUT(tree) == torch.strided:
        return _fake_key(tree, _index(tree, ids, found))
    if isinstance(tree, torch.Tensor):
        return _tensor_key(tree, _index(tree, ids, found))
    if kind is tuple or kind is list:
        return tuple([item if type(item) is int else tree_key(item, ids, found) for item in tree])  # a list: faster
    if kind is dict:
        return tuple([(k, tree_key(v, ids, found)) for k, v in tree.items()])
    if kind is torch.SymInt:
        return "size", tree.node._expr
    raise Unkeyable  # an object (a script object, a KV cache, a subclass instance)


def call_key(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, list[torch.Tensor]] | None:
    """(key, tensors) of an op call: the op, its arguments and the global state it may read; None when an
    argument cannot be keyed."""
    found: list[torch.Tensor] = []
    try:
        key = tree_key(args, {}, found) if not kwargs else tree_key((args, kwargs), {}, found)
    except Unkeyable:
        return None
    return (func, dispatch_state(), key), found


def all_fake(tensors: list[torch.Tensor]) -> bool:
    """Whether every tensor is a plain (strided) fake tensor: only those have outputs a replay can make."""
    return all(type(t) is FakeTensor and _LAYOUT(t) == torch.strided for t in tensors)


def _index(t: torch.Tensor, ids: dict[int, int], found: list[torch.Tensor]) -> int:
    if id(t) not in ids:
        ids[id(t)] = len(ids)
        found.append(t)
    return ids[id(t)]


def _fake_key(t: FakeTensor, index: int) -> Any:
    key: tuple[Any, ...]
    if t._has_symbolic_sizes_strides:  # a run with symbolic sizes: keyed by expression, never by value
        key = (
            _expressions(t.shape),
            t.dtype,
            _expressions(t.stride()),
            _expressions((t.storage_offset(),)),
            t.fake_device,
            index,
        )
    else:
        key = t.shape, t.dtype, t.stride(), t.storage_offset(), t.fake_device, index
    return key if t.constant is None else (key, _constant(t.constant))


def _tensor_key(t: torch.Tensor, index: int) -> Any:
    """A real, nested, sparse or other non-strided tensor: what its cost depends on (it is never replayed)."""
    nested = nested_sizes(t)
    if nested is not None:
        return "nested", nested, t.dtype, t.device, index
    if t.layout != torch.strided:  # a sparse tensor's cost depends on the values it stores, not its shape
        return t.shape, t.layout, stored_values(t), t.dtype, t.device, index
    return "real", t.shape, t.dtype, t.stride(), t.storage_offset(), t.device, index  # never a fake tensor's key


def _expressions(sizes: Any) -> tuple[Any, ...]:
    # the raw expression: one torch has since simplified (a replacement) only makes a replay miss, never match
    return tuple(d.node._expr if type(d) is torch.SymInt else d for d in sizes)


def _constant(value: torch.Tensor) -> tuple[str, ...]:
    """The value of a constant the fake mode keeps (torch.tensor([]) in transformers' KV cache, a 0-d tensor): part
    of the key, as a fake kernel may read it (exactly: -0.0 is not 0.0)."""
    if value.numel() > 1:  # the fake mode keeps no larger ones; should one appear, it is not keyed by its values
        raise Unkeyable
    with torch._C._DisableTorchDispatch():
        return tuple(map(repr, value.reshape(-1).tolist()))
