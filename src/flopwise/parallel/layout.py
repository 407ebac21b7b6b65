"""A parallel plan's layout: the sizes of its mesh dimensions, each rank's coordinates, and each rank's inputs.

`{"dp": 16, "pp": 8, "tp": 8}` (or the command line's `"dp=16,pp=8,tp=8"`) names a device mesh of 1,024 ranks.
Its dimensions are always laid out in one order, outermost first:

    pp (pipeline stages) · dp (data parallel, FSDP2) · tp (tensor parallel)

so tensor-parallel groups are the innermost, consecutive ranks (one node's GPUs: the fastest links), as
torchtitan and Megatron order them. Rank r has coordinates (r // (dp·tp), r // tp % dp, r % tp). A dimension of
size 1 is left out of the mesh.

The inputs given to `plan()` are the global batch, what one step of the whole job processes: every data-parallel
rank gets an equal slice of dimension 0 (a batch that does not divide is refused, never padded), and a pipeline
rank's slice is cut again into micro-batches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch.utils._pytree import tree_map

DIMS = ("pp", "dp", "tp")  # outermost first
KNOWN_LATER = {"ep": "expert parallel", "cp": "context parallel"}


@dataclass(frozen=True)
class Layout:
    sizes: dict[str, int]  # every name of DIMS, 1 where not parallel

    @property
    def world(self) -> int:
        out = 1
        for d in DIMS:
            out *= self.sizes[d]
        return out

    @property
    def mesh_dims(self) -> tuple[str, ...]:
        """The dimensions of the device mesh: those of size above 1 (dp alone for a world of one)."""
        return tuple(d for d in DIMS if self.sizes[d] > 1) or ("dp",)

    @property
    def mesh_shape(self) -> tuple[int, ...]:
        return tuple(self.sizes[d] for d in self.mesh_dims)

    def coords(self, rank: int) -> dict[str, int]:
        """{dim: coordinate} of a rank, every dimension of DIMS (0 for those of size 1)."""
        out: dict[str, int] = {}
        for d in reversed(DIMS):
            out[d] = rank % self.sizes[d]
            rank //= self.sizes[d]
        return {d: out[d] for d in DIMS}

    def rank_of(self, coords: dict[str, int]) -> int:
        rank = 0
        for d in DIMS:
            rank = rank * self.sizes[d] + coords.get(d, 0)
        return rank

    def group(self, rank: int, dim: str) -> tuple[int, ...]:
        """The ranks of `rank`'s group along `dim` (its own coordinate varied, the others fixed)."""
        coords = self.coords(rank)
        return tuple(self.rank_of({**coords, dim: i}) for i in range(self.sizes[dim]))

    def describe(self) -> str:
        shown = [f"{d}={self.sizes[d]}" for d in DIMS if self.sizes[d] > 1]
        return ", ".join(shown) or "one rank"


def parse(parallel: dict[str, int] | str) -> Layout:
    """The layout of `{"dp": 16, "pp": 8, "tp": 8}` or `"dp=16,pp=8,tp=8"`; unknown or unsupported names refused."""
    if isinstance(parallel, str):
        pairs: dict[str, int] = {}
        for part in filter(None, (p.strip() for p in parallel.split(","))):
            name, eq, value = part.partition("=")
            if not eq or not value.strip().isdigit():
                raise ValueError(f"parallel: {part!r} is not NAME=SIZE (e.g. 'dp=16,pp=8,tp=8')")
            pairs[name.strip()] = int(value)
        parallel = pairs
    sizes = {d: 1 for d in DIMS}
    for name, size in parallel.items():
        if name in KNOWN_LATER and size == 1:
            continue
        if name in KNOWN_LATER:
            raise ValueError(
                f"parallel: {name} ({KNOWN_LATER[name]}) is not planned yet; the dimensions planned are "
                f"{', '.join(DIMS)}"
            )
        if name not in sizes:
            raise ValueError(f"parallel: unknown dimension {name!r}; the dimensions are {', '.join(DIMS)}")
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ValueError(f"parallel: {name} must be a positive integer, got {size!r}")
        sizes[name] = size
    return Layout(sizes)


def batch_size(args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    """The batch: dimension 0 of the first tensor input."""
    for x in (*args, *kwargs.values()):
        if isinstance(x, torch.Tensor) and x.dim() > 0:
            return int(x.shape[0])
    raise ValueError("parallel: the inputs hold no tensor with a batch dimension to split across data-parallel ranks")


def slice_batch(
    args: tuple[Any, ...], kwargs: dict[str, Any], parts: int, index: int, what: str
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Slice `index` of `parts` equal slices of every tensor whose dimension 0 is the batch; others as given."""
    batch = batch_size(args, kwargs)
    if batch % parts:
        raise ValueError(
            f"parallel: a batch of {batch} does not split into {parts} {what}; give a batch that "
            f"{parts} divides (the inputs are the global batch of one step)"
        )
    step = batch // parts

    def cut(x: Any) -> Any:
        if isinstance(x, torch.Tensor) and x.dim() > 0 and x.shape[0] == batch:
            return x[index * step : (index + 1) * step]
        return x

    out: tuple[tuple[Any, ...], dict[str, Any]] = tree_map(cut, (args, kwargs))
    return out
