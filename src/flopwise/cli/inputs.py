"""Example inputs from the command line: `--input 1x3x224x224[:dtype]`, `--tokens BxS`, `--batch N`.

Every malformed value raises `UsageError` with what was expected, what came, and the fix.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils._pytree import tree_map

from .errors import UsageError

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32, "float": torch.float32, "fp32": torch.float32,
    "float16": torch.float16, "half": torch.float16, "fp16": torch.float16,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
    "float64": torch.float64, "double": torch.float64,
    "int64": torch.int64, "long": torch.int64, "int32": torch.int32, "int": torch.int32,
    "int16": torch.int16, "int8": torch.int8, "uint8": torch.uint8, "bool": torch.bool,
}


def parse_shape(text: str, flag: str = "--input") -> tuple[int, ...]:
    """'1x3x224x224' → (1, 3, 224, 224); also accepts '×' and '*' between sizes."""
    cleaned = text.strip().replace("×", "x").replace("*", "x").lower()
    parts = cleaned.split("x") if cleaned else []
    if not parts or not all(p.strip().isdigit() for p in parts):
        hint = " (use x between sizes)" if any(sep in text for sep in ",; ") else ""
        raise UsageError(f"{flag} expects sizes like 1x3x224x224, got {text!r}{hint}")
    sizes = tuple(int(p) for p in parts)
    if any(s == 0 for s in sizes):
        raise UsageError(f"{flag} sizes must be positive, got {text!r}")
    return sizes


def parse_input(text: str) -> tuple[tuple[int, ...], torch.dtype]:
    """'1x128:int64' → ((1, 128), torch.int64); the dtype defaults to float32."""
    shape_text, _, dtype_text = text.partition(":")
    dtype = torch.float32
    if dtype_text:
        try:
            dtype = DTYPES[dtype_text.strip().lower()]
        except KeyError:
            names = ", ".join(sorted({str(d).removeprefix("torch.") for d in DTYPES.values()}))
            raise UsageError(f"--input {text!r}: unknown dtype {dtype_text!r}; expected one of {names}") from None
    return parse_shape(shape_text), dtype


def make_tensor(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """Deterministic example data: uniform [0, 1) for floats; zeros (a valid token id or index) otherwise."""
    if dtype.is_floating_point:
        return torch.rand(shape, generator=torch.Generator().manual_seed(0)).to(dtype)
    return torch.zeros(shape, dtype=dtype)


def inputs_from_flags(texts: list[str]) -> tuple[torch.Tensor, ...]:
    """One positional argument per `--input`."""
    return tuple(make_tensor(*parse_input(t)) for t in texts)


def parse_tokens(text: str) -> tuple[int, int]:
    sizes = parse_shape(text, flag="--tokens")
    if len(sizes) != 2:
        raise UsageError(f"--tokens expects batch x sequence length like 1x128, got {text!r}")
    return sizes[0], sizes[1]


def token_ids(batch: int, length: int) -> torch.Tensor:
    return torch.zeros(batch, length, dtype=torch.int64)


def with_batch(inputs: Any, batch: int) -> Any:
    """Repeat every example tensor `batch` times along its first dimension; a list of images gets `batch`× longer.

    The defaults have batch 1, so this gives batch N. Lists of tensors (detection models take a list of images)
    are repeated as lists.
    """
    if batch < 1:
        raise UsageError(f"--batch expects a positive integer, got {batch}")

    def repeat(x: Any) -> Any:
        if isinstance(x, torch.Tensor):
            if x.dim() == 0:
                return x
            return x.repeat(batch, *([1] * (x.dim() - 1)))
        return x

    if isinstance(inputs, list) and all(isinstance(x, torch.Tensor) for x in inputs):
        return inputs * batch
    if isinstance(inputs, tuple) and any(isinstance(x, list) for x in inputs):
        return tuple(with_batch(x, batch) if isinstance(x, list) else repeat(x) for x in inputs)
    return tree_map(repeat, inputs)
