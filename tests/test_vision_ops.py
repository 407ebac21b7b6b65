"""torchvision's detection ops (formulas/vision.py), each counted by hand: NMS, RoIAlign, RoIPool, their
position-sensitive forms, deformable convolution, in real, fake and meta mode."""

from __future__ import annotations

import pytest
import torch
import torchvision  # noqa: F401 - registers torch.ops.torchvision
from torch import nn
from torchvision import ops as tv

import flopwise

MODES = ["real", "fake", "meta"]
# torchvision's fake nms still calls the deprecated name of torch's unbacked sizes
pytestmark = pytest.mark.filterwarnings("ignore:`create_unbacked_symint` is deprecated:FutureWarning")


class Nms(nn.Module):
    def forward(self, boxes: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        return tv.nms(boxes, scores, 0.5)


def _only(r: flopwise.Report, op: str) -> flopwise.Cost:
    return r.by_operator()[op]


@pytest.mark.parametrize("mode", MODES)
def test_nms_counts_areas_the_sort_and_the_ious_of_its_bound(mode: str) -> None:
    # A and B apart, C overlapping B (IoU 81/119 > 0.5); scores A > B > C. Kept: A, B (K = 2 of N = 3).
    # The kernel compares A with B and C, then B with C, which it suppresses: 3 IoUs = K·(2N − K − 1)/2, the
    # bound reached (the last kept box suppresses the rest).
    boxes = torch.tensor([[0.0, 0, 10, 10], [50, 50, 60, 60], [51, 51, 61, 61]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    r = flopwise.count(Nms(), (boxes, scores), mode=mode)
    assert r.complete, r.unsupported
    n, k = 3, 2
    ious = k * (2 * n - k - 1) // 2
    assert ious == 3
    assert _only(r, "torchvision.nms").flops == 3 * n + n * 2 + 13 * ious == 54  # areas, N·⌈log₂N⌉, 13 per IoU


def test_nms_bound_when_the_first_kept_box_suppresses() -> None:
    # four boxes, two kept (0 and 2): the kernel computes 3 IoUs (box 0 with 1, 2, 3 suppresses 1 and 3); the
    # bound for N = 4, K = 2 is K·(2N − K − 1)/2 = 5, which a count of shapes cannot tell apart from 3
    boxes = torch.tensor([[0.0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [0, 0, 9, 10]])
    r = flopwise.count(Nms(), (boxes, torch.tensor([0.9, 0.8, 0.7, 0.6])))
    assert _only(r, "torchvision.nms").flops == 3 * 4 + 4 * 2 + 13 * 5 == 85
    assert "upper bound" in r.calls[-1].work.note


def test_batched_nms_is_plain_torch_around_one_nms() -> None:
    boxes = torch.tensor([[0.0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]])
    with flopwise.counting() as c:
        tv.batched_nms(boxes, torch.tensor([0.9, 0.8, 0.7]), torch.tensor([0, 1, 0]), 0.5)
    assert c.report.complete and c.report.operator_calls()["torchvision.nms"] == 1
    # the coordinate trick: the boxes of each class shifted apart, so no box of class 1 suppresses one of class 0
    assert _only(c.report, "torchvision.nms").flops == 3 * 3 + 3 * 2 + 13 * (3 * (6 - 3 - 1) // 2) == 54


class RoIAlign(nn.Module):
    def __init__(self, sampling_ratio: int, aligned: bool) -> None:
        super().__init__()
        self.sampling_ratio, self.aligned = sampling_ratio, aligned

    def forward(self, x: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        return tv.roi_align(x, rois, (3, 3), 1.0, self.sampling_ratio, self.aligned)


X = torch.rand(1, 8, 16, 16)  # C = 8 channels, H = W = 16
ROIS = torch.tensor([[0, 0, 0, 8, 8], [0, 2, 2, 14, 12.0]])  # K = 2 boxes (batch index, x1, y1, x2, y2)


@pytest.mark.parametrize("mode", MODES)
def test_roi_align_with_a_sampling_ratio(mode: str) -> None:
    r = flopwise.count(RoIAlign(2, True), (X, ROIS), mode=mode)
    assert r.complete, r.unsupported
    k, c, p, s, g_h = 2, 8, 3 * 3, 2 * 2, 2  # boxes, channels, bins, samples per bin, sample rows per bin
    per_channel = k * c * p * (8 * s + 1)  # 4 products, 3 adds, 1 add into the bin per sample; a divide per bin
    shared = k * (p * (14 * s + 6 * g_h) + 12)  # x coordinate and weights per sample, y per row, the box
    assert per_channel == 4_752 and shared == 1_248
    assert r.flops == per_channel + shared == 6_000
    assert r.macs == 0


def test_roi_align_adaptive_grid_counts_a_box_spanning_the_map() -> None:
    r = flopwise.count(RoIAlign(0, False), (X, ROIS))
    g = -(-16 // 3)  # ⌈H/ph⌉ = 6 sample rows and columns per bin, the most a box on the 16×16 map gets
    k, c, p, s = 2, 8, 9, g * g
    assert r.flops == k * c * p * (8 * s + 1) + k * (p * (14 * s + 6 * g) + 12 + 2) == 51_364  # +2: not aligned
    assert "upper bound" in r.calls[-1].work.note


@pytest.mark.parametrize("mode", MODES)
def test_roi_pool_counts_the_most_window_elements_of_a_box(mode: str) -> None:
    model = tv.RoIPool((3, 3), 1.0)
    r = flopwise.count(model, (X, ROIS), mode=mode)
    assert r.complete, r.unsupported
    # consecutive bins overlap by at most one row: (H + ph − 1)·(W + pw − 1) elements per box and channel
    assert r.flops == 2 * 8 * (16 + 3 - 1) * (16 + 3 - 1) == 5_184


def test_position_sensitive_roi_ops() -> None:
    x = torch.rand(1, 18, 16, 16)  # C_in = C_out·ph·pw = 2·3·3
    with flopwise.counting() as c:
        tv.ps_roi_align(x, ROIS, (3, 3), 1.0, 2)
        tv.ps_roi_pool(x, ROIS, (3, 3), 1.0)
    k, c_out, p, s, g_h = 2, 2, 9, 4, 2
    # per output and sample 20 (x 4, weights 8, sum 7, add 1), per sample row 4, per output 5, per box 12
    assert _only(c.report, "torchvision.ps_roi_align").flops == k * (c_out * p * (20 * s + 4 * g_h + 5) + 12) == 3_372
    # an add per window element (at most (H + ph − 1)·(W + pw − 1) per box and output channel), a divide per bin
    assert _only(c.report, "torchvision.ps_roi_pool").flops == k * c_out * (18 * 18 + p) == 1_332


@pytest.mark.parametrize("mode", MODES)
def test_deform_conv2d_is_a_convolution_plus_its_sampling(mode: str) -> None:
    layer = tv.DeformConv2d(8, 4, 3)  # on 1×8×16×16: 14×14 outputs
    offset, mask = torch.rand(1, 2 * 9, 14, 14), torch.rand(1, 9, 14, 14)
    r = flopwise.count(layer, (X, offset, mask), mode=mode)
    assert r.complete, r.unsupported
    macs = 14 * 14 * 3 * 3 * 8 * 4 * 1  # H_out·W_out·K_h·K_w·C_in·C_out·N, as nn.Conv2d(8, 4, 3)
    assert r.macs == macs == 56_448
    assert r.macs == flopwise.count(nn.Conv2d(8, 4, 3), X).macs
    entries = 1 * 8 * 9 * 14 * 14  # N·C_in·K_h·K_w·H_out·W_out sampled column entries
    sampling = entries * (2 + 2 + 8 + 7 + 1)  # offset adds, floors, weights, 4-neighbour sum, the mask multiply
    assert r.flops == 2 * macs + 4 * 14 * 14 + sampling == 395_920  # MACs, bias, sampling
    without_mask = flopwise.count(layer, (X, offset))
    assert r.flops - without_mask.flops == entries  # no mask: no multiply


def test_roi_align_backward_and_roi_pool_backward() -> None:
    x = X.clone().requires_grad_()
    with flopwise.counting() as c:
        tv.roi_align(x, ROIS, (3, 3), 1.0, 2, True).sum().backward()
        tv.roi_pool(x, ROIS, (3, 3), 1.0).sum().backward()
    assert c.report.complete, c.report.unsupported
    e = 2 * 8 * 9  # output gradients
    assert _only(c.report, "torchvision._roi_align_backward").flops == e * (26 * 4 + 6 * 2 + 12) == 18_432
    assert _only(c.report, "torchvision._roi_pool_backward").flops == e  # one add into each argmax
