"""How a failed count is told: whose error it is (the model's or flopwise's), whether it needs real data, and one
line that says what the model raised, where, and the fix when inputs and weights differ in dtype."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from .spec import Loaded

PACKAGE = str(Path(__file__).resolve().parent.parent)  # src/flopwise: where a bug of ours would raise

# Errors fake and meta tensors raise when a model needs real data (nonzero, .item(), data-dependent shapes).
_NEEDS_DATA = {
    "DataDependentOutputException",
    "DynamicOutputShapeException",
    "UnsupportedOperatorException",
    "UnsupportedFakeTensorException",
    "GuardOnDataDependentSymNode",
    "PendingUnbackedSymbolNotFound",
    "NeedsData",
}
_DTYPE_CLASH = re.compile(r"dtype|scalar type|same type|type \(|BFloat16|Half|Float|Double", re.IGNORECASE)


def raised_by_flopwise(error: BaseException) -> bool:
    """True when the innermost frame is flopwise's own code (a formula, the capture): a bug of ours, not the model's."""
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and tb.tb_frame.f_code.co_filename.startswith(PACKAGE)


def needs_data(error: BaseException) -> bool:
    seen: BaseException | None = error
    while seen is not None:
        if type(seen).__name__ in _NEEDS_DATA or "cannot be called on meta tensors" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def describe_failure(loaded: Loaded, error: Exception) -> str:
    first = str(error).strip().splitlines()[0] if str(error).strip() else "(no message)"
    clash = _dtype_clash(loaded, error)
    notes = [
        n.removeprefix("flopwise: ").replace("mode='real'", "--mode real")
        for n in getattr(error, "__notes__", [])
        if n.startswith("flopwise:") and not (clash and "real data" in n)  # a dtype clash is not about data
    ]
    where = "; ".join(notes + [clash] if clash else notes) or "(no module recorded)"
    return f"{loaded.spec}: the model raised {type(error).__name__}: {first}\n  {where}"


def _dtype_clash(loaded: Loaded, error: Exception) -> str:
    """The fix when float inputs and float weights differ in dtype and the error is about dtypes; else ''."""
    if not _DTYPE_CLASH.search(str(error)):
        return ""
    weights = {p.dtype for p in loaded.model.parameters() if p.is_floating_point()}
    found: set[torch.dtype] = set()

    def collect(x: Any) -> None:
        if isinstance(x, dict):
            for value in x.values():
                collect(value)
        elif type(x) in (tuple, list):
            for value in x:
                collect(value)
        elif getattr(x, "dtype", None) is not None and x.dtype.is_floating_point:
            found.add(x.dtype)

    collect(loaded.inputs)
    if len(weights) != 1 or not found or found == weights:
        return ""
    name = str(next(iter(weights))).removeprefix("torch.")
    given = ", ".join(sorted(str(d).removeprefix("torch.") for d in found))
    return (
        f"the inputs are {given} but the model's weights are {name}: give the inputs as :{name}, "
        f"or cast the model with --dtype {given.split(', ')[0]}"
    )
