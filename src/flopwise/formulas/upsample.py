"""Upsampling and grid sampling: FLOPs per output element by interpolation mode.

An output of k-point interpolation is a weighted sum of k inputs: k multiplies and k−1 adds (linear 3,
bilinear 7, trilinear 15, bicubic 31); the weights depend on the output's row and column only and are not
counted. Nearest-neighbour upsampling copies (0 FLOPs, bytes still counted). Gradients scatter each output
gradient back with the same weights: the same count per output-gradient element (nearest: one add each).
Grid sampling also computes each output position's source coordinates: 10 FLOPs per position.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import ops

from ..core.cost import Flops, Term, Work
from . import flops_per_element as costs
from .registry import Formula, TensorSpec, formula
from .shapes import first

aten = ops.aten


def _interpolate(mode: str, backward: bool = False) -> Formula:
    cost = costs.INTERPOLATE[mode]
    kind = "interpolate_backward" if backward else "interpolate"

    def fn(result: TensorSpec, x: TensorSpec, *args: Any, **kwargs: Any) -> Work:
        outputs = int(x.numel()) if backward else int(first(result).numel())
        if backward and cost == 0:  # nearest: each output gradient is added into its source
            return Work(flops=(Flops(kind, Term("P", P=outputs)),))
        return Work(flops=(Flops(kind, Term("P·c", P=outputs, c=cost)),), note=f"{mode} interpolation")

    fn.__doc__ = f"{mode} interpolation: {cost} FLOPs per output element"
    return fn


formula(
    aten.upsample_nearest1d,
    aten.upsample_nearest2d,
    aten.upsample_nearest3d,
    aten._upsample_nearest_exact1d,
    aten._upsample_nearest_exact2d,
    aten._upsample_nearest_exact3d,
)(_interpolate("nearest"))
formula(aten.upsample_linear1d)(_interpolate("linear"))
formula(aten.upsample_bilinear2d, aten._upsample_bilinear2d_aa)(_interpolate("bilinear"))
formula(aten.upsample_trilinear3d)(_interpolate("trilinear"))
formula(aten.upsample_bicubic2d, aten._upsample_bicubic2d_aa)(_interpolate("bicubic"))

formula(
    aten.upsample_nearest1d_backward,
    aten.upsample_nearest2d_backward,
    aten.upsample_nearest3d_backward,
    aten._upsample_nearest_exact1d_backward,
    aten._upsample_nearest_exact2d_backward,
    aten._upsample_nearest_exact3d_backward,
)(_interpolate("nearest", backward=True))
formula(aten.upsample_linear1d_backward)(_interpolate("linear", backward=True))
formula(aten.upsample_bilinear2d_backward, aten._upsample_bilinear2d_aa_backward)(
    _interpolate("bilinear", backward=True)
)
formula(aten.upsample_trilinear3d_backward)(_interpolate("trilinear", backward=True))
formula(aten.upsample_bicubic2d_backward, aten._upsample_bicubic2d_aa_backward)(_interpolate("bicubic", backward=True))

_GRID_MODES = {0: "bilinear", 1: "nearest", 2: "bicubic"}  # grid_sampler's interpolation_mode numbers


def _grid_work(out: TensorSpec, mode: int, rank: int, passes: int = 1) -> Work:
    name = _GRID_MODES.get(int(mode), "bilinear")
    if rank == 3 and name == "bilinear":
        name = "trilinear"
    positions = int(out.numel()) // max(int(out.shape[1]), 1)
    coords = costs.GRID_SAMPLE_COORDS + (5 if rank == 3 else 0)  # a third coordinate: 5 more
    term = Term("k·(E·c + Q·g)", k=passes, E=int(out.numel()), c=costs.INTERPOLATE[name], Q=positions, g=coords)
    return Work(flops=(Flops("interpolate", term),), note=f"{name} grid sampling")


@formula(aten.grid_sampler_2d, aten.cudnn_grid_sampler)
def grid_sampler_2d(
    result: TensorSpec, x: TensorSpec, grid: TensorSpec, mode: int = 0, *args: int | bool, **kwargs: Any
) -> Work:
    """Per output element the interpolation (bilinear 7, bicubic 31), per position 10 for coordinates."""
    return _grid_work(first(result), mode, 2)


@formula(aten.grid_sampler_3d)
def grid_sampler_3d(
    result: TensorSpec, x: TensorSpec, grid: TensorSpec, mode: int = 0, *args: int | bool, **kwargs: Any
) -> Work:
    """Per output element trilinear 15, per position 15 for coordinates."""
    return _grid_work(first(result), mode, 3)


@formula(aten.grid_sampler_2d_backward, aten.grid_sampler_3d_backward)
def grid_sampler_backward(
    result: tuple[TensorSpec | None, ...],
    grad: TensorSpec,
    x: TensorSpec,
    grid: TensorSpec,
    mode: int = 0,
    *args: int | Sequence[bool],
    **kwargs: Any,
) -> Work:
    """Twice the forward: gradients for the input and for the grid."""
    # gradients for the input (scatter with the weights) and for the grid (weight derivatives): 2 × forward
    return _grid_work(grad, mode, grad.dim() - 2, passes=2)
