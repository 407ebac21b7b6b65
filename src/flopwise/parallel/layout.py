"""A parallel plan's layout: the sizes of its mesh dimensions, each rank's coordinates, and each rank's inputs.

`{"dp": 16, "pp": 8, "tp": 8}` (or the command line's `"dp=16,pp=8,tp=8"`) names a device mesh of 1,024 ranks.
Its dimensions are always laid out in one order, outermost first:

    pp (pipeline stages) · dp (data parallel, FSDP2) · cp (context parallel) · tp (tensor parallel)

so tensor-parallel groups are the innermost, consecutive ranks (one node's GPUs: the fastest links), then
context-parallel ones, as torchtitan orders them (pp, dp_replicate, dp_shard, cp, tp). Rank r has coordinates
(r // (dp·cp·tp), r // (cp·tp) % dp, r // tp % cp, r % tp). A dimension of size 1 is left out of the mesh.

Context parallelism (`cp`) splits each sample's sequence: the ranks of a cp group hold the same samples, each a
contiguous 1/cp of their tokens. Their parameters are the same, so the dense layers' FSDP2 group is dp and cp
flattened, named "dp_cp" (torchtitan's `dp_shard_cp`); without cp it is "dp".

Expert parallelism (`ep`) adds no ranks: as in torchtitan (`dp_shard_in_ep`) and Megatron (expert model parallel
inside data parallel), it borrows them from dp, so `ep` must divide `dp`. The dp ranks split into dp/ep groups of
ep consecutive dp coordinates; the ranks of one ep group share their experts out (each holds E/ep of them) and
exchange tokens by all-to-all. The mesh then has "edp" (dp/ep, the experts' own data parallel: torchtitan's
`dp_shard_mod_ep`, Megatron's expert data parallel: the experts' FSDP2 group) and "ep" in dp's place, in that
order, and "dp" is their flattening (the dense layers' FSDP2 group); a rank's ep coordinate is its dp coordinate
modulo ep. ep together
with cp is refused (torchtitan lets ep borrow from cp too; not planned here).

The inputs given to `plan()` are the global batch, what one step of the whole job processes: every data-parallel
rank gets an equal slice of dimension 0 (a batch that does not divide is refused, never padded), and a pipeline
rank's slice is cut again into micro-batches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch.utils._pytree import tree_map

DIMS = ("pp", "dp", "cp", "tp")  # outermost first: the dimensions that make the world
BORROWED = {"ep": "dp"}  # dimensions that take their ranks from another (module docstring)
FSDP_DIMS = ("dp", "dp_cp", "edp")  # FSDP2's groups: the dense layers' (dp, or dp_cp with cp), the experts' (edp)


@dataclass(frozen=True)
class Layout:
    sizes: dict[str, int]  # every name of DIMS and BORROWED, 1 where not parallel

    @property
    def world(self) -> int:
        out = 1
        for d in DIMS:
            out *= self.sizes[d]
        return out

    @property
    def ep(self) -> int:
        return self.sizes.get("ep", 1)

    @property
    def mesh_sizes(self) -> dict[str, int]:
        """{dimension: size} of the device mesh, outermost first: those of size above 1 (dp alone for a world of
        one); with ep, "edp" (when dp/ep > 1) and "ep" in dp's place, and "tp" even of size 1 (transformers' expert
        parallelism asks for the group of ranks that share a batch)."""
        out: dict[str, int] = {}
        for d in DIMS:
            if d == "dp" and self.ep > 1:
                if self.sizes["dp"] > self.ep:
                    out["edp"] = self.sizes["dp"] // self.ep
                out["ep"] = self.ep
            elif self.sizes[d] > 1 or (d == "tp" and self.ep > 1):
                out[d] = self.sizes[d]
        return out or {"dp": 1}

    @property
    def mesh_dims(self) -> tuple[str, ...]:
        return tuple(self.mesh_sizes)

    @property
    def mesh_shape(self) -> tuple[int, ...]:
        return tuple(self.mesh_sizes.values())

    def coords(self, rank: int) -> dict[str, int]:
        """{dim: coordinate} of a rank, every dimension of DIMS (0 for those of size 1), and "ep" with ep."""
        out: dict[str, int] = {}
        for d in reversed(DIMS):
            out[d] = rank % self.sizes[d]
            rank //= self.sizes[d]
        coords = {d: out[d] for d in DIMS}
        if self.ep > 1:
            coords["ep"] = coords["dp"] % self.ep
        return coords

    def rank_of(self, coords: dict[str, int]) -> int:
        rank = 0
        for d in DIMS:
            rank = rank * self.sizes[d] + coords.get(d, 0)
        return rank

    def group(self, rank: int, dim: str) -> tuple[int, ...]:
        """The ranks of `rank`'s group along `dim` (its own coordinate varied, the others fixed); "ep" and "edp"
        vary the dp coordinate within its ep group and across ep groups."""
        coords = self.coords(rank)
        dp = coords["dp"]
        if dim == "ep":
            first = dp - dp % self.ep
            return tuple(self.rank_of({**coords, "dp": first + i}) for i in range(self.ep))
        if dim == "edp":
            return tuple(
                self.rank_of({**coords, "dp": i * self.ep + dp % self.ep}) for i in range(self.sizes["dp"] // self.ep)
            )
        if dim == "dp_cp":
            return tuple(
                self.rank_of({**coords, "dp": i, "cp": j})
                for i in range(self.sizes["dp"])
                for j in range(self.sizes["cp"])
            )
        return tuple(self.rank_of({**coords, dim: i}) for i in range(self.sizes[dim]))

    def describe(self) -> str:
        shown = [f"{d}={self.sizes[d]}" for d in ("pp", "dp", "ep", "cp", "tp") if self.sizes.get(d, 1) > 1]
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
    sizes = {d: 1 for d in (*DIMS, *BORROWED)}
    for name, size in parallel.items():
        if name not in sizes:
            raise ValueError(
                f"parallel: unknown dimension {name!r}; the dimensions are {', '.join((*DIMS, *BORROWED))}"
            )
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ValueError(f"parallel: {name} must be a positive integer, got {size!r}")
        sizes[name] = size
    for name, lender in BORROWED.items():
        if sizes[lender] % sizes[name]:
            raise ValueError(
                f"parallel: {name} borrows its ranks from {lender} (as torchtitan and Megatron do), so {name} must "
                f"divide {lender}: got {lender}={sizes[lender]}, {name}={sizes[name]} (e.g. '{lender}={sizes[name]},"
                f"{name}={sizes[name]}')"
            )
    if sizes["ep"] > 1 and sizes["cp"] > 1:
        raise ValueError("parallel: ep together with cp is not planned yet (ep borrows from dp alone here)")
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
