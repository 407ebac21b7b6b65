"""torchvision's detection ops (`torchvision.ops`): NMS, RoI pooling and alignment, deformable convolution.

Each cost follows torchvision's CPU kernel, operation by operation. Registered by name, so importing flopwise does
not import torchvision. Three of these kernels do work that depends on the data, not the shapes; their counts are
upper bounds, each stated in its formula's note:

- `nms` (N boxes, K kept): the areas, 3 per box (two subtracts, a multiply); the score sort, N·⌈log₂N⌉ compares;
  13 FLOPs per IoU (4 compares for the intersection's corners, 2 subtracts, 2 clamps at 0, a multiply, an add, a
  subtract, a divide, the threshold compare). The kernel compares each kept box with every later box not yet
  suppressed: the i-th kept box with at most N − i, so at most I = Σᵢ(N − i) = K·(2N − K − 1)/2 IoUs. That bound
  is reached when the kept boxes come first in score order and the last of them suppresses the rest; with
  nothing suppressed (K = N) it is N·(N − 1)/2, every pair. `batched_nms` is plain torch around one `nms` call
  (the coordinate trick), or one per class (more than 4,000 box coordinates on the CPU): those ops count as
  themselves.
- `roi_align` (K boxes, C channels, P = ph·pw bins, a grid of S = G_h·G_w sample points per bin): per channel and
  sample, the bilinear weighted sum of 4 neighbours (4 multiplies, 3 adds) and its add into the bin (8); a divide
  per bin. Shared by the channels, per box: each sample point's x coordinate start + p·bin + (i + ½)·bin/G (6) and
  its 4 weights (2 fractions, 2 complements, 4 products: 8), each row's y coordinate (6), and the box itself (4
  scale multiplies, 4 offset subtracts, 2 extents, 2 bin sizes: 12, and 2 clamps to 1 unless `aligned`).
  `sampling_ratio` > 0 fixes G; otherwise G = ⌈box extent / bins⌉ per box (data): counted as ⌈H/ph⌉·⌈W/pw⌉,
  the largest a box inside the feature map gets. A sample point outside the map skips its weights: fewer.
- `roi_pool` (max) and `ps_roi_pool` (average): a bin's window is [⌊p·b⌋, ⌈(p+1)·b⌉) of the box, b its extent /
  bins, clipped to the map. Consecutive windows overlap by at most one row, so the windows of a box cover at most
  H + ph − 1 rows and W + pw − 1 columns whatever the box: (H + ph − 1)·(W + pw − 1) elements per box and channel,
  one compare (max) or add (average, then a divide per bin) each — an upper bound, the boxes being data.
- `deform_conv2d`: the contraction of a convolution of those shapes (MACs, as conv.py) and its bias add, plus the
  sampling of each column entry (N·C_in·K_h·K_w·H_out·W_out of them): the offset added to 2 coordinates, 2 floors,
  the 4 weights (8), the 4-neighbour sum (7): 19, and the multiply by the mask when one is given (20). A sample
  outside the input returns 0 before its weights: fewer.
"""

from __future__ import annotations

import math

from ..core.cost import Flops, Term, Work
from .conv import conv_work
from .registry import TensorSpec, formula
from .shapes import Output, first

_UPPER = "an upper bound: the boxes are data (see the module docstring)"

WEIGHTS = 8  # bilinear weights of a sample point: 2 fractions, 2 complements (1 − f), 4 products
ROI_BOX = 12  # 4 scale multiplies, 4 offset subtracts, 2 extents, 2 bin sizes
DEFORM_SAMPLE = 2 + 2 + WEIGHTS + 7  # offset adds, floors, weights, the 4-neighbour sum


@formula("torchvision.nms", "torchvision.qnms")
def nms(result: TensorSpec, boxes: TensorSpec, scores: TensorSpec, iou_threshold: float) -> Work:
    """Areas 3·N, the sort N·⌈log₂N⌉, 13 per IoU for at most K·(2N − K − 1)/2 IoUs (K kept; an upper bound)."""
    n, k = int(boxes.shape[0]), int(result.shape[0])
    log_n = max(1, math.ceil(math.log2(n))) if n > 1 else 0
    return Work(
        flops=(
            Flops("elementwise", Term("3·N", N=n)),
            Flops("compare", Term("N·log_N", N=n, log_N=log_n)),
            Flops("nms", Term("13·(K·(2·N − K − 1)/2)", K=k, N=n)),
        ),
        note=f"IoUs: at most K·(2N − K − 1)/2 for N boxes, K kept; {_UPPER}",
    )


def _grid(sampling_ratio: int, extent: int, bins: int) -> int:
    """Sample points per bin along one side: the ratio, or ⌈extent/bins⌉ for a box spanning the map."""
    return int(sampling_ratio) if sampling_ratio > 0 else max(-(-extent // max(bins, 1)), 1)


def _align_note(sampling_ratio: int) -> str:
    if sampling_ratio > 0:
        return f"{sampling_ratio}×{sampling_ratio} samples per bin; exact when every sample lies on the map"
    return f"adaptive samples per bin, counted for a box spanning the feature map: {_UPPER}"


def _roi_align(
    result: Output,
    x: TensorSpec,
    rois: TensorSpec,
    pooled_height: int,
    pooled_width: int,
    sampling_ratio: int,
    aligned: bool,
) -> Work:
    height, width = int(x.shape[-2]), int(x.shape[-1])
    ph, pw = int(pooled_height), int(pooled_width)
    g_h, g_w = _grid(sampling_ratio, height, ph), _grid(sampling_ratio, width, pw)
    k, c = int(rois.shape[0]), int(first(result).shape[1])
    sampling = Term("K·C·P·(8·S + 1)", K=k, C=c, P=ph * pw, S=g_h * g_w)
    shared = Term("K·(P·(14·S + 6·G_h) + R)", K=k, P=ph * pw, S=g_h * g_w, G_h=g_h, R=ROI_BOX + 2 * (not aligned))
    return Work(flops=(Flops("interpolate", sampling), Flops("interpolate", shared)), note=_align_note(sampling_ratio))


@formula("torchvision.roi_align")
def roi_align(
    result: TensorSpec,
    x: TensorSpec,
    rois: TensorSpec,
    spatial_scale: float,
    pooled_height: int,
    pooled_width: int,
    sampling_ratio: int,
    aligned: bool,
) -> Work:
    """Per channel and sample 8 (4-neighbour sum and add), a divide per bin; per box and sample 14 and per sample
    row 6 (coordinates and weights), 12 (+2 unless aligned) per box."""
    return _roi_align(result, x, rois, pooled_height, pooled_width, sampling_ratio, aligned)


@formula("torchvision.qroi_align")
def qroi_align(
    result: TensorSpec,
    x: TensorSpec,
    rois: TensorSpec,
    input_scale: float,
    input_zero_point: int,
    rois_scale: float,
    rois_zero_point: int,
    spatial_scale: float,
    pooled_height: int,
    pooled_width: int,
    sampling_ratio: int,
    aligned: bool,
) -> Work:
    """As roi_align, on the dequantized values (requantization not counted)."""
    return _roi_align(result, x, rois, pooled_height, pooled_width, sampling_ratio, aligned)


@formula("torchvision.ps_roi_align")
def ps_roi_align(
    result: tuple[TensorSpec, ...],
    x: TensorSpec,
    rois: TensorSpec,
    spatial_scale: float,
    pooled_height: int,
    pooled_width: int,
    sampling_ratio: int,
) -> Work:
    """Per output and sample 20 (x coordinate 4, weights 8, 4-neighbour sum 7, add 1), per sample row 4, per output
    5 (+4 adaptive), per box 12: each output bin samples its own channel, with weights of its own."""
    height, width = int(x.shape[-2]), int(x.shape[-1])
    ph, pw = int(pooled_height), int(pooled_width)
    g_h, g_w = _grid(sampling_ratio, height, ph), _grid(sampling_ratio, width, pw)
    k, c_out = int(rois.shape[0]), int(first(result).shape[1])
    per_output = 5 + 4 * (sampling_ratio <= 0)  # bin start (2 × 2) and the divide; the adaptive grid's ⌈⌉ (4)
    term = Term(
        "K·(C_out·P·(20·S + 4·G_h + b) + R)", K=k, C_out=c_out, P=ph * pw, S=g_h * g_w, G_h=g_h, b=per_output, R=ROI_BOX
    )
    return Work(flops=(Flops("interpolate", term),), note=_align_note(sampling_ratio))


def _window_elements(x: TensorSpec, pooled_height: int, pooled_width: int) -> int:
    """(H + ph − 1)·(W + pw − 1): the most elements a box's clipped bins can hold, whatever the box."""
    return (int(x.shape[-2]) + int(pooled_height) - 1) * (int(x.shape[-1]) + int(pooled_width) - 1)


@formula("torchvision.roi_pool")
def roi_pool(
    result: tuple[TensorSpec, ...],
    x: TensorSpec,
    rois: TensorSpec,
    spatial_scale: float,
    pooled_height: int,
    pooled_width: int,
) -> Work:
    """One compare per window element: at most K·C·(H + ph − 1)·(W + pw − 1) (an upper bound)."""
    k, c = int(rois.shape[0]), int(x.shape[1])
    term = Term("K·C·A", K=k, C=c, A=_window_elements(x, pooled_height, pooled_width))
    return Work(flops=(Flops("pool", term),), note=f"window elements: {_UPPER}")


@formula("torchvision.ps_roi_pool")
def ps_roi_pool(
    result: tuple[TensorSpec, ...],
    x: TensorSpec,
    rois: TensorSpec,
    spatial_scale: float,
    pooled_height: int,
    pooled_width: int,
) -> Work:
    """One add per window element, at most K·C_out·(H + ph − 1)·(W + pw − 1), and a divide per output bin."""
    k, c_out = int(rois.shape[0]), int(first(result).shape[1])
    term = Term(
        "K·C_out·(A + P)",
        K=k,
        C_out=c_out,
        A=_window_elements(x, pooled_height, pooled_width),
        P=int(pooled_height) * int(pooled_width),
    )
    return Work(flops=(Flops("pool", term),), note=f"window elements: {_UPPER}")


@formula("torchvision.deform_conv2d")
def deform_conv2d(
    result: TensorSpec,
    x: TensorSpec,
    weight: TensorSpec,
    offset: TensorSpec,
    mask: TensorSpec,
    bias: TensorSpec,
    *args: int | bool,
) -> Work:
    """The convolution's MACs and bias add (conv.py), plus 19 per sampled column entry (20 with a mask)."""
    stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w, groups, offset_groups, use_mask = args
    conv = conv_work(x.shape, weight.shape, result.shape, False, int(groups), True)
    entries = (
        int(x.shape[0])
        * int(x.shape[1])
        * math.prod(int(d) for d in weight.shape[2:])
        * math.prod(int(d) for d in result.shape[2:])
    )
    sampling = Term("E·s", E=entries, s=DEFORM_SAMPLE + int(bool(use_mask)))
    note = "bilinear sampling at offset positions: exact when every sample lies on the input"
    return Work(macs=conv.macs, dots=conv.dots, flops=conv.flops + (Flops("interpolate", sampling),), note=note)


@formula("torchvision._roi_align_backward")
def roi_align_backward(
    result: TensorSpec,
    grad: TensorSpec,
    rois: TensorSpec,
    spatial_scale: float,
    pooled_height: int,
    pooled_width: int,
    batch_size: int,
    channels: int,
    height: int,
    width: int,
    sampling_ratio: int,
    aligned: bool,
) -> Work:
    """Per output gradient: its box (12, +2 unless aligned), per sample row the y coordinate (6), per sample the x
    coordinate (6), the weights (8), 4 shares grad·w/count (8) and their 4 adds into the input gradient: 26."""
    g_h, g_w = (
        _grid(sampling_ratio, int(height), int(pooled_height)),
        _grid(sampling_ratio, int(width), int(pooled_width)),
    )
    term = Term("E·(26·S + 6·G_h + R)", E=int(grad.numel()), S=g_h * g_w, G_h=g_h, R=ROI_BOX + 2 * (not aligned))
    return Work(flops=(Flops("interpolate_backward", term),), note=_align_note(sampling_ratio))


@formula("torchvision._roi_pool_backward")
def roi_pool_backward(
    result: TensorSpec, grad: TensorSpec, rois: TensorSpec, argmax: TensorSpec, *args: float | int
) -> Work:
    """One add per output gradient, into its argmax."""
    return Work(flops=(Flops("pool_backward", Term("E", E=int(grad.numel()))),))
