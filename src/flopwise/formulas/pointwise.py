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

from ..core.cost import Flops, Term, Work
from . import flops_per_element as costs
from .registry import Formula, TensorSpec, formula, zero_cost
from .shapes import INTEGER_NOTE, Output, Scalar, first, floating

aten = ops.aten


def per_element(kind: str, cost: int) -> Formula:
    """A formula charging `cost` FLOPs for each element of the op's (first) output."""

    def fn(result: Output, *args: Any, **kwargs: Any) -> Work:
        if not floating(*args):
            return Work(note=INTEGER_NOTE)
        return Work(flops=(Flops(kind, Term("E·c", E=first(result).numel(), c=cost)),))

    fn.__doc__ = f"{cost} FLOP(s) per output element ({kind})"
    return fn


def _scaled(alpha: Scalar | None) -> bool:
    return alpha is not None and alpha != 1


COMPLEX_NOTE = "complex elements: counted in real arithmetic"


@formula(aten.add, aten.sub, aten.rsub)
def add(
    result: TensorSpec, a: TensorSpec, b: TensorSpec | Scalar | None = None, alpha: Scalar = 1, **kwargs: Any
) -> Work:
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

    def fn(result: Output, *args: Any, **kwargs: Any) -> Work:
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
def floor_divide(result: TensorSpec, a: TensorSpec, b: TensorSpec | Scalar | None = None, **kwargs: Any) -> Work:
    """floor(a / b): a divide and a floor per element (2) in floating point; integer division is 0."""
    out = first(result)
    if not floating(out):  # the result is floating point exactly when the division is (int // 2.5 is)
        return Work(note=INTEGER_NOTE)
    return Work(flops=(Flops("elementwise", Term("E·c", E=out.numel(), c=2)),))


_ONE_FLOP = [
    # arithmetic and rounding
    aten.reciprocal,
    aten.abs,
    aten.fmod,
    aten.remainder,
    aten.floor,
    aten.ceil,
    aten.round,
    aten.trunc,
    aten.frac,
    aten.sign,
    aten.sgn,
    aten.copysign,
    aten.signbit,
    # comparisons and selection
    aten.maximum,
    aten.minimum,
    aten.fmax,
    aten.fmin,
    aten.eq,
    aten.ne,
    aten.lt,
    aten.le,
    aten.gt,
    aten.ge,
    aten.where,
    aten.masked_fill,
    aten.isnan,
    aten.isinf,
    aten.isfinite,
    aten.heaviside,
    # elementary functions: one evaluation each
    aten.exp,
    aten.exp2,
    aten.expm1,
    aten.log,
    aten.log2,
    aten.log10,
    aten.log1p,
    aten.sqrt,
    aten.rsqrt,
    aten.pow,
    aten.sin,
    aten.cos,
    aten.tan,
    aten.asin,
    aten.acos,
    aten.atan,
    aten.atan2,
    aten.sinh,
    aten.cosh,
    aten.asinh,
    aten.acosh,
    aten.atanh,
    aten.erf,
    aten.erfc,
    aten.erfinv,
]
formula(*_ONE_FLOP)(per_element("elementwise", 1))
formula(aten.lerp, aten.addcmul, aten.addcdiv)(per_element("elementwise", 3))  # a + w·(b − a); a + v·b·c; a + v·b/c
formula(aten.linspace)(per_element("elementwise", 2))  # start + i·step
formula(aten.logspace)(per_element("elementwise", 3))  # base ** (start + i·step)
formula(aten.xlogy, aten.hypot, aten.logaddexp, aten.nan_to_num)(per_element("elementwise", 3))

zero_cost(
    "integer or boolean logic, not floating point",
    [
        aten.bitwise_and,
        aten.bitwise_or,
        aten.bitwise_xor,
        aten.bitwise_not,
        aten.bitwise_left_shift,
        aten.bitwise_right_shift,
        aten.logical_and,
        aten.logical_or,
        aten.logical_xor,
        aten.logical_not,
        aten.__and__,
        aten.__or__,
        aten.__xor__,
        aten.__lshift__,
        aten.__rshift__,
        aten.isin,
    ],
)

# special functions: one evaluation each, the convention of erf and erfinv above
formula(
    aten.lgamma,
    aten.digamma,
    aten.polygamma,
    aten.i0,
    aten.igamma,
    aten.igammac,
    aten.special_airy_ai,
    aten.special_bessel_j0,
    aten.special_bessel_j1,
    aten.special_bessel_y0,
    aten.special_bessel_y1,
    aten.special_erfcx,
    aten.special_i0e,
    aten.special_i1,
    aten.special_i1e,
    aten.special_modified_bessel_i0,
    aten.special_modified_bessel_i1,
    aten.special_modified_bessel_k0,
    aten.special_modified_bessel_k1,
    aten.special_scaled_modified_bessel_k0,
    aten.special_scaled_modified_bessel_k1,
    aten.special_spherical_bessel_j0,
    aten.special_ndtri,
    aten.special_zeta,
    aten.nextafter,
    aten.frexp,
    aten.ldexp,
    aten._neg_view_copy,  # ldexp: x·2ᵉ, one multiply; _neg_view_copy: a negation made real
)(per_element("elementwise", 1))
formula(aten._add_relu)(per_element("elementwise", 2))  # a + b, then a compare
formula(aten._masked_scale)(per_element("elementwise", 2))  # x · mask · scale


@formula(aten.conj_physical, aten._conj_physical, aten._conj_copy)
def conj(result: TensorSpec, x: TensorSpec, *args: Any, **kwargs: Any) -> Work:
    """One negation (of the imaginary part) per complex element; a copy for real tensors."""
    if not x.is_complex():
        return Work(note="a real tensor is its own conjugate: a copy")
    return Work(flops=(Flops("elementwise", Term("E", E=first(result).numel())),))


zero_cost(
    "integer or boolean logic, not floating point",
    [aten.gcd, aten.lcm, aten.__ilshift__, aten.__irshift__, aten.bincount, aten.hash_tensor],
)
formula(aten.angle)(per_element("elementwise", 1))  # atan2(imag, real); a sign test for real input


@formula(aten.addr)
def addr(
    result: TensorSpec,
    x: TensorSpec,
    v1: TensorSpec,
    v2: TensorSpec,
    beta: Scalar = 1,
    alpha: Scalar = 1,
    **kwargs: Any,
) -> Work:
    """β·x + α·(v1 ⊗ v2): a multiply and an add per element, and one more multiply for each of α, β ≠ 1."""
    if not floating(x, v1, v2):
        return Work(note=INTEGER_NOTE)
    cost = 2 + int(_scaled(alpha)) + int(_scaled(beta))
    return Work(flops=(Flops("elementwise", Term("E·c", E=first(result).numel(), c=cost)),))


# window functions, per element n of a window of N: x = 2πn/(N−1) is 2 FLOPs
_WINDOWS = {"bartlett": 3, "hamming": 4, "blackman": 8, "kaiser": 8}  # 1 − |2n/(N−1) − 1|; α − β·cos x;
# 0.42 − 0.5·cos x + 0.08·cos 2x; I₀(β·√(1 − (2n/(N−1) − 1)²)) / I₀(β)


def _window(cost: int) -> Formula:
    def fn(result: TensorSpec, *args: int | float, **kwargs: Any) -> Work:
        return Work(flops=(Flops("elementwise", Term("N·c", N=first(result).numel(), c=cost)),))

    fn.__doc__ = f"{cost} FLOPs per window element"
    return fn


for _name, _cost in _WINDOWS.items():
    formula(getattr(aten, f"{_name}_window"))(_window(_cost))
formula(aten.fft_fftfreq, aten.fft_rfftfreq)(_window(1))  # arange(n) · 1/(n·d): one multiply each
