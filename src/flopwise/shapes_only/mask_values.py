"""Values that follow from shapes alone, kept beside fake and meta tensors so masks can be counted in every mode.

transformers builds its causal, sliding-window and padding masks by index arithmetic (`arange`, comparisons,
`&`) from sizes and the user's attention_mask. On fake or meta tensors those values are lost; this module
replays such ops on small CPU copies (the tensors' "shadows") so `masks.py` can count what a mask keeps. Only
ops whose every tensor argument has a known value are replayed, never random ones, and only small results.
"""

from __future__ import annotations

from typing import Any

import torch
from torch._subclasses.fake_tensor import FakeTensor
from torch.utils._python_dispatch import _disable_current_modes
from torch.utils._pytree import tree_flatten, tree_map
from torch.utils.weak import WeakTensorKeyDictionary

_LIMIT = 1 << 24  # elements: a shadow larger than this is not kept (masks are B·L·S booleans at most)
_VALUES: Any = WeakTensorKeyDictionary()  # fake or meta tensor → its value on the CPU
_CREATION = {"aten.arange", "aten.full", "aten.ones", "aten.zeros", "aten.scalar_tensor", "aten.eye"}


def _shape_only(t: torch.Tensor) -> bool:
    return isinstance(t, FakeTensor) or t.is_meta


def value_of(t: torch.Tensor) -> torch.Tensor | None:
    """The tensor's values: itself when it has data, its shadow when one is known, else None."""
    if not _shape_only(t):
        return t
    value = _VALUES.get(t)
    return value if isinstance(value, torch.Tensor) else None


def remember(stand_in: torch.Tensor, value: torch.Tensor) -> None:
    """`stand_in` (fake or meta) has the values of `value` (a user's input converted for a shape-only count)."""
    if value.numel() <= _LIMIT and not value.is_floating_point() and not _shape_only(value):
        _VALUES[stand_in] = value.detach().cpu()


def track(func: torch._ops.OpOverload, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
    """Replay `func` on the shadows of its arguments when all are known, and remember the outputs' values."""
    if torch.Tag.nondeterministic_seeded in func.tags:
        return
    flat, _ = tree_flatten((args, kwargs))
    tensors = [x for x in flat if isinstance(x, torch.Tensor)]
    if not tensors and name not in _CREATION:
        return
    outs = [x for x in tree_flatten(out)[0] if isinstance(x, torch.Tensor)]
    if any(value_of(t) is None for t in tensors) or not all(_shape_only(t) and t.numel() <= _LIMIT for t in outs):
        for t in outs:  # an in-place op we cannot follow leaves its output's former value stale
            _VALUES.pop(t, None)
        return
    if not outs:
        return

    def on_cpu(x: Any) -> Any:
        if isinstance(x, torch.Tensor):
            return value_of(x)
        return torch.device("cpu") if isinstance(x, torch.device) else x

    try:
        with _disable_current_modes():
            result = func(*tree_map(on_cpu, args), **tree_map(on_cpu, kwargs))
    except Exception:  # noqa: BLE001 - a value we cannot follow stays unknown (the count then says so)
        return
    values = [x for x in tree_flatten(result)[0] if isinstance(x, torch.Tensor)]
    for stand_in, value in zip(outs, values, strict=False):
        _VALUES[stand_in] = value
