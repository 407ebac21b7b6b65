"""Small helpers shared by the formula files. Formulas see tensors as `TensorSpec`s (registry.py)."""

from __future__ import annotations

from typing import Any, TypeGuard

from .registry import TensorSpec

# An aten `Scalar` argument (`alpha`, `min`, a norm's `ord`): a bool is an int, and mypy takes an int for a float.
Scalar = int | float | complex
# An op's output as its formula gets it (`result`): a tensor, a tuple (of tensors, with any SymInt an op returns, or
# None for an output it was not asked for), or a list for a `Tensor[]` output.
Output = TensorSpec | tuple[Any, ...] | list[TensorSpec]


def is_tensor(x: object) -> TypeGuard[TensorSpec]:
    return isinstance(x, TensorSpec)


def numel(t: object) -> int:
    """Elements of a tensor argument; 1 for a scalar argument."""
    return t.numel() if is_tensor(t) else 1


def nested_sizes(t: object) -> tuple[tuple[int, ...], ...] | None:
    """The component sizes of a nested tensor argument (e.g. ((5, 16), (3, 16))); None for a regular tensor."""
    return t.nested if is_tensor(t) else None


def first(out: Output) -> TensorSpec:
    """The first tensor of an op's output (ops such as attention return a tuple)."""
    tensor: TensorSpec = out[0] if isinstance(out, (tuple, list)) else out
    return tensor


def floating(*args: object) -> bool:
    """Whether any tensor among `args` holds floating-point (or complex) values: integer math is not a FLOP."""
    return any(is_tensor(a) and (a.is_floating_point() or a.is_complex()) for a in args)


INTEGER_NOTE = "integer or boolean arithmetic: not floating point, 0 FLOPs"
