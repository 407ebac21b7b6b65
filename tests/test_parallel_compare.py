"""Several plans of one model side by side (flopwise.parallel.compare) and on the command line (`--parallel`
given twice or more). Every figure is derived by hand beside it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_parallel import MLP, B, D, F, S, colwise_rowwise
from torch import nn

import flopwise.parallel
from flopwise.hardware.devices import find_device
from flopwise.parallel import compare
from flopwise.parallel.estimate import call_seconds

H100_FP32 = 67e12  # H100-SXM's float32 peak, FLOP/s (hardware/devices.py)
NVLINK = 450e9  # NVLink4, bytes/s one way (parallel/links.py)


def test_tensor_parallel_plans_of_an_mlp_in_the_order_given() -> None:
    x = torch.randn(B, S, D)
    c = compare(MLP(), x, ["tp=2", {"tp": 8}, {"tp": 4}], colwise_rowwise, memory=100 * 1024)
    assert [r.name for r in c.rows] == ["tp=2", "tp=8", "tp=4"]  # as given, never re-sorted
    assert [r.world for r in c.rows] == [2, 8, 4]
    for r, tp in zip(c.rows, (2, 8, 4), strict=True):
        # up and down split by tp (Colwise, then Rowwise): 2·5·64·256·2 = 327,680 MACs / tp on every rank
        assert r.macs == B * S * D * F * 2 // tp
        # FLOPs: 2 per MAC, and the ReLU on the rank's B·S·F/tp hidden values (2·5·256 = 2,560 / tp)
        assert r.flops == 2 * r.macs + B * S * F // tp
        # down's partial sums all-reduced once: B·S·d = 640 float32 = 2,560 bytes, whatever tp
        assert r.communication == {"all_reduce": B * S * D * 4}
        # weights: (64·256 + 256·64)/tp float32; a forward step: gradients as large, AdamW's two moments twice
        assert r.weight_bytes == 2 * D * F * 4 // tp == r.gradient_bytes == r.optimizer_bytes // 2
        assert r.activation_bytes == r.plan.ranks[0].activation_bytes
        assert r.memory_bytes == r.weight_bytes + r.gradient_bytes + r.optimizer_bytes + r.activation_bytes
        assert r.bubble is None  # no pipeline
    tp2, tp8, tp4 = c.rows
    assert (tp2.macs, tp8.macs, tp4.macs) == (163_840, 40_960, 81_920)
    # step: the rank's roofline compute, then the exposed all-reduce: 8.4 µs + 2(tp − 1) ring steps of 3.4 µs, and
    # 2,560·2(tp − 1)/tp bytes at 450 GB/s; tp=2: 15.2 µs, tp=4: 28.8 µs, tp=8: 56 µs of latency alone
    spec = find_device("H100-SXM")
    assert spec is not None
    for r, latency in ((tp2, 15.2e-6), (tp4, 28.8e-6), (tp8, 56e-6)):
        compute = sum(call_seconds(r.plan.ranks[0], spec, set()))
        ring = B * S * D * 4 * 2 * (r.world - 1) / r.world / NVLINK
        assert r.step_s == pytest.approx(compute + latency + ring)
        # MFU: the model's 2·327,680 FLOPs over the step and every rank's float32 peak
        assert r.mfu == pytest.approx(2 * 327_680 / (r.step_s * r.world * H100_FP32))
    assert c.fastest is tp2  # the fewest ring steps: latency outweighs the compute the tiny MLP saves
    # fits in 100 KiB = 102,400 bytes: tp=8 needs 16,384·4 = 65,536 for weights, gradients and optimizer plus its
    # activations; tp=4 already 131,072 before them; so the fastest that fits is tp=8, not the fastest
    assert [r.fits for r in c.rows] == [False, True, False] and c.best is tp8
    text = str(c)
    assert "3 plans" in text and "ESTIMATE on H100-SXM, 100 KiB each" in text
    assert "* fastest: tp=2" in text and "fastest that fits: tp=8" in text
    saved = json.loads(json.dumps(c.to_dict()))
    assert saved["schema"] == "flopwise-parallel-compare/1" and (saved["fastest"], saved["best"]) == (0, 1)
    assert [p["parallel"] for p in saved["plans"]] == [{"tp": 2}, {"tp": 8}, {"tp": 4}]
    assert saved["plans"][1]["macs"] == 40_960 and saved["plans"][1]["communication"] == {"all_reduce": 2_560}
    assert saved["plans"][1]["memory"]["total"] == tp8.memory_bytes and saved["plans"][1]["fits"] is True


def test_a_pipeline_row_takes_its_busiest_stage_and_each_kind_of_traffic() -> None:
    # 3 layers of 8×8 on 2 stages: stage 0 runs layers 0-1, stage 1 layer 2 (earlier stages take one more)
    model = nn.Sequential(*[nn.Linear(8, 8, bias=False) for _ in range(3)])
    c = compare(model, torch.randn(4, 8), [{"pp": 2}, {"dp": 2}], microbatches=4)  # the dp plan takes none
    pp, dp = c.rows
    # pp: 4 micro-batches of one row; stage 0: 2·(8·8) = 128 MACs each, 512 a step; stage 1 half of that. The
    # row shows the busiest rank's
    assert pp.plan.microbatches == 4 and dp.plan.microbatches == 1
    assert [r.macs for r in pp.plan.ranks] == [512, 256] and pp.macs == 512
    # and the memory of the rank needing the most: stage 0's two layers, 128 float32 = 512 bytes of weights
    assert pp.weight_bytes == 2 * 64 * 4 == 512
    # stage 0 sends each micro-batch's 8 float32 (32 bytes) on, stage 1 receives them: 128 bytes a step each
    assert pp.communication == {"send": 128, "recv": 128}
    assert pp.bubble is not None and 0 < pp.bubble < 1 and pp.bubble == pp.estimate.bubble_fraction
    # dp: each rank 2 rows through the 3 layers (3·2·64 = 384 MACs); FSDP2 gathers each layer's 64 float32
    # (256 bytes) once in forward: 768 bytes
    assert dp.macs == 384 and dp.communication == {"all_gather": 3 * 64 * 4} and dp.bubble is None
    assert c.memory is None and all(r.fits is None for r in c.rows) and c.best is None
    assert "fits: unknown" in str(c)


def test_compare_refuses_before_planning_anything(monkeypatch: pytest.MonkeyPatch) -> None:
    planned: list[object] = []
    monkeypatch.setattr(flopwise.parallel.comparison, "plan", lambda *a, **k: planned.append(a))
    x = torch.randn(B, S, D)
    with pytest.raises(ValueError, match="unknown dimension 'xp'"):
        compare(MLP(), x, [{"tp": 2}, "xp=2"])
    with pytest.raises(ValueError, match="unknown device"):
        compare(MLP(), x, [{"tp": 2}], device="H200-imaginary")
    with pytest.raises(ValueError, match="unknown link"):
        compare(MLP(), x, [{"tp": 2}], link="carrier pigeon")
    with pytest.raises(ValueError, match="at least one plan"):
        compare(MLP(), x, [])
    with pytest.raises(ValueError, match="positive"):
        compare(MLP(), x, [{"tp": 2}], memory=0)
    assert planned == []


def _config(folder: Path) -> Path:
    transformers = pytest.importorskip("transformers")
    config = transformers.LlamaConfig(
        vocab_size=128,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=8,
        num_key_value_heads=8,
        max_position_embeddings=64,
    )
    config.to_json_file(folder / "config.json")
    return folder / "config.json"


def test_the_command_line_compares_two_plans(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from flopwise.cli import main

    config = _config(tmp_path)
    out = tmp_path / "plans.json"
    base = [f"hf:{config}", "--tokens", "2x16", "--parallel", "tp=2", "--parallel", "dp=2", "-q"]
    assert main([*base, "--format", "json", "-o", str(out), "--device-memory", "1"]) == 0
    saved = json.loads(out.read_text())
    assert saved["schema"] == "flopwise-parallel-compare/1" and saved["device"] == "H100-SXM"
    assert [p["parallel"] for p in saved["plans"]] == [{"tp": 2}, {"dp": 2}]
    # LlamaModel, 2 sequences of 16 tokens, 2 layers: 2·(4·16·64·64 + 3·16·64·128 + 8·16·16·(8 + 8)) MACs per
    # sequence (tests/test_parallel_count.py); tp=2 halves every contraction, dp=2 gives each rank one sequence
    one_device = 2 * 2 * (4 * 16 * 64 * 64 + 3 * 16 * 64 * 128 + 8 * 16 * 16 * (8 + 8))
    assert [p["macs"] for p in saved["plans"]] == [one_device // 2] * 2 == [1_376_256] * 2
    # tp=2: 5 all-reduces of 2·16·64 float32 (8,192 bytes): the vocabulary-split embedding, o_proj and down_proj of
    # each layer. dp=2: FSDP2 gathers every parameter once: embedding 128·64, each layer 4·64·64 + 3·64·128 + 2·64,
    # the final norm 64: 90,432 float32
    assert saved["plans"][0]["communication"] == {"all_reduce": 5 * 8_192}
    params = 128 * 64 + 2 * (4 * 64 * 64 + 3 * 64 * 128 + 2 * 64) + 64
    assert params == 90_432 and saved["plans"][1]["communication"] == {"all_gather": params * 4}
    assert saved["memory"] == 2**30 and [p["fits"] for p in saved["plans"]] == [True, True]
    capsys.readouterr()
    assert main(base) == 0
    table = capsys.readouterr().out
    assert "2 plans, per rank and per step" in table and "tp=2" in table and "dp=2" in table


def test_the_command_line_refuses_a_bad_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from flopwise.cli import main

    model = [f"hf:{_config(tmp_path)}", "--tokens", "1x16", "-q"]
    assert main([*model, "--parallel", "tp=2", "--parallel", "xp=2"]) == 2
    assert "--parallel xp=2: unknown dimension 'xp'" in capsys.readouterr().err
    assert main([*model, "--parallel", "tp=2", "--parallel", "dp=2"]) == 2  # a batch of 1 does not split in 2
    assert "a batch of 1 does not split into 2 data-parallel ranks" in capsys.readouterr().err
    assert main([*model, "--parallel", "tp=2", "--parallel", "tp=4", "--device", "cuda"]) == 2
    assert "unknown device 'cuda'" in capsys.readouterr().err
    assert main([*model, "--parallel", "tp=2", "--link", "NVLink4"]) == 2  # --link compares two plans or more
    assert main([*model, "--parallel", "tp=2", "--format", "csv"]) == 2
