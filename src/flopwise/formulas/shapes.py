"""Small helpers shared by the formula files. Formulas see tensors as `TensorSpec`s (registry.py)."""

from __future__ import annotations

from typing import Any

from .registry import TensorSpec


def is_tensor(x: Any) -> bool:
    return isinstance(x, TensorSpec)


def numel(t: Any) -> int:
    """Elements of a tensor argument; 1 for a scalar argument."""
    return t.numel() if is_tensor(t) else 1


def nested_sizes(t: Any) -> tuple[tuple[int, ...], ...] | None:
    """The component sizes of a nested tensor argument (e.g. ((5, 16), (3, 16))); None for a regular tensor."""
    return t.nested if is_tensor(t) else None


def first(out: Any) -> TensorSpec:
    """The first tensor of an op's output (ops such as attention return a tuple)."""
    tensor: TensorSpec = out[0] if isinstance(out, (tuple, list)) else out
    return tensor


def floating(*args: Any) -> bool:
    """Whether any tensor among `args` holds floating-point (or complex) values: integer math is not a FLOP."""
    return any(is_tensor(a) and (a.is_floating_point() or a.is_complex()) for a in args)


INTEGER_NOTE = "integer or boolean arithmetic: not floating point, 0 FLOPs"
