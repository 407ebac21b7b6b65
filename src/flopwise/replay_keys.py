"""The key of an op call in a replay (replay.py): everything its fake kernel's outputs and its cost depend on.

In a run with symbolic sizes (symbolic_trace.py) sizes are keyed by their expressions, never by their values, so
that a replay there holds at every size, not only at the sizes being counted.
"""

from __future__ import annotations

from typing import Any

import torch
from torch._subclasses.fake_tensor import FakeTensor

from .registry import PLAIN_TYPES, Unkeyable

# the C property: FakeTensor's own asks its dispatch keys first (slower)
_LAYOUT = torch.Tensor.layout.__get__  # type: ignore[attr-defined]


def _key(tree: Any, ids: dict[int, int], found: list[torch.Tensor]) -> Any:
    kind = type(tree)
    if kind in PLAIN_TYPES:  # 2, 2.0 and True are equal keys, but not the same argument (pow's output dtype)
        return (kind, tree) if kind is float or kind is bool else tree
    if kind is FakeTensor:
        # a constant the fake mode may fold is not keyed, unless it holds no values (a KV cache's empty start)
        if _LAYOUT(tree) != torch.strided or (tree.constant is not None and tree.constant.numel()):
            raise Unkeyable
        if tree.constant is not None:
            return "empty constant", tree.shape, tree.dtype, tree.fake_device, _key_id(tree, ids, found)
        if id(tree) not in ids:
            ids[id(tree)] = len(ids)
            found.append(tree)
        if tree._has_symbolic_sizes_strides:  # a run with symbolic sizes: keyed by expression, never by value
            return _expressions(tree.shape), tree.dtype, _expressions(tree.stride()), \
                _expressions((tree.storage_offset(),)), tree.fake_device, ids[id(tree)]
        return tree.shape, tree.dtype, tree.stride(), tree.storage_offset(), tree.fake_device, ids[id(tree)]
    if kind is tuple or kind is list:
        return tuple(item if type(item) is int else _key(item, ids, found) for item in tree)
    if kind is torch.SymInt:
        return "size", tree.node._expr
    if kind is dict:
        return tuple((k, _key(v, ids, found)) for k, v in tree.items())
    raise Unkeyable  # a real tensor, a subclass, an object


def _key_id(tree: torch.Tensor, ids: dict[int, int], found: list[torch.Tensor]) -> int:
    if id(tree) not in ids:
        ids[id(tree)] = len(ids)
        found.append(tree)
    return ids[id(tree)]


def _expressions(sizes: Any) -> tuple[Any, ...]:
    # the raw expression: one torch has since simplified (a replacement) only makes a replay miss, never match
    return tuple(d.node._expr if type(d) is torch.SymInt else d for d in sizes)


def replay_key(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, list[torch.Tensor]] | None:
    """The op's key with everything its fake kernel's outputs depend on (each tensor's shape, dtype, strides,
    offset, device and which argument it is), and its tensors; None when an argument is not a plain fake tensor
    (a real tensor, a constant the fake mode folds) or cannot be keyed."""
    found: list[torch.Tensor] = []
    try:
        return (func, _key(args, {}, found) if not kwargs else _key((args, kwargs), {}, found)), found
    except Unkeyable:
        return None
