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
