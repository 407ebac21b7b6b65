"""Small helpers shared by the formula files."""

from __future__ import annotations

from math import prod
from typing import Any

import torch


def numel(t: Any) -> int:
    return t.numel() if isinstance(t, torch.Tensor) else 1


def dims(t: torch.Tensor) -> tuple[int, ...]:
    return tuple(int(s) for s in t.shape)


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
