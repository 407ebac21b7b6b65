"""What an op's schema says it writes: the one answer every part of a count asks for (restoring the model's state,
following values, replays)."""

from __future__ import annotations

from typing import Any

import torch

# Batch norm kernels that update the running statistics in training without saying so in their schema.
_UNANNOTATED_WRITES = {"native_batch_norm", "cudnn_batch_norm", "miopen_batch_norm"}
_WRITES: dict[Any, tuple[tuple[int, str], ...]] = {}  # op → its written arguments, read from the schema once


def written_arguments(func: Any) -> tuple[tuple[int, str], ...]:
    """(position, name) of each argument the op writes, from its schema (`Tensor(a!)`), batch norm's statistics
    included."""
    found = _WRITES.get(func)
    if found is None:
        schema = getattr(func, "_schema", None)
        if schema is None:
            found = ()
        elif schema.name.removeprefix("aten::") in _UNANNOTATED_WRITES:
            found = ((3, "running_mean"), (4, "running_var"))
        else:
            found = tuple(
                (i, a.name)
                for i, a in enumerate(schema.arguments)
                if a.alias_info is not None and a.alias_info.is_write
            )
        _WRITES[func] = found
    return found


def written_tensors(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[torch.Tensor]:
    """The tensors a call writes: its written arguments, batch norm's running statistics only in training (its
    `training` argument, the sixth: the one case the schema does not say)."""
    where = written_arguments(func)
    if where and not func._schema.is_mutable and not args[5]:
        return []
    found: list[Any] = []
    for i, name in where:
        value = args[i] if i < len(args) else kwargs.get(name)
        found.extend(value if isinstance(value, (list, tuple)) else [value])
    return [t for t in found if isinstance(t, torch.Tensor)]
