"""Multi-tensor ops (`_foreach_*`, what optimizers run with foreach=True) and fused optimizer steps.

`_foreach_X(tensors, ...)` costs what `aten.X` costs on each tensor of the list, summed: the same formula,
called once per tensor (scalar lists and single tensors passed along as aten.X would get them). A fused
optimizer step (`_fused_adam`, `_fused_adamw`, `_fused_sgd`, `_fused_adagrad`) costs a fixed number of FLOPs
per parameter element, counted below from the update rule in torch's documentation; the per-tensor bias
corrections are scalars (lower order) and not counted. In-place forms return nothing: the bytes written are
the tensors updated.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from torch import ops

from ..core.cost import Flops, Term, Work
from .registry import Formula, TensorSpec, formula, lookup, zero_cost

aten = ops.aten

# _foreach_X → the aten op whose formula each tensor gets (most are aten.X itself)
_BASE = {
    name: name
    for name in (
        "abs",
        "acos",
        "add",
        "addcdiv",
        "addcmul",
        "asin",
        "atan",
        "ceil",
        "clamp_max",
        "clamp_min",
        "cos",
        "cosh",
        "div",
        "erf",
        "erfc",
        "exp",
        "expm1",
        "floor",
        "frac",
        "lerp",
        "lgamma",
        "log",
        "log10",
        "log1p",
        "log2",
        "maximum",
        "minimum",
        "mm",
        "mul",
        "neg",
        "pow",
        "reciprocal",
        "round",
        "rsqrt",
        "sigmoid",
        "sign",
        "sin",
        "sinh",
        "sqrt",
        "sub",
        "tan",
        "tanh",
        "trunc",
        "max",
    )
}
_BASE.update(norm="linalg_vector_norm", powsum="linalg__powsum")


def _nbytes(tensors: Iterable[TensorSpec]) -> int:
    return sum(int(t.numel()) * int(t.element_size()) for t in tensors)


def _lists(args: tuple[Any, ...]) -> list[Sequence[Any]]:
    return [a for a in args if isinstance(a, (list, tuple))]


def _each(base: str) -> Formula:
    def fn(result: list[TensorSpec] | None, *args: Any, **kwargs: Any) -> Work:
        per_tensor = lookup(f"aten.{base}")
        assert callable(per_tensor), f"aten.{base} has no formula"
        tensors = _lists(args)[0]
        outs = result if isinstance(result, (list, tuple)) and result else tensors  # in-place: the inputs
        totals: dict[str, int] = {}
        macs = 0
        for i in range(len(tensors)):
            item = [a[i] if isinstance(a, (list, tuple)) else a for a in args]
            work = per_tensor(outs[i], *item, **kwargs)
            macs += work.mac_count
            for f in work.flops:
                totals[f.kind] = totals.get(f.kind, 0) + f.term.value
        note = f"aten.{base} on each of the {len(tensors)} tensors, summed"
        flops = tuple(Flops(kind, Term("F", F=value)) for kind, value in totals.items())
        written = None if result else _nbytes(tensors)
        return Work(macs=Term("M", M=macs) if macs else None, flops=flops, note=note, bytes_written=written)

    fn.__doc__ = f"aten.{base}'s cost on each tensor of the list, summed"
    return fn


for _name, _base in _BASE.items():
    formula(getattr(aten, f"_foreach_{_name}"))(_each(_base))

zero_cost("copies, clones or zeroes a list of tensors", [aten._foreach_zero, aten._foreach_clone, aten._foreach_copy])


def _optimizer(expr: str, params: Sequence[TensorSpec], note: str, **counts: int) -> Work:
    elements = sum(int(p.numel()) for p in params)
    return Work(flops=(Flops("optimizer", Term(expr, E=elements, **counts)),), note=note, bytes_written=_nbytes(params))


@formula(aten._fused_adam)
def fused_adam(
    result: tuple[list[TensorSpec], ...] | None,
    params: Sequence[TensorSpec],
    *args: Sequence[TensorSpec],
    weight_decay: float = 0.0,
    amsgrad: bool = False,
    maximize: bool = False,
    grad_scale: TensorSpec | None = None,
    **kwargs: Any,
) -> Work:
    """13 FLOPs per element: m ← lerp(m, g, 1−β₁) (3), v ← β₂v + (1−β₂)g² (4), sqrt(v)/c₂ + ε (3),
    p ← p − s·m/denom (3); + weight decay (Adam g + λp: 2, AdamW p·(1−ηλ): 1), amsgrad max (1), unscale (1),
    maximize (1)."""
    decay = 0 if not weight_decay else (1 if kwargs.get("decoupled", False) else 2)
    extras = int(amsgrad) + int(maximize) + int(grad_scale is not None)
    return _optimizer("E·(13 + d + x)", params, "Adam update per element", d=decay, x=extras)


@formula(aten._fused_adamw)
def fused_adamw(
    result: tuple[list[TensorSpec], ...] | None,
    params: Sequence[TensorSpec],
    *args: Sequence[TensorSpec],
    **kwargs: Any,
) -> Work:
    """Adam's 13 FLOPs per element, with decoupled weight decay p·(1 − ηλ) (1)."""
    return fused_adam(result, params, *args, decoupled=True, **kwargs)


@formula(aten._fused_sgd)
def fused_sgd(
    result: tuple[list[TensorSpec], ...] | None,
    params: Sequence[TensorSpec],
    *args: Sequence[TensorSpec],
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    nesterov: bool = False,
    maximize: bool = False,
    is_first_step: bool = False,
    grad_scale: TensorSpec | None = None,
    **kwargs: Any,
) -> Work:
    """p ← p − η·g (2 per element); + weight decay g + λp (2), momentum b ← μb + (1−τ)g (3, a copy on the
    first step), Nesterov g + μb (2), unscale (1), maximize (1)."""
    extra = 2 * int(bool(weight_decay)) + int(maximize) + int(grad_scale is not None)
    if momentum:
        extra += (0 if is_first_step else 3) + 2 * int(nesterov)
    return _optimizer("E·(2 + x)", params, "SGD update per element", x=extra)


@formula(aten._fused_adagrad)
def fused_adagrad(
    result: tuple[list[TensorSpec], ...] | None,
    params: Sequence[TensorSpec],
    *args: Sequence[TensorSpec],
    weight_decay: float = 0.0,
    maximize: bool = False,
    grad_scale: TensorSpec | None = None,
    **kwargs: Any,
) -> Work:
    """7 FLOPs per element: s ← s + g² (2), sqrt(s) + ε (2), p ← p − η·g/std (3); + weight decay (2), unscale (1),
    maximize (1)."""
    extra = 2 * int(bool(weight_decay)) + int(maximize) + int(grad_scale is not None)
    return _optimizer("E·(7 + x)", params, "Adagrad update per element", x=extra)


@formula(aten._amp_foreach_non_finite_check_and_unscale)
def amp_unscale(
    result: tuple[list[TensorSpec] | TensorSpec, ...] | None,
    grads: Sequence[TensorSpec],
    *args: TensorSpec,
    **kwargs: Any,
) -> Work:
    """2 FLOPs per gradient element: multiply by the inverse scale, check it is finite."""
    return _optimizer("2·E", grads, "gradient unscaling (AMP)")
