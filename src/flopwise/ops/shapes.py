"""Small helpers shared by the formula files."""

from __future__ import annotations

from math import prod
from typing import Any

import torch


def numel(t: Any) -> int:
    return t.numel() if isinstance(t, torch.Tensor) else 1


def dims(t: torch.Tensor) -> tuple[int, ...]:
    return tuple(int(s) for s in t.shape)


def nested_sizes(t: Any) -> tuple[tuple[int, ...], ...] | None:
    """The sizes of a nested tensor's components — e.g. ((5, 16), (3, 16)) for two sequences of 5 and 3 tokens —
    or None for a regular tensor. They are metadata (the nested tensor's size table), not its data."""
    if not (isinstance(t, torch.Tensor) and t.is_nested and t.layout == torch.strided):
        return None  # jagged nested tensors dispatch as regular tensors on their values
    return tuple(tuple(int(d) for d in row) for row in t._nested_tensor_size().tolist())


def padded_shape(t: torch.Tensor) -> tuple[int, ...]:
    """A tensor's shape; for a nested tensor, the shape it has once padded: (components, largest sizes…)."""
    sizes = nested_sizes(t)
    if sizes is None:
        return tuple(int(d) for d in t.shape)
    return (len(sizes), *(max(column, default=0) for column in zip(*sizes, strict=True)))


def batch_size(shape: tuple[int, ...]) -> int:
    """Product of the leading (batch) dimensions."""
    return prod(shape)


def first(out: Any) -> torch.Tensor:
    """The first tensor of an op's output (ops such as attention return a tuple)."""
    tensor: torch.Tensor = out[0] if isinstance(out, (tuple, list)) else out
    return tensor


def floating(*args: Any) -> bool:
    """Whether any tensor among `args` holds floating-point (or complex) values: integer math is not a FLOP."""
    return any(isinstance(a, torch.Tensor) and (a.is_floating_point() or a.is_complex()) for a in args)


INTEGER_NOTE = "integer or boolean arithmetic: not floating point, 0 FLOPs"
