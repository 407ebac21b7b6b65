"""Elementwise arithmetic: a fixed number of FLOPs per output element.

FLOPs = E·c, E the element count of the op's (first) output and c the op's cost per element (see `costs`).
In-place variants (`add_`) and `out=` overloads share the functional op's formula. Integer and boolean ops
(bitwise, logical) are declared zero-cost: they move bytes but do no floating-point arithmetic.
Complex results count real arithmetic: an add is 2 FLOPs, a multiply 6, a divide 11, a negation 2 per element
(a real operand is promoted to complex by the kernel, which then does the full complex operation).
"""

from __future__ import annotations

from typing import Any

from torch import ops

from ..cost import Flops, Term, Work
from ..registry import Formula, formula, zero_cost
from . import costs
from .shapes import INTEGER_NOTE, first, floating

aten = ops.aten


def per_element(kind: str, cost: int) -> Formula:
    """A formula charging `cost` FLOPs for each element of the op's (first) output."""

    def fn(result: Any, *args: Any, **kwargs: Any) -> Work:
        if not floating(*args):
            return Work(note=INTEGER_NOTE)
        return Work(flops=(Flops(kind, Term("E·c", E=first(result).numel(), c=cost)),))

    fn.__doc__ = f"{cost} FLOP(s) per output element ({kind})"
    return fn


def _scaled(alpha: Any) -> bool:
    return alpha is not None and alpha != 1


COMPLEX_NOTE = "complex elements: counted in real arithmetic"


@formula(aten.add, aten.sub, aten.rsub)
def add(result: Any, a: Any, b: Any = None, alpha: Any = 1, **kwargs: Any) -> Work:
    """a ± alpha·b: one add per element, and a multiply when alpha ≠ 1 (complex: 2 and 6 real FLOPs)."""
    if not floating(a, b):
        return Work(note=INTEGER_NOTE)
    e = first(result).numel()
    if first(result).is_complex():
        expr = "E·(add + mul)" if _scaled(alpha) else "E·add"
        term = Term(expr, E=e, add=costs.COMPLEX_ADD, mul=costs.COMPLEX_MUL)
        return Work(flops=(Flops("elementwise", term),), note=COMPLEX_NOTE)
    cost = 2 if _scaled(alpha) else 1
    return Work(flops=(Flops("elementwise", Term("E·c", E=e, c=cost)),))


def _complex_aware(real: int, complex_cost: int, what: str) -> Formula:
    """`real` FLOPs per element, `complex_cost` real FLOPs per complex element."""
    plain = per_element("elementwise", real)

    def fn(result: Any, *args: Any, **kwargs: Any) -> Work:
        out = first(result)
        if out.is_complex():
            return Work(flops=(Flops("elementwise", Term("E·c", E=out.numel(), c=complex_cost)),), note=COMPLEX_NOTE)
        return plain(result, *args, **kwargs)

    fn.__doc__ = f"{real} FLOP per element; a complex {what} is {complex_cost} real FLOPs"
    return fn


formula(aten.mul)(_complex_aware(1, costs.COMPLEX_MUL, "multiply (4 multiplies, 2 adds)"))
formula(aten.div)(_complex_aware(1, costs.COMPLEX_DIV, "divide (6 multiplies, 3 adds, 2 divides)"))
formula(aten.neg)(_complex_aware(1, costs.COMPLEX_NEG, "negation (2 negations)"))


@formula(aten.floor_divide)
def floor_divide(result: Any, a: Any, b: Any = None, **kwargs: Any) -> Work:
    """floor(a / b): a divide and a floor per element (2) in floating point; integer division is 0."""
    out = first(result)
    if not floating(out):  # the result is floating point exactly when the division is (int // 2.5 is)
        return Work(note=INTEGER_NOTE)
    return Work(flops=(Flops("elementwise", Term("E·c", E=out.numel(), c=2)),))


_ONE_FLOP = [
    # arithmetic and rounding
    aten.reciprocal, aten.abs, aten.fmod, aten.remainder, aten.floor, aten.ceil,
    aten.round, aten.trunc, aten.frac, aten.sign, aten.sgn, aten.copysign, aten.signbit,
    # comparisons and selection
    aten.maximum, aten.minimum, aten.fmax, aten.fmin, aten.eq, aten.ne, aten.lt, aten.le, aten.gt, aten.ge,
    aten.where, aten.masked_fill, aten.isnan, aten.isinf, aten.isfinite, aten.heaviside,
    # elementary functions: one evaluation each
    aten.exp, aten.exp2, aten.expm1, aten.log, aten.log2, aten.log10, aten.log1p, aten.sqrt, aten.rsqrt,
    aten.pow, aten.sin, aten.cos, aten.tan, aten.asin, aten.acos, aten.atan, aten.atan2, aten.sinh, aten.cosh,
    aten.asinh, aten.acosh, aten.atanh, aten.erf, aten.erfc, aten.erfinv,
]
formula(*_ONE_FLOP)(per_element("elementwise", 1))
formula(aten.lerp, aten.addcmul, aten.addcdiv)(per_element("elementwise", 3))  # a + w·(b − a); a + v·b·c; a + v·b/c
formula(aten.linspace)(per_element("elementwise", 2))  # start + i·step
formula(aten.logspace)(per_element("elementwise", 3))  # base ** (start + i·step)
formula(aten.xlogy, aten.hypot, aten.logaddexp, aten.nan_to_num)(per_element("elementwise", 3))

zero_cost(
    "integer or boolean logic, not floating point",
    [aten.bitwise_and, aten.bitwise_or, aten.bitwise_xor, aten.bitwise_not, aten.bitwise_left_shift,
     aten.bitwise_right_shift, aten.logical_and, aten.logical_or, aten.logical_xor, aten.logical_not,
     aten.__and__, aten.__or__, aten.__xor__, aten.__lshift__, aten.__rshift__, aten.isin],
)
