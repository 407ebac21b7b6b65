"""Example inputs from the command line: `--input [NAME=]1x3x224x224[:dtype]`, `--tokens BxS`, `--batch N`.

Inputs stay shapes (`Shaped`) until the count knows its mode: fake and meta counts never allocate them, so a
1×3×100000×100000 input costs nothing there; only a real count or a measurement fills them with data. Every
malformed value raises `UsageError` with what was expected, what came, and the fix.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch.utils._pytree import tree_map

from .errors import UsageError

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float": torch.float32,
    "fp32": torch.float32,
    "float16": torch.float16,
    "half": torch.float16,
    "fp16": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float64": torch.float64,
    "double": torch.float64,
    "int64": torch.int64,
    "long": torch.int64,
    "int32": torch.int32,
    "int": torch.int32,
    "int16": torch.int16,
    "int8": torch.int8,
    "uint8": torch.uint8,
    "bool": torch.bool,
}
FLOAT_DTYPES = {name: dtype for name, dtype in DTYPES.items() if dtype.is_floating_point}
SMALL_INTEGERS = 1 << 20  # elements: integer inputs up to this size are real even in shape-only modes
MAX_BYTES = 2**62  # beyond this no device can hold a tensor, and torch's sizes overflow


@dataclass(frozen=True)
class Shaped:
    """An input tensor not made yet: its shape and dtype; `prefix` = (token id, n) fills the first n positions."""

    shape: tuple[int, ...]
    dtype: torch.dtype = torch.float32
    prefix: tuple[int, int] | None = None

    def make(self, real: bool) -> torch.Tensor:
        """Meta (no memory) unless `real`: then uniform [0, 1) for floats and zeros (a valid index) otherwise.

        Small integer inputs (token ids, grids) are real in every mode: their values are the model's to read
        (a count of image placeholders, a padding check), and shape-only counts follow what a real run does.
        """
        if not real and (self.dtype.is_floating_point or math.prod(self.shape) > SMALL_INTEGERS):
            return torch.empty(self.shape, dtype=self.dtype, device="meta")
        try:
            if self.dtype.is_floating_point:
                return torch.rand(self.shape, generator=torch.Generator().manual_seed(0)).to(self.dtype)
            tensor = torch.zeros(self.shape, dtype=self.dtype)
        except (RuntimeError, MemoryError) as error:  # torch says "can't allocate memory" as a RuntimeError
            gib = math.prod(self.shape) * self.dtype.itemsize / 2**30
            raise UsageError(
                f"an input of {describe(self)} needs {gib:,.1f} GiB to run for real ({type(error).__name__}); "
                "count it with --mode fake or --mode meta, which never allocate inputs"
            ) from None
        if self.prefix is not None:
            tensor[..., : self.prefix[1]] = self.prefix[0]
        return tensor


def describe(shaped: Shaped) -> str:
    return "×".join(map(str, shaped.shape)) + " " + str(shaped.dtype).removeprefix("torch.")


def make_inputs(inputs: Any, real: bool) -> Any:
    """Turn every `Shaped` in `inputs` (a tensor, tuple, list or dict) into a tensor: meta unless `real`."""
    if isinstance(inputs, Shaped):
        return inputs.make(real)
    if isinstance(inputs, dict):
        return {key: make_inputs(value, real) for key, value in inputs.items()}
    if type(inputs) in (tuple, list):
        return type(inputs)(make_inputs(value, real) for value in inputs)
    return inputs


def parse_shape(text: str, flag: str = "--input") -> tuple[int, ...]:
    """'1x3x224x224' → (1, 3, 224, 224); also accepts '×' and '*' between sizes."""
    cleaned = text.strip().replace("×", "x").replace("*", "x").replace("X", "x")
    parts = [p.strip() for p in cleaned.split("x")] if cleaned else []
    if not parts or not all(re.fullmatch(r"[0-9]+", p) for p in parts):
        hint = " (use x between sizes)" if any(sep in text for sep in ",; ") else ""
        raise UsageError(f"{flag} expects sizes like 1x3x224x224, got {text!r}{hint}")
    sizes = tuple(int(p) for p in parts)
    if any(s == 0 for s in sizes):
        raise UsageError(f"{flag} sizes must be positive, got {text!r}")
    if math.prod(sizes) * 8 > MAX_BYTES:
        raise UsageError(f"{flag} {text!r} is impossibly large ({math.prod(sizes):.3g} elements); check the sizes")
    return sizes


def parse_dtype(text: str, flag: str, choices: dict[str, torch.dtype] = DTYPES) -> torch.dtype:
    try:
        return choices[text.strip().lower()]
    except KeyError:
        names = ", ".join(sorted({str(d).removeprefix("torch.") for d in choices.values()}))
        raise UsageError(f"{flag}: unknown dtype {text!r}; expected one of {names}") from None


def parse_input(text: str) -> tuple[str, Shaped]:
    """'1x128:int64' → ('', Shaped((1, 128), int64)); 'pixel_values=1x3x224x224' names a keyword input."""
    name, equals, rest = text.partition("=")
    if not equals:
        name, rest = "", text
    elif not name.strip().isidentifier():
        raise UsageError(f"--input {text!r}: {name!r} is not an argument name (write NAME=1x3x224x224)")
    shape_text, _, dtype_text = rest.partition(":")
    dtype = parse_dtype(dtype_text, f"--input {text!r}") if dtype_text else torch.float32
    return name.strip(), Shaped(parse_shape(shape_text), dtype)


def parse_inputs(texts: tuple[str, ...]) -> tuple[tuple[Shaped, ...], dict[str, Shaped]]:
    """Every `--input`: (positional inputs, keyword inputs by name)."""
    positional: list[Shaped] = []
    named: dict[str, Shaped] = {}
    for text in texts:
        name, shaped = parse_input(text)
        if name:
            named[name] = shaped
        else:
            positional.append(shaped)
    return tuple(positional), named


def parse_tokens(text: str) -> tuple[int, int]:
    sizes = parse_shape(text, flag="--tokens")
    if len(sizes) != 2:
        raise UsageError(f"--tokens expects batch x sequence length like 1x128, got {text!r}")
    return sizes[0], sizes[1]


def token_ids(batch: int, length: int) -> Shaped:
    return Shaped((batch, length), torch.int64)


def with_dtype(inputs: Any, dtype: torch.dtype) -> Any:
    """Floating inputs in `dtype` (--dtype); integer inputs (token ids, indices) stay as they are."""
    if isinstance(inputs, Shaped):
        return replace(inputs, dtype=dtype) if inputs.dtype.is_floating_point else inputs
    if isinstance(inputs, torch.Tensor):
        return inputs.to(dtype) if inputs.is_floating_point() else inputs
    if isinstance(inputs, dict):
        return {key: with_dtype(value, dtype) for key, value in inputs.items()}
    if type(inputs) in (tuple, list):
        return type(inputs)(with_dtype(value, dtype) for value in inputs)
    return inputs


def with_batch(inputs: Any, batch: int) -> Any:
    """Repeat every example tensor `batch` times along its first dimension; a list of images gets `batch`× longer.

    The defaults have batch 1, so this gives batch N. Lists of tensors (detection models take a list of images)
    are repeated as lists.
    """
    if batch < 1:
        raise UsageError(f"--batch expects a positive integer, got {batch}")

    def repeat(x: Any) -> Any:
        if isinstance(x, Shaped) and x.shape:
            return replace(x, shape=(x.shape[0] * batch, *x.shape[1:]))
        if isinstance(x, torch.Tensor):
            if x.dim() == 0:
                return x
            return x.repeat(batch, *([1] * (x.dim() - 1)))
        return x

    if isinstance(inputs, list) and all(isinstance(x, (torch.Tensor, Shaped)) for x in inputs):
        return inputs * batch
    if isinstance(inputs, tuple) and any(isinstance(x, list) for x in inputs):
        return tuple(with_batch(x, batch) if isinstance(x, list) else repeat(x) for x in inputs)
    return tree_map(repeat, inputs)
