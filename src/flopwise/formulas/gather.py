"""Gathers: embedding lookups and indexing read only the elements they select.

No arithmetic (0 FLOPs). Bytes read are the indices plus the selected elements — as many as the output
holds — not the whole source tensor: an embedding of 128 tokens reads 128 rows of its table, not all 50,257.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import ops

from ..core.cost import Work
from .registry import TensorSpec, formula
from .shapes import first, is_tensor

aten = ops.aten


def _nbytes(t: TensorSpec | None) -> int:
    return int(t.numel()) * t.element_size() if is_tensor(t) else 0


def _gathered(result: TensorSpec, *indices: TensorSpec) -> Work:
    out = first(result)
    index_bytes = sum(_nbytes(i) for i in indices)
    return Work(bytes_read=index_bytes + _nbytes(out), note="reads the indices and only the selected elements")


@formula(aten.embedding)
def embedding(result: TensorSpec, weight: TensorSpec, indices: TensorSpec, *args: int | bool, **kwargs: Any) -> Work:
    return _gathered(result, indices)


@formula(aten.index_select)
def index_select(result: TensorSpec, source: TensorSpec, dim: int, index: TensorSpec, **kwargs: Any) -> Work:
    return _gathered(result, index)


@formula(aten.gather)
def gather(result: TensorSpec, source: TensorSpec, dim: int, index: TensorSpec, *args: Any, **kwargs: Any) -> Work:
    return _gathered(result, index)


@formula(aten.index)
def index(result: TensorSpec, source: TensorSpec, indices: Sequence[TensorSpec | None], **kwargs: Any) -> Work:
    return _gathered(result, *(i for i in indices if i is not None))
