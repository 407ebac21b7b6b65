"""Elementwise ops: a fixed number of FLOPs per output element (see `costs` for where each number comes from).

FLOPs = E·c, E the output's element count and c the op's cost per element.
"""

from __future__ import annotations

from torch import ops

from ..cost import Flops, Term, Work
from ..registry import formula
from . import costs

aten = ops.aten


def per_element(kind: str, cost: int):  # type: ignore[no-untyped-def]
    """A formula charging `cost` FLOPs for each element of the op's (first) output."""

    def fn(result, *args, **kwargs) -> Work:
        out = result[0] if isinstance(result, (tuple, list)) else result
        return Work(flops=(Flops(kind, Term("E·c", E=out.numel(), c=cost)),))

    fn.__doc__ = f"{cost} FLOP(s) per output element ({kind})"
    return fn


formula(aten.add, aten.sub, aten.rsub, aten.mul, aten.div, aten.neg, aten.reciprocal, aten.abs)(
    per_element("elementwise", 1)
)
formula(aten.maximum, aten.minimum, aten.eq, aten.ne, aten.lt, aten.le, aten.gt, aten.ge, aten.where)(
    per_element("elementwise", 1)
)
formula(aten.relu, aten.threshold, aten.clamp, aten.clamp_min, aten.clamp_max, aten.hardtanh)(
    per_element("activation", costs.RELU)
)
formula(aten.tanh)(per_element("activation", costs.TANH))
formula(aten.sigmoid)(per_element("activation", costs.SIGMOID))
formula(aten.gelu)(per_element("activation", costs.GELU))
formula(aten.silu)(per_element("activation", costs.SILU))
formula(aten.exp, aten.log, aten.sqrt, aten.rsqrt, aten.sin, aten.cos, aten.erf)(per_element("elementwise", 1))
formula(aten.masked_fill)(per_element("elementwise", 1))


@formula(aten._softmax, aten._log_softmax)
def softmax(result, x, dim, half_to_float=False) -> Work:
    n = int(x.shape[dim]) if x.dim() else 1
    rows = x.numel() // n if n else 0
    return Work(flops=(Flops("softmax", Term("R·(3·n−1)", R=rows, n=n)),))
