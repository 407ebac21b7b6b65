"""Effective MACs of pruned dense weights: multiplications by weight elements that are exactly zero skipped."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import prune

import flopwise


def _zero_first(weight: torch.Tensor, count: int) -> None:
    with torch.no_grad():
        weight.view(-1)[:count] = 0


def test_linear_zeroed_in_place() -> None:
    fc = nn.Linear(64, 32)
    _zero_first(fc.weight, 512)  # 2,048 − 512 = 1,536 non-zero weights
    r = flopwise.count(fc, torch.rand(8, 64))
    assert r.macs == 8 * 64 * 32  # dense R·K·N
    assert r.effective_macs == 8 * 1536  # R·nnz(W)
    assert r[""].weight_density == 1536 / 2048
    assert r.sparse_weights


def test_negative_zero_and_half_precision_weights_count_as_zero() -> None:
    for dtype in (torch.float32, torch.float16, torch.bfloat16, torch.float64):
        fc = nn.Linear(16, 8).to(dtype)
        with torch.no_grad():
            fc.weight.view(-1)[:40] = 0
            fc.weight.view(-1)[40:64] = -0.0  # −0.0 == 0: a skipped multiplication too
        r = flopwise.count(fc, torch.rand(2, 16, dtype=dtype))
        assert r.effective_macs == 2 * (128 - 64), dtype  # R·nnz(W): 8·16 − 64 zeros


def test_prune_reparametrization_in_every_mode() -> None:
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    prune.l1_unstructured(model[0], "weight", amount=0.5)  # weight = weight_orig · weight_mask
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for mode in ("real", "fake"):
        r = flopwise.count(model, torch.rand(4, 64), mode=mode)
        assert r.macs == 4 * 64 * 32 + 4 * 32 * 10
        assert r["0"].effective_macs == 4 * 1024  # R·nnz: half of 2,048 kept
        assert r["2"].effective_macs == 4 * 32 * 10  # dense layer unchanged
        assert r.effective_macs == 4 * 1024 + 4 * 320
        assert r["0"].weight_density == 0.5
        assert r["2"].weight_density == 1.0
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())  # left as found


def test_conv_with_groups_stride_and_padding() -> None:
    conv = nn.Conv2d(8, 16, 3, stride=2, padding=1, groups=2)  # weight 16×4×3×3 = 576
    _zero_first(conv.weight, 100)
    r = flopwise.count(conv, torch.rand(2, 8, 9, 9))
    h_out = (9 + 2 - 3) // 2 + 1  # 5
    assert r.macs == 2 * h_out * h_out * 576  # N·H_out·W_out·numel(W)
    assert r.effective_macs == 2 * h_out * h_out * 476  # N·H_out·W_out·nnz(W), padding counted as in the dense count


def test_attention_projections() -> None:
    mha = nn.MultiheadAttention(16, 2, batch_first=True)
    _zero_first(mha.in_proj_weight, 3 * 16 * 16 // 4)  # a quarter of the 48×16 in-projection
    _zero_first(mha.out_proj.weight, 64)
    x = torch.rand(1, 5, 16)
    r = flopwise.count(mha, (x, x, x))
    rows = 5
    in_proj, out_proj = rows * 768, rows * 256  # R·numel(W) dense
    skipped = rows * 192 + rows * 64  # R·(zeros of W)
    assert r.effective_macs == r.macs - skipped
    assert r.macs - r.effective_macs == (in_proj + out_proj) - (rows * 576 + rows * 192)


def test_weights_without_values_have_no_effective_count() -> None:
    with torch.device("meta"):
        model = nn.Linear(4, 4)
    r = flopwise.count(model, torch.rand(2, 4))
    assert r.effective_macs is None


def test_zeros_scattered_over_a_weight_larger_than_one_scan_stretch() -> None:
    fc = nn.Linear(1024, 600)  # 614,400 weights: the scan reads them in stretches of 2¹⁸ = 262,144
    with torch.no_grad():
        flat = fc.weight.view(-1)
        flat[flat == 0] = 1.0  # a random weight may hold an exact zero: none but ours
        flat[[0, 262_143, 262_144, 614_399]] = 0  # both sides of the first stretch boundary, and the last one
        flat[500_000] = -0.0
    r = flopwise.count(fc, torch.rand(3, 1024), mode="meta")
    assert r.effective_macs == 3 * (614_400 - 5)  # R·nnz(W)
    assert r[""].weight_density == (614_400 - 5) / 614_400
