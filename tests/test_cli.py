"""The real console script in subprocesses: every spec kind, every format, compare and its plot, error paths.

All runs start at once (a few at a time) in one fixture, so the suite pays torch's import time in parallel.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from torch import nn

from flopwise.examples import SimpleConv

SCRIPT = shutil.which("flopwise", path=str(Path(sys.executable).parent)) or "flopwise"
GUIDES = {"SimpleLinearModel": 515, "SimpleConv": 3_976_448, "SimpleAttentionBlock": 2_672_640}

MODELS = '''
import torch
from torch import nn

@torch.library.custom_op("flopwise_cli_test::mystery", mutates_args=())
def mystery(x: torch.Tensor) -> torch.Tensor:
    return x.clone()

@mystery.register_fake
def _(x):
    return torch.empty_like(x)

class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        return self.fc(x)

def build():
    return Tiny(), torch.rand(2, 8)

class Filter(nn.Module):
    """Boolean indexing: its output shape depends on the data, so fake mode must fall back to real."""
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        y = self.fc(x)
        return y[y > 0]

class Mystery(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        return mystery(self.fc(x))

def broken():
    return nn.Sequential(nn.Linear(8, 4), nn.Linear(5, 2)), torch.rand(1, 8)
'''


def prepare(root: Path) -> dict[str, list[str]]:
    (root / "models.py").write_text(MODELS)
    models = str(root / "models.py")
    model, x = SimpleConv().eval(), torch.rand(1, 1, 28, 28)
    torch.export.save(torch.export.export(model, (x,)), root / "conv.pt2")
    with pytest.warns(FutureWarning):  # torch.jit is deprecated, but TorchScript files still exist in the wild
        torch.jit.script(model).save(str(root / "conv.pt"))
    torch.save(nn.Sequential(nn.Linear(4, 3)), root / "pickled.pt")
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=50, n_positions=64)
    config.architectures = ["GPT2LMHeadModel"]
    config.save_pretrained(root / "gpt2")
    (root / "zoo.txt").write_text("# two squeezenets\ntorchvision:squeezenet1_?\n\nguides:SimpleConv  # and a guide\n")
    return {
        "guides_json": ["--format", "json"],
        "file_csv": [f"{models}:build", "--format", "csv"],
        "tv_json": ["torchvision:resnet18", "--format", "json", "--quiet"],
        "markdown": [
            "guides:SimpleConv",
            "--format",
            "markdown",
            "--per-operator",
            "--output",
            str(root / "md" / "c.md"),
        ],
        "hf_json": [f"hf:{root / 'gpt2'}", "--tokens", "1x16", "--format", "json"],
        "pt2_json": [str(root / "conv.pt2"), "--format", "json", "--quiet"],
        "ts_json": [str(root / "conv.pt"), "--input", "1x1x28x28", "--format", "json"],
        "pickle_refused": [str(root / "pickled.pt"), "--input", "1x4"],
        "pickle_allowed": [str(root / "pickled.pt"), "--allow-pickle", "--input", "2x4", "--format", "json"],
        "fallback": [f"{models}:Filter", "--input", "3x8", "--format", "json"],
        "unsupported": [f"{models}:Mystery", "--input", "3x8", "--per-operator"],
        "raises": [f"{models}:broken"],
        "compare": [
            "compare",
            "guides:SimpleConv",
            "guides:SimpleLinearModel",
            f"{models}:broken",
            "--plot",
            str(root / "plots" / "zoo"),
            "--progress",
        ],
        "compare_list": ["compare", "--list", str(root / "zoo.txt"), "--format", "json"],
        "compare_first_fails": ["compare", f"{models}:broken", "guides:SimpleLinearModel", "guides:SimpleConv"],
        "compare_incomplete": [
            "compare",
            f"{models}:Mystery",
            "--input",
            "3x8",
            "--plot",
            str(root / "plots" / "part"),
        ],
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, subprocess.CompletedProcess[str]]:
    root = tmp_path_factory.mktemp("cli")
    cases = prepare(root)

    def run(args: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run([SCRIPT, *args], capture_output=True, text=True, cwd=root, timeout=300)

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = dict(zip(cases, pool.map(run, cases.values())))
    results["_root"] = root  # type: ignore[assignment]
    return results


def ok(result: subprocess.CompletedProcess[str], code: int = 0) -> subprocess.CompletedProcess[str]:
    assert result.returncode == code, f"exit {result.returncode}, expected {code}; stderr:\n{result.stderr}"
    assert "Traceback" not in result.stderr
    return result


def test_no_arguments_counts_the_guides_examples(runs):
    docs = json.loads(ok(runs["guides_json"]).stdout)
    assert [d["model"] for d in docs] == list(GUIDES)
    assert {d["model"]: d["total"]["macs"] for d in docs} == GUIDES
    conv = {m["name"]: m["macs"] for m in docs[1]["modules"]}
    assert conv["conv1"] == 28 * 28 * 3 * 3 * 1 * 16  # H·W·K·K·Cin·Cout = 112,896
    assert conv["conv2"] == 28 * 28 * 3 * 3 * 16 * 32  # 3,612,672
    assert conv["fc"] == 32 * 28 * 28 * 10  # 250,880
    assert all(d["schema"] == "flopwise/1" and d["complete"] for d in docs)


def test_python_file_as_csv(runs):
    rows = list(csv.DictReader(io.StringIO(ok(runs["file_csv"]).stdout)))
    assert [r["module"] for r in rows] == ["", "fc"]
    assert int(rows[1]["macs"]) == 2 * 8 * 4  # batch·in·out from the file's own example inputs
    assert int(rows[1]["params"]) == 8 * 4 + 4


def test_torchvision_default_input(runs):
    doc = json.loads(ok(runs["tv_json"]).stdout)
    assert doc["inputs"] == "1×3×224×224 float32"
    modules = {m["name"]: m for m in doc["modules"]}
    assert modules["conv1"]["macs"] == 112 * 112 * 7 * 7 * 3 * 64  # stride-2 7×7 stem: H·W·K·K·Cin·Cout
    assert modules["fc"]["macs"] == 512 * 1000
    assert modules["layer1.0.conv1"]["macs"] == 56 * 56 * 3 * 3 * 64 * 64
    assert runs["tv_json"].stderr == ""  # --quiet


def test_markdown_to_an_output_file(runs):
    result = ok(runs["markdown"])
    assert result.stdout == "" and "wrote" in result.stderr
    markdown_it = pytest.importorskip("markdown_it")
    text = (runs["_root"] / "md" / "c.md").read_text()  # the folder is created
    html = markdown_it.MarkdownIt("commonmark").enable("table").render(text)
    assert html.count("<table>") == 2  # modules, then operators
    assert "<code>conv2</code>" in html and "<code>aten.convolution</code>" in html
    assert "3,976,448 MACs" in html


def test_hf_config(runs):
    doc = json.loads(ok(runs["hf_json"]).stdout)
    modules = {m["name"]: m for m in doc["modules"]}
    assert modules["lm_head"]["macs"] == 16 * 32 * 50  # tokens·n_embd·vocab
    assert modules["transformer.h.0.mlp"]["macs"] == 16 * 32 * 128 * 2  # c_fc and c_proj: tokens·d·4d each
    assert "meta device" in runs["hf_json"].stderr


def test_archives(runs):
    exported = json.loads(ok(runs["pt2_json"]).stdout)
    assert exported["total"]["macs"] == GUIDES["SimpleConv"]
    assert {m["name"]: m["macs"] for m in exported["modules"]}["conv2"] == 28 * 28 * 3 * 3 * 16 * 32
    scripted = json.loads(ok(runs["ts_json"]).stdout)
    assert scripted["total"]["macs"] == GUIDES["SimpleConv"]
    assert "TorchScript" in runs["ts_json"].stderr
    refused = ok(runs["pickle_refused"], 2)
    assert "unpickling can run any code" in refused.stderr and "--allow-pickle" in refused.stderr
    allowed = json.loads(ok(runs["pickle_allowed"]).stdout)
    assert allowed["total"]["macs"] == 2 * 4 * 3
    assert "only for files you trust" in runs["pickle_allowed"].stderr


def test_fake_mode_falls_back_to_real(runs):
    doc = json.loads(ok(runs["fallback"]).stdout)
    assert doc["total"]["macs"] == 3 * 8 * 4
    assert "counting again in real mode" in runs["fallback"].stderr


def test_unsupported_ops_exit_1_and_are_named(runs):
    result = ok(runs["unsupported"], 1)
    assert "INCOMPLETE" in result.stdout and "flopwise_cli_test.mystery" in result.stdout
    assert "no known cost" in result.stdout  # the per-operator table marks it


def test_user_mistakes_exit_2_with_one_line(runs):
    raised = ok(runs["raises"], 2)
    assert "the model raised RuntimeError" in raised.stderr
    assert "raised in module '1' (Linear) with inputs 1×8 float32" in raised.stderr


def test_compare_table_plot_and_failures(runs):
    result = ok(runs["compare"], 1)  # one model failed
    lines = result.stdout.splitlines()
    linear = next(line for line in lines if line.startswith("guides:SimpleLinearModel"))
    assert "1.06 k" in linear  # 1,065 FLOPs: 1,030 contraction + 35 ReLU
    assert "FAILED" in next(line for line in lines if "broken" in line)
    assert "raised in module '1' (Linear)" in result.stdout
    assert "3/3" in result.stderr  # the progress bar
    plots = runs["_root"] / "plots"
    assert (plots / "zoo.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = (plots / "zoo.svg").read_text()
    assert svg.lstrip().startswith("<?xml")
    assert "FLOPs vs parameters" in svg and "orange" not in svg  # every point counted completely: none is orange
    assert "ratios are relative to guides:SimpleConv (the first model)" in result.stdout


def test_compare_keeps_the_given_order_and_names_the_baseline_that_counted(runs):
    result = ok(runs["compare_first_fails"], 1)
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines[2:5]] == [
        f"{runs['_root'] / 'models.py'}:broken",
        "guides:SimpleLinearModel",
        "guides:SimpleConv",  # not sorted
    ]
    footer = next(line for line in lines if "ratios" in line)
    assert "ratios are relative to guides:SimpleLinearModel (the first model that counted)" in footer
    assert "broken" not in footer
    conv = next(line for line in lines if line.startswith("guides:SimpleConv"))
    linear_params = 10 * 20 + 20 * 15 + 15 * 1  # three Linears without bias: 515
    conv_params = 16 * 1 * 9 + 16 + 32 * 16 * 9 + 32 + 25088 * 10 + 10  # 255,690
    assert f"{conv_params / linear_params:.3g}×" in conv  # params ratio against SimpleLinearModel, not the failure


def test_compare_plot_mentions_orange_only_when_a_point_is_a_lower_bound(runs):
    result = ok(runs["compare_incomplete"], 1)
    assert "lower bound" in result.stdout
    svg = (runs["_root"] / "plots" / "part.svg").read_text()
    assert "orange: lower bound" in svg


def test_compare_list_file_and_glob(runs):
    doc = json.loads(ok(runs["compare_list"]).stdout)
    assert doc["baseline"] == "torchvision:squeezenet1_0"
    assert [m["spec"] for m in doc["models"]] == [
        "torchvision:squeezenet1_0",
        "torchvision:squeezenet1_1",
        "guides:SimpleConv",
    ]
    first, _, conv = doc["models"]
    assert conv["macs"] == GUIDES["SimpleConv"]
    assert conv["flops_ratio"] == pytest.approx(conv["flops"] / first["flops"])


# — in process: the same main() the console script calls, for the cheap paths —


def main(args: list[str], capsys) -> tuple[int, str, str]:
    from flopwise.cli import main as cli_main

    try:
        code = cli_main(args)
    except SystemExit as exit_:  # argparse's --help, --version and usage errors
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_help_and_version(capsys):
    code, out, _ = main(["--help"], capsys)
    assert code == 0 and "examples:" in out and "flopwise compare" in out and "exit codes:" in out
    assert "3    flopwise itself failed" in out and "130  interrupted" in out  # the table README has
    code, out, _ = main(["--version"], capsys)
    assert code == 0 and out.startswith("flopwise ")
    code, out, _ = main(["compare", "--help"], capsys)
    assert code == 0 and "--plot" in out and "torchvision:*" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["resnet50"], "did you mean torchvision:resnet50"),
        (["guides:SimpleConv", "--input", "1,8"], "--input expects sizes like 1x3x224x224, got '1,8'"),
        (["guides:SimpleConv", "--input", "1x8:complex7"], "unknown dtype 'complex7'"),
        (["guides:SimpleConv", "--tokens", "128"], "--tokens expects batch x sequence length like 1x128"),
        (["--batch", "2"], "--input, --tokens, --batch and --dtype need a MODEL"),
        (["guides:SimpleConv", "--explain", "--format", "csv"], "--explain goes with --format table"),
        (["guides:SimpleConv", "--convention", "papers"], "invalid choice: 'papers'"),
        (["guides:SimpleConv", "--depth", "two"], "expects a depth like 2"),
        (["no/such/file.py:build"], "no file 'no/such/file.py'"),
        (["compare"], "nothing to compare"),
        (["compare", "torchvision:nothing*"], "matches no torchvision classification model"),
        (["compare", "torchvision:cars/*"], "no torchvision family 'cars'"),
        (["compare", "--list", "no-such-list.txt"], "--list no-such-list.txt: cannot read"),
    ],
)
def test_usage_errors_exit_2_and_name_the_fix(args, message, capsys):
    code, out, err = main(args, capsys)
    assert code == 2, err
    assert message in err and "Traceback" not in err and out == ""


def test_depth_and_per_operator_tables(capsys):
    args = ["guides:SimpleConv", "--depth", "0", "--per-operator", "--convention", "contractions"]
    code, out, err = main(args, capsys)
    assert code == 0, err
    assert "conv1" not in out.split("inputs:")[0]  # depth 0: the total row only
    assert "aten.convolution" in out and "7,952,896 FLOPs" in out  # 2 × 3,976,448 in the contractions convention
