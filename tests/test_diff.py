"""`flopwise diff` and the `--fail-if` budget gate, through the console script, with hand-checked deltas.

The model: x (1×16) → fc1 Linear(16, W) → fc2 Linear(W, 4); before W = 32, after W = 40 (25 % heavier).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from flopwise.cli import main
from flopwise.cli.budget import BUDGET_BROKEN

SCRIPT = str(Path(sys.executable).with_name("flopwise"))
MODEL = """
import torch
from torch import nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(16, {width})
        self.fc2 = nn.Linear({width}, 4)
{extra}
    def forward(self, x):
        return {forward}
"""
EXTRA = "        self.fc3 = nn.Linear(4, 4, bias=False)\n"
TWO, THREE = "self.fc2(self.fc1(x))", "self.fc3(self.fc2(self.fc1(x)))"


def macs(width: int) -> int:
    return 16 * width + width * 4  # fc1 K·N + fc2 K·N, one token


def params(width: int) -> int:
    return 16 * width + width + width * 4 + 4  # weights and biases


def flopwise(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SCRIPT, *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("diff")
    out = {}
    for name, width, extra, forward in (("before", 32, "", TWO), ("after", 40, EXTRA, THREE), ("wide", 40, "", TWO)):
        out[name] = tmp / f"{name}.py"
        out[name].write_text(MODEL.format(width=width, extra=extra, forward=forward))
    return out


@pytest.fixture(scope="module")
def counts(sources) -> dict[str, Path]:
    """before.json (W = 32) and after.json (W = 40, and a new fc3 4→4), written by the console script."""
    out = {name: sources[name].with_suffix(".json") for name in ("before", "after")}
    done = flopwise(f"{sources['before']}:Net", "--input", "1x16", "--format", "json", "-o", str(out["before"]), "-q")
    assert done.returncode == 0, done.stderr
    # the after count also meets a budget: it breaks one, exits 4, and still writes its output
    done = flopwise(
        f"{sources['after']}:Net",
        "--input",
        "1x16",
        "--format",
        "json",
        "-o",
        str(out["after"]),
        "--fail-if",
        "macs>700",
        "--fail-if",
        "params>25M",
    )
    assert done.returncode == BUDGET_BROKEN == 4
    assert done.stderr.count("budget broken") == 1
    assert f"budget broken: macs>700 (Net: macs = {macs(40) + 16:,})" in done.stderr  # 16·40 + 40·4 + 4·4 = 816
    assert f"budget kept: params>25M (Net: params = {params(40) + 16:,})" in done.stderr  # 844 + 16 = 860
    assert json.loads(out["after"].read_text())["total"]["macs"] == 816
    return out


def test_budget_on_a_count_is_checked_on_its_totals(sources, counts, capsys):
    args = [f"{sources['wide']}:Net", "--input", "1x16", "--format", "json"]
    assert main([*args, "--fail-if", "macs>1k", "--fail-if", "params>=845"]) == 0
    assert f"budget kept: params>=845 (Net: params = {params(40)})" in capsys.readouterr().err  # 844 < 845
    assert main([*args, "--fail-if", "params>=844", "-q"]) == 4  # 844 ≥ 844
    err = capsys.readouterr().err
    assert err == f"flopwise: budget broken: params>=844 (Net: params = {params(40)})\n"  # -q: only the broken one


def test_diff_table_shows_per_module_deltas_and_the_total(counts):
    done = flopwise("diff", str(counts["before"]), str(counts["after"]))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    fc1 = next(line for line in lines if line.startswith("fc1 "))
    assert "+136 (+25.0%)" in fc1  # params: (16 + 1)·8 = 136 more, of 544
    assert "+128 (+25.0%)" in fc1  # MACs: 16·8 = 128 more, of 512
    fc2 = next(line for line in lines if line.startswith("fc2 "))
    assert "+32 (+25.0%)" in fc2  # params and MACs: 8·4 = 32 more, of 128 (the bias of 4 is unchanged)
    fc3 = next(line for line in lines if line.startswith("fc3 (added)"))
    assert "+16" in fc3  # 4·4 new parameters and MACs
    macs_total = next(line for line in lines if line.startswith("MACs "))
    assert macs_total.split() == ["MACs", "640", "816", "+176", "+27.50%"]  # 640 → 800 + 16 (fc3)
    params_total = next(line for line in lines if line.startswith("Params "))
    assert params_total.split() == ["Params", "676", "860", "+184", "+27.22%"]  # 676 → 844 + 16


def test_diff_json_has_exact_deltas(counts, capsys):
    assert main(["diff", str(counts["before"]), str(counts["after"]), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "flopwise/1-diff"
    (model,) = doc["models"]
    assert model["delta"]["macs"] == macs(40) + 16 - macs(32) == 176
    assert model["delta"]["params"] == params(40) + 16 - params(32) == 184
    # default convention: 2 FLOPs per MAC plus one bias add per output (fc1 W, fc2 4)
    assert model["delta"]["flops"] == (2 * 816 + 40 + 4) - (2 * 640 + 32 + 4) == 360
    by_name = {m["name"]: m for m in model["modules"]}
    assert by_name["fc3"]["status"] == "added" and by_name["fc3"]["before"]["macs"] == 0
    assert by_name["fc1"]["delta"] == {"params": 136, "macs": 128, "flops": 2 * 128 + 8, "bytes": 4 * (16 * 8 + 8 + 8)}
    # fc1's bytes: its weight (16·8 more floats), bias (8) and output (8) grow; 4 bytes each


def test_diff_budgets_relative_to_the_before_file(counts):
    before, after = str(counts["before"]), str(counts["after"])
    broken = flopwise("diff", before, after, "--fail-if", "macs>+2%", "--fail-if", "params>25M", "-q")
    assert broken.returncode == 4
    assert "budget broken: macs>+2% (Net: macs 640 → 816 (+27.50%))" in broken.stderr
    assert "params>25M" not in broken.stderr  # kept, and -q silences kept budgets


def test_diff_budgets_kept(counts, capsys):
    before, after = str(counts["before"]), str(counts["after"])
    assert (
        main(["diff", before, after, "--fail-if", "macs>+30%", "--fail-if", "params>+200", "--fail-if", "flops<-1%"])
        == 0
    )
    assert "budget kept: params>+200 (Net: params 676 → 860 (+184))" in capsys.readouterr().err


def test_diff_of_the_guides_files_pairs_models_by_name(tmp_path, capsys):
    path = tmp_path / "guides.json"
    assert main(["--format", "json", "-o", str(path), "-q"]) == 0
    assert main(["diff", str(path), str(path)]) == 0
    out = capsys.readouterr().out
    assert out.count("No module changed.") == 3
    assert "SimpleAttentionBlock: " in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fail-if", "macs>+2%"], "is a change and needs a before"),
        (["--fail-if", "mac>2M"], "with METRIC one of macs, flops, params"),
        (["--fail-if", "macs>2%"], "write it with its sign, 'macs>+2%'"),
    ],
)
def test_budget_usage_errors_exit_2(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["guides:SimpleConv", *args])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_diff_usage_errors_exit_2(tmp_path, capsys):
    missing = str(tmp_path / "missing.json")
    assert main(["diff", missing, missing]) == 2
    assert "missing.json: cannot read" in capsys.readouterr().err
    other = tmp_path / "other.json"
    other.write_text('{"hello": 1}')
    assert main(["diff", str(other), str(other)]) == 2
    assert "not a flopwise count" in capsys.readouterr().err


def test_exit_code_4_is_documented(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "4    a --fail-if budget is broken" in capsys.readouterr().out
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert "| 4 | a `--fail-if` budget is broken" in readme
