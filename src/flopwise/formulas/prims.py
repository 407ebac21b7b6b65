"""`torch.ops.prims`: the primitives of torch's reference implementations.

They reach the dispatcher when a decomposition or `torch._refs` code calls them. Each costs what the aten op
of the same computation costs (`prims.add` as `aten.add`, `prims.rev` as `aten.flip`): the aten formula or
zero-cost entry is reused, so the two cannot disagree.
"""

from __future__ import annotations

from torch import ops

from .pointwise import per_element
from .registry import FORMULAS, ZERO_COST, formula, zero_cost

prims = ops.prims

# prim → the aten op whose cost it has (the same name unless given)
_SAME = """abs acos acosh add amax amin asin asinh atan atan2 atanh bitwise_and bitwise_not bitwise_or bitwise_xor
cat ceil clone cos cosh digamma div eq erf erfc exp exp2 expm1 fill floor fmax fmin fmod frexp full full_like gcd ge
gt hypot igamma igammac isfinite le lgamma log log10 log1p log2 lt maximum minimum mul ne neg nextafter pow prod
reciprocal remainder round rsqrt sign signbit sin sinh sqrt sub sum tan tanh trunc var where as_strided_scatter
empty_permuted empty_strided normal uniform scalar_tensor item""".split()
_RENAMED = {
    "erf_inv": "erfinv",
    "erfcx": "special_erfcx",
    "ndtri": "special_ndtri",
    "zeta": "special_zeta",
    "bessel_i0": "i0",
    "bessel_i0e": "special_i0e",
    "bessel_i1": "special_i1",
    "bessel_i1e": "special_i1e",
    "bessel_j0": "special_bessel_j0",
    "bessel_j1": "special_bessel_j1",
    "cbrt": "pow",
    "spherical_bessel_j0": "special_spherical_bessel_j0",
    "conj_physical": "conj_physical",
    "fft_c2c": "_fft_c2c",
    "fft_r2c": "_fft_r2c",
    "fft_c2r": "_fft_c2r",
    "svd": "_linalg_svd",
    "rev": "flip",
    "iota": "arange",
    "empty": "empty",
    "convert_element_type": "_to_copy",
    "copy_strided": "clone",
    "copy_to": "copy",
    "device_put": "_to_copy",
    "reshape": "clone",
    "collapse": "clone",
    "resize": "resize",
    "shift_left": "bitwise_left_shift",
    "shift_right_arithmetic": "bitwise_right_shift",
    "xor_sum": "bitwise_xor",
    "maximum_value": "scalar_tensor",
    "minimum_value": "scalar_tensor",
}
PRIM_TO_ATEN = {name: name for name in _SAME} | _RENAMED


def register() -> None:
    """Give each prim its aten op's formula or zero-cost entry (called once every family is registered)."""
    for prim, aten_name in PRIM_TO_ATEN.items():
        target = f"aten.{aten_name}"
        if target in FORMULAS:
            formula(getattr(prims, prim))(FORMULAS[target])
        elif target in ZERO_COST:
            zero_cost(ZERO_COST[target], [getattr(prims, prim)])


zero_cost("a view whose schema does not say so (bytes counted as for a copy)", [prims.as_strided])
zero_cost("orders side effects (an effect token): no arithmetic", [prims._make_token, prims._sink_tokens])

# Prims torch._inductor registers when it is imported (by name: they do not exist before that import).
formula("prims.fma")(per_element("elementwise", 2))  # a·b + c: a multiply and an add
