"""Random weights on the command line: always the same ones, and never more of them than the rebuild limit allows.

Every model the command line builds with values (torchvision, timm, a model file, a config rebuilt on the CPU for a
real count, `--measure` or a training step) is built with torch's RNG seeded with 0 and given back as it was, so that
one command prints one table. Building weights with random values over the limit (REBUILD_LIMIT, 2 GiB; raised by
`--rebuild-limit GIB` or the FLOPWISE_REBUILD_LIMIT environment variable, in GiB) is refused before any is allocated,
naming the size: an 8B-parameter config is not filled with 16 GB of random numbers to time it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch
from torch import nn

from ..render.units import binary_bytes
from .errors import UsageError
from .spec import Loaded

REBUILD_LIMIT = 2 << 30  # bytes of weights up to which a model is built with random weights
ENV = "FLOPWISE_REBUILD_LIMIT"  # GiB
SEED = 0


@contextlib.contextmanager
def seeded() -> Iterator[None]:
    """torch's CPU RNG seeded with SEED for the block, and given back as it was after it."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        yield


def limit_bytes(gib: float | None = None) -> int:
    """The rebuild limit in bytes: `gib` (--rebuild-limit), else FLOPWISE_REBUILD_LIMIT, else REBUILD_LIMIT."""
    if gib is None:
        text = os.environ.get(ENV, "").strip()
        if not text:
            return REBUILD_LIMIT
        try:
            gib = float(text)
        except ValueError:
            raise UsageError(f"{ENV}={text!r}: expected a number of GiB, e.g. {ENV}=20") from None
    if not gib > 0:
        raise UsageError(f"the rebuild limit must be a positive number of GiB, got {gib:g}")
    return int(gib * 2**30)


def weight_bytes(model: nn.Module) -> int:
    """Bytes of the model's parameters and buffers, as its dtypes give them (meta tensors count their size too)."""
    tensors = {id(t): t for t in [*model.parameters(), *model.buffers()]}.values()  # shared tensors once
    return sum(t.numel() * t.element_size() for t in tensors)


def check_size(spec: str, size: int, limit: int, purpose: str) -> None:
    """Refuse (UsageError, exit code 2) to fill `size` bytes of weights with random values above `limit`."""
    if size <= limit:
        return
    raise UsageError(
        f"{spec}: its weights are {binary_bytes(size)}; building them with random values {purpose} is refused above "
        f"{binary_bytes(limit)} (the rebuild limit): raise it with --rebuild-limit GIB or {ENV}=GIB if this machine "
        "has the memory"
    )


def rebuilt(loaded: Loaded, purpose: str) -> nn.Module:
    """The model again with random weights (seeded), once its size is known to be within the limit."""
    if loaded.rebuild is None:
        raise UsageError(f"{loaded.spec}: cannot be built with weights {purpose}")
    limit = loaded.rebuild_limit if loaded.rebuild_limit is not None else limit_bytes()
    check_size(loaded.spec, weight_bytes(loaded.model), limit, purpose)
    with seeded():
        return loaded.rebuild()
