"""Normalization, pooling, upsampling and the guide's depthwise / pointwise convolutions: FLOPs by hand."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import flopwise
from flopwise.formulas.pool import window_elements


def test_batch_norm_inference_is_4_per_element_and_fuses_away() -> None:
    bn = nn.BatchNorm2d(8).eval()
    x = torch.randn(2, 8, 5, 5)
    r = flopwise.count(bn, x)
    assert r.flops == 4 * 2 * 8 * 5 * 5  # guide: subtract, divide, scale, shift
    assert flopwise.count(bn, x, convention="fused-bn").flops == 0  # folded into the preceding conv
    assert r.unsupported == {}


def test_batch_norm_training_adds_the_statistics() -> None:
    bn = nn.BatchNorm2d(8).train()
    r = flopwise.count(bn, torch.randn(2, 8, 5, 5))
    e, c = 2 * 8 * 5 * 5, 8
    assert r.flops == 4 * e + 4 * e + 8 * c  # normalize; mean add, centre, square, add; per-channel terms
    # fused-bn only folds inference batch norm: training statistics cannot be folded into a weight
    assert flopwise.count(bn, torch.randn(2, 8, 5, 5), convention="fused-bn").flops == r.flops


def test_layer_group_and_rms_norm() -> None:
    x = torch.randn(2, 6, 16)
    assert flopwise.count(nn.LayerNorm(16), x).flops == 2 * 6 * 16 * 7 + 2 * 6 * 4  # 7 per element, 4 per row
    no_affine = nn.LayerNorm(16, elementwise_affine=False)
    assert flopwise.count(no_affine, x).flops == 2 * 6 * 16 * 5 + 2 * 6 * 4  # without · γ and + β
    g = torch.randn(2, 8, 4, 4)
    assert flopwise.count(nn.GroupNorm(2, 8), g).flops == 2 * 8 * 4 * 4 * 7 + 2 * 2 * 4  # rows = N·groups
    r = flopwise.count(nn.RMSNorm(16), x)
    assert r.unsupported == {}
    assert r.flops > 0


def test_norm_gradients() -> None:
    ln = nn.LayerNorm(16)
    x = torch.randn(4, 16, requires_grad=True)
    y = ln(x)
    with flopwise.counting() as c:
        y.backward(torch.ones_like(y))
    # input gradient 8, weight gradient 2, bias gradient 1 per element
    assert c.report.by_operator()["aten.native_layer_norm_backward"].flops == 4 * 16 * (8 + 2 + 1)


def test_max_pool_is_k_minus_1_compares_per_output() -> None:
    x = torch.randn(1, 3, 8, 8)
    r = flopwise.count(nn.MaxPool2d(2), x)
    assert r.flops == 3 * 4 * 4 * (2 * 2 - 1)  # C·H_out·W_out·(K−1)
    assert flopwise.count(nn.MaxPool2d(3, stride=2, padding=1), x).flops == 3 * 4 * 4 * (9 - 1)
    assert flopwise.count(nn.MaxPool1d(3), torch.randn(2, 4, 9)).flops == 2 * 4 * 3 * (3 - 1)


def test_average_pool_is_kernel_plus_1_per_output() -> None:
    x = torch.randn(1, 3, 8, 8)
    assert flopwise.count(nn.AvgPool2d(2), x).flops == 3 * 4 * 4 * (2 * 2 + 1)  # guide: kernel + 1
    assert flopwise.count(nn.AvgPool3d(2), torch.randn(1, 2, 4, 4, 4)).flops == 2 * 2 * 2 * 2 * (8 + 1)


def test_adaptive_average_pool_sums_its_windows() -> None:
    x = torch.randn(2, 4, 7, 7)
    # global pooling (torch runs it as a mean): 48 adds and 1 divide per plane
    assert flopwise.count(nn.AdaptiveAvgPool2d(1), x).flops == 2 * 4 * 7 * 7
    # 7 → 3: windows [0,3) [2,5) [4,7): 3 + 3 + 3 = 9 per dim, so W = 9·9 per plane
    assert window_elements((7, 7), (3, 3)) == 9 * 9
    assert flopwise.count(nn.AdaptiveAvgPool2d(3), x).flops == 2 * 4 * 9 * 9  # w−1 adds + 1 divide per window
    assert flopwise.count(nn.AdaptiveMaxPool2d(3), x).flops == 2 * 4 * (9 * 9 - 3 * 3)  # w−1 compares per window


def test_pool_gradients() -> None:
    x = torch.randn(1, 2, 4, 4, requires_grad=True)
    y = F.max_pool2d(x, 2)
    with flopwise.counting() as c:
        y.sum().backward()
    assert c.report.by_operator()["aten.max_pool2d_with_indices_backward"].flops == 2 * 2 * 2  # one per gradient
    assert c.report.unsupported == {}


def test_upsampling() -> None:
    x = torch.randn(1, 3, 4, 4)
    nearest = flopwise.count(nn.Upsample(scale_factor=2, mode="nearest"), x)
    assert nearest.flops == 0 and nearest.bytes_written == 3 * 8 * 8 * 4  # a copy: bytes, no FLOPs
    bilinear = flopwise.count(nn.Upsample(scale_factor=2, mode="bilinear"), x)
    assert bilinear.flops == 3 * 8 * 8 * 7  # 4 multiplies + 3 adds per output
    bicubic = flopwise.count(nn.Upsample(scale_factor=2, mode="bicubic"), x)
    assert bicubic.flops == 3 * 8 * 8 * 31  # 16 multiplies + 15 adds
    assert bicubic.unsupported == {}


def test_depthwise_and_pointwise_convolution_follow_the_guide() -> None:
    x = torch.randn(1, 16, 14, 14)
    depthwise = flopwise.count(nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False), x)
    # guide: kernels × kernel shape × output shape without channel: 16 · 3·3 · 14·14
    assert depthwise.macs == 16 * 3 * 3 * 14 * 14
    pointwise = flopwise.count(nn.Conv2d(16, 32, 1, bias=False), x)
    assert pointwise.macs == 32 * 16 * 1 * 1 * 14 * 14  # C_out · C_in · 1×1 · H·W
    separable = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.Conv2d(16, 32, 1))
    r = flopwise.count(separable, x)
    assert r.macs == depthwise.macs + pointwise.macs
    assert r.flops == 2 * r.macs + 16 * 14 * 14 + 32 * 14 * 14  # + one bias add per output of each


def test_embedding_is_free_but_reads_its_rows_and_its_gradient_adds() -> None:
    emb = nn.Embedding(100, 8)
    ids = torch.randint(0, 100, (2, 5))
    r = flopwise.count(emb, ids)
    assert r.flops == 0 and r.unsupported == {}
    assert r.bytes_written == 2 * 5 * 8 * 4  # the gathered rows, fp32
    out = emb(ids)
    with flopwise.counting() as c:
        out.sum().backward()
    assert c.report.by_operator()["aten.embedding_dense_backward"].flops == 2 * 5 * 8  # one add per element
