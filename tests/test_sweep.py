"""`flopwise MODEL --sweep …` through the console script: the table comes from one polynomial fit, and every row
equals a direct count at that size."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import transformers

import flopwise
from flopwise.cli.errors import UsageError
from flopwise.cli.load import load
from flopwise.cli.main import main as cli_main
from flopwise.cli.sweep import parse_sweep

SCRIPT = Path(sys.executable).with_name("flopwise")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent / "src")}
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sweep")
    config = transformers.GPT2Config(
        n_layer=1, n_embd=32, n_head=2, vocab_size=50, n_positions=256, bos_token_id=0, eos_token_id=0
    )
    config.architectures = ["GPT2LMHeadModel"]
    config.save_pretrained(root)
    return root


def test_parse_sweep() -> None:
    assert parse_sweep("seq=128:1024:x2") == ("seq", [128, 256, 512, 1024])  # doubling, stop included
    assert parse_sweep("batch=1:7:+3") == ("batch", [1, 4, 7])
    assert parse_sweep("seq=1,64,512") == ("seq", [1, 64, 512])
    for bad in ("seq=128:32:x2", "width=1:2:+1", "seq=1:8:x1", "seq=1:8", "seq=a,b"):
        with pytest.raises(UsageError, match="--sweep expects"):
            parse_sweep(bad)


def test_sweep_table_json_and_plot_equal_direct_counts(gpt2: Path, tmp_path: Path) -> None:
    done = run(
        f"hf:{gpt2}",
        "--tokens",
        "1x16",
        "--sweep",
        "seq=16:256:x2",
        "--sweep",
        "batch=1,3",
        "--format",
        "json",
        "--plot",
        str(tmp_path / "sweep.png"),
        "-q",
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert "exact polynomial fit in seq, batch" in doc["note"]
    points = doc["points"]
    assert [(p["seq"], p["batch"]) for p in points] == [(s, b) for s in (16, 32, 64, 128, 256) for b in (1, 3)]
    # batch 1 is never symbolic: those sizes are counted; the others come from the run with symbolic sizes
    assert {(p["batch"], p["source"]) for p in points} == {(1, "counted"), (3, "traced")}
    model = load(f"hf:{gpt2}").model  # the model the command line counted, attention implementation and all
    for p in points[::3]:  # batch 1 takes its own path in the mask; both are checked
        direct = flopwise.count(model, torch.zeros(p["batch"], p["seq"], dtype=torch.long), mode="fake")
        assert (p["macs"], p["flops"], p["bytes_read"], p["bytes_written"]) == (
            direct.macs,
            direct.flops,
            direct.bytes_read,
            direct.bytes_written,
        ), p
    assert (tmp_path / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sweep_table_and_usage_errors(gpt2: Path) -> None:
    done = run(f"hf:{gpt2}", "--tokens", "2x16", "--sweep", "seq=8:64:+8", "-q")
    assert done.returncode == 0, done.stderr
    assert "MACs = " in done.stdout and "the exact polynomial fit in seq above" in done.stdout
    assert len([line for line in done.stdout.splitlines() if line.startswith(("8 ", "16 ", "64 "))]) == 3
    wrong = run("guides:SimpleConv", "--sweep", "seq=8:64:x2", "-q")
    assert wrong.returncode == 2 and "no integer input" in wrong.stderr
    alone = run(f"hf:{gpt2}", "--plot", "x.png", "-q")
    assert alone.returncode == 2 and "--plot goes with --sweep" in alone.stderr


def test_sweep_past_the_sliding_window_counts_and_marks_those_sizes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = transformers.MistralConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=100,
        sliding_window=8,
        bos_token_id=0,
        eos_token_id=0,
    )
    config.architectures = ["MistralForCausalLM"]
    config.save_pretrained(tmp_path)
    spec = f"hf:{tmp_path}"
    assert cli_main([spec, "--tokens", "1x4", "--sweep", "seq=2,6,8,1000", "--format", "json", "-q"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["region"] and "Piecewise" in doc["formulas"]["macs"]  # the run stands for seq ≤ 6: its guards
    assert [p["source"] for p in doc["points"]] == ["traced", "traced", "counted", "counted"]
    model = load(spec).model
    for p in doc["points"]:
        direct = flopwise.count(model, torch.zeros(1, p["seq"], dtype=torch.long), mode="fake")
        assert (p["macs"], p["flops"], p["bytes_read"], p["bytes_written"]) == (
            direct.macs,
            direct.flops,
            direct.bytes_read,
            direct.bytes_written,
        ), p
    assert doc["points"][-1]["bytes_read"] == 24_711_201  # the polynomial of the run said 10,792·1000 + 87,184
    assert cli_main([spec, "--tokens", "1x4", "--sweep", "seq=6,1000", "-q"]) == 0
    table = capsys.readouterr().out
    rows = [line.split() for line in table.splitlines() if line.startswith(("6 ", "1,000 "))]
    assert [row[-1] for row in rows] == ["traced", "counted"]
    assert "exact for seq ≥ 2 where" in table and "seq ≥ 1" not in table
