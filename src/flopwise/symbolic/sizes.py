"""The named sizes of a symbolic count: which input dimensions each labels (`Dim`), their values in the given
inputs, and the inputs resized to other values (the data tiled, so token ids stay ids and masks stay masks)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from .region import SymbolicError

Where = tuple[str | int, int]  # (keyword name or positional index of an input, dimension)


@dataclass(frozen=True)
class Dim:
    """What one named size labels: dimensions of inputs, given as (input, dim) pairs, sampled at multiples of
    `multiple` (a ViT's image side moves by whole patches: `Dim((0, 2), (0, 3), multiple=16)`)."""

    where: tuple[Where, ...]
    multiple: int = 1

    def __init__(self, *where: Where | int, multiple: int = 1) -> None:
        if multiple < 1:
            raise SymbolicError(f"Dim: multiple must be a positive integer, got {multiple}")
        object.__setattr__(self, "where", tuple((0, w) if isinstance(w, int) else w for w in where))
        object.__setattr__(self, "multiple", multiple)


def parse_symbolic(spec: dict[str, Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Dim]:
    """{name: Dim}; a value is a Dim, an (input, dim) pair, a list of pairs, or a bare dim of a single input."""
    if not spec:
        raise SymbolicError("symbolic= names no size; e.g. symbolic={'batch': 0} or {'seq': ('input_ids', 1)}")
    single = len(args) == 1 and not kwargs
    dims: dict[str, Dim] = {}
    for name, value in spec.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise SymbolicError(f"symbolic= size names must be identifiers like 'seq', got {name!r}")
        entries = value.where if isinstance(value, Dim) else value if isinstance(value, list) else [value]
        where: list[Where] = []
        for entry in entries:
            if isinstance(entry, int) and not isinstance(entry, bool):
                if not single:
                    raise SymbolicError(
                        f"symbolic={{{name!r}: {entry}}}: a bare dimension needs a single input "
                        f"tensor; name the input: ({next(iter(kwargs), 0)!r}, {entry})"
                    )
                entry = (0, entry)
            if not (isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[1], int)):
                raise SymbolicError(f"symbolic={{{name!r}: {value!r}}}: expected (input, dim), e.g. ('input_ids', 1)")
            _tensor_at(args, kwargs, entry, name)  # fails early, naming the input
            where.append(entry)
        dims[name] = Dim(*where, multiple=value.multiple if isinstance(value, Dim) else 1)
    return dims


def _tensor_at(args: tuple[Any, ...], kwargs: dict[str, Any], where: Where, name: str) -> torch.Tensor:
    key, dim = where
    found = kwargs.get(key) if isinstance(key, str) else args[key] if -len(args) <= key < len(args) else None
    if not isinstance(found, torch.Tensor):
        inputs = [*range(len(args)), *kwargs]
        raise SymbolicError(
            f"symbolic size {name!r}: input {key!r} is not a tensor input of this call (inputs: {inputs})"
        )
    if not -found.dim() <= dim < found.dim():
        raise SymbolicError(f"symbolic size {name!r}: input {key!r} has {found.dim()} dimensions, no dimension {dim}")
    return found


def current_sizes(dims: dict[str, Dim], args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for name, dim in dims.items():
        seen = {int(_tensor_at(args, kwargs, w, name).shape[w[1]]) for w in dim.where}
        if len(seen) > 1:
            raise SymbolicError(f"symbolic size {name!r} labels dimensions of different sizes {sorted(seen)}")
        sizes[name] = seen.pop()
    return sizes


def resized(
    dims: dict[str, Dim], sizes: dict[str, int], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The inputs with each labelled dimension at its new size: the data is tiled along it, so token ids stay
    valid ids and masks stay masks (only the shape matters to a count)."""
    new_args, new_kwargs = list(args), dict(kwargs)
    for name, dim in dims.items():
        for key, axis in dim.where:
            source: Any = new_kwargs if isinstance(key, str) else new_args
            t: torch.Tensor = source[key]
            index = torch.arange(sizes[name], device=t.device) % t.shape[axis]
            source[key] = t.index_select(axis, index)
    return tuple(new_args), new_kwargs
