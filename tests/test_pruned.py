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


def test_one_zero_among_many_weights_leaves_the_table_unchanged() -> None:
    # a random init draws an exact 0.0 now and then: that is not pruning, and must not change what is printed
    fc = nn.Linear(512, 512, bias=False)  # 262,144 weights
    with torch.no_grad():
        fc.weight.copy_(torch.arange(1, 512 * 512 + 1, dtype=torch.float32).view(512, 512))  # none zero
        fc.weight[3, 7] = 0.0  # exactly one zero
    r = flopwise.count(fc, torch.rand(1, 512))
    assert r.macs == 1 * 512 * 512  # dense R·K·N = 262,144
    assert r.effective_macs == 1 * 512 * 512 * 262_143 // 262_144 == 262_143  # dense MACs · nnz/numel = R·nnz
    assert r[""].weight_density == 262_143 / 262_144
    assert r.sparse_weights  # the data keeps the zero...
    table = r.table()
    assert "Density" not in table and "Effective MACs" not in table  # ...the table does not show it
    assert "effective:" not in table
    assert "Density" not in r.to_markdown()
    assert r.to_dict()["total"]["macs"] == 262_144


def test_half_the_weights_zero_shows_the_density_columns() -> None:
    fc = nn.Linear(512, 512, bias=False)
    with torch.no_grad():
        fc.weight.fill_(1.0)
        fc.weight[:256] = 0.0  # 256 of 512 output rows: 131,072 of 262,144 weights zero
    r = flopwise.count(fc, torch.rand(1, 512))
    assert r.effective_macs == 1 * 512 * 512 * 131_072 // 262_144 == 131_072  # dense MACs · nnz/numel
    table = r.table()
    header = table.splitlines()[0].split()
    assert header[-3:] == ["Density", "Effective", "MACs"]
    assert "50.0%" in table and "131 k" in table  # 131,072 / 262,144 non-zero; 131,072 effective MACs
    assert (
        "effective: 131,072 MACs once multiplications by zero weights are skipped (50.0% of the dense count)" in table
    )


def test_density_shown_from_one_percent_of_a_module_weights_zero() -> None:
    # the threshold: a module whose weights are at least 1 % exact zeros (density at most 99 %) is visibly pruned
    at, below = nn.Linear(100, 10, bias=False), nn.Linear(100, 10, bias=False)  # 1,000 weights each
    with torch.no_grad():
        at.weight.fill_(1.0)
        below.weight.fill_(1.0)
        at.weight.view(-1)[:10] = 0.0  # 10 of 1,000 = 1 %: density 99.0 %
        below.weight.view(-1)[:9] = 0.0  # 9 of 1,000: density 99.1 %
    shown, hidden = (flopwise.count(m, torch.rand(2, 100)) for m in (at, below))
    assert shown.effective_macs == 2 * 990 and hidden.effective_macs == 2 * 991  # R·nnz, exact in both
    assert "Density" in shown.table() and "Density" not in hidden.table()
