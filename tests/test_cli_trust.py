"""What a newcomer and a CI pipeline meet on the command line (issue 28): a model that exits fails (exit 2, one line,
no table, no budget verdict, no file claimed written), a model file sees its own argv, CLI models are seeded, every
rebuild with random weights is held to one size limit, and messages say what happened."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from flopwise.cli import main as cli_main

EXITS = '''
import sys
import torch
from torch import nn

class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x)

class ExitsInForward(Tiny):
    def forward(self, x):
        raise SystemExit(0)

class QuitsInForward(Tiny):
    def forward(self, x):
        sys.exit()

def exits_when_built():
    sys.exit(0)
'''
ARGPARSE = '''
import argparse
import sys
from torch import nn

parser = argparse.ArgumentParser()
parser.add_argument("--width", type=int, default=4)
ARGS = parser.parse_args()  # a training script's top level: flopwise's own flags must not reach it
SEEN = list(sys.argv)

class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(ARGS.width, 2)
        self.seen = SEEN

    def forward(self, x):
        return self.fc(x)
'''


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = cli_main(args)
    except SystemExit as exit_:  # argparse, or (the bug) a model's own exit reaching the caller
        code = exit_.code if isinstance(exit_.code, int) else 0 if exit_.code is None else 1
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exits.py").write_text(EXITS)
    (tmp_path / "exits_on_import.py").write_text("import sys\nsys.exit(0)\n")
    (tmp_path / "parses.py").write_text(ARGPARSE)
    return tmp_path


@pytest.mark.parametrize("spec, where", [
    ("exits_on_import.py:Model", "while importing it (SystemExit(0))"),
    ("exits.py:exits_when_built", "in exits_when_built() (SystemExit(0))"),
    ("exits.py:ExitsInForward", "in its forward (SystemExit(0))"),
    ("exits.py:QuitsInForward", "in its forward (SystemExit())"),
])
def test_a_model_that_exits_fails_with_exit_2_and_no_verdict(files, capsys, spec, where):
    args = [spec, "--input", "1x4", "--fail-if", "params>1G", "-o", "out.json", "--format", "json"]
    code, out, err = run(args, capsys)
    assert code == 2, err
    assert err.count("\n") == 1 and f"flopwise: error: {spec}: the model exited {where}" in err, err
    assert out == "" and "budget" not in err and "wrote" not in err
    assert not (files / "out.json").exists()


def test_compare_marks_a_model_that_exits_as_failed(files, capsys):
    code, out, err = run(["compare", "guides:SimpleLinearModel", "exits.py:ExitsInForward", "--input", "1x4"], capsys)
    assert code == 1, err  # as for any model that fails in a comparison: its row says FAILED, the others count
    assert "guides:SimpleLinearModel" in out and "FAILED" in out
    assert "exits.py:ExitsInForward: the model exited in its forward (SystemExit(0))" in out


def test_a_model_file_sees_its_own_argv(files, capsys):
    before = list(sys.argv)
    code, out, err = run(["parses.py:Model", "--input", "1x4", "--format", "json"], capsys)
    assert code == 0, err
    assert json.loads(out)["total"]["params"] == 4 * 2 + 2  # ARGS.width kept its default: no flopwise flag read
    assert sys.modules["flopwise_user_parses"].SEEN == [str(Path("parses.py"))]
    assert sys.argv == before  # given back after the model was built


def test_the_help_says_a_model_file_is_run(capsys):
    code, out, _ = run(["--help"], capsys)
    assert code == 0 and "file.py:NAME imports the file, so its top-level code runs" in " ".join(out.split())


# — item 2: one size limit for every build with random weights —

LLAMA_8B = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 4096,
            "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
            "num_key_value_heads": 8, "vocab_size": 128256, "max_position_embeddings": 8192,
            "torch_dtype": "bfloat16"}
TINY_GPT2 = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "n_layer": 1, "n_embd": 32, "n_head": 2,
             "vocab_size": 50, "n_positions": 64}


def config(root: Path, name: str, content: dict) -> str:
    (root / name).mkdir()
    (root / name / "config.json").write_text(json.dumps(content))
    return f"hf:{root / name}"


def test_measure_refuses_to_fill_an_8b_config_with_random_weights(tmp_path, capsys):
    pytest.importorskip("transformers")
    code, out, err = run([config(tmp_path, "llama", LLAMA_8B), "--tokens", "1x8", "--measure"], capsys)
    assert code == 2 and out == "", err
    assert "its weights are 15 GiB; building them with random values to measure it is refused above 2 GiB" in err
    assert "--rebuild-limit GIB or FLOPWISE_REBUILD_LIMIT=GIB" in err


@pytest.mark.parametrize("how", ["flag", "env"])
def test_the_limit_is_the_same_for_every_rebuild_and_can_be_changed(tmp_path, capsys, monkeypatch, how):
    pytest.importorskip("transformers")
    gpt2 = config(tmp_path, "gpt2", TINY_GPT2)  # 69 KiB of weights
    limit = ["--rebuild-limit", "0.00001"] if how == "flag" else []
    if how == "env":
        monkeypatch.setenv("FLOPWISE_REBUILD_LIMIT", "0.00001")
    code, _, err = run([gpt2, "--tokens", "1x8", "--measure", *limit], capsys)
    assert code == 2 and "to measure it is refused above 10.5 KiB" in err, err
    code, _, err = run(["torchvision:squeezenet1_1", "--mode", "real", *limit], capsys)
    assert code == 2 and "its weights are 4.71 MiB; building them with random values for a real count" in err, err


# — item 3: the same command prints the same table —

RANDOM_ZEROS = '''
import torch
from torch import nn

class HalfZeros(nn.Module):
    """Half its weights drawn zero at random: its effective MACs follow the draw."""
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(64, 64, bias=False)
        with torch.no_grad():
            self.fc.weight.mul_(torch.rand(64, 64) < 0.5)

    def forward(self, x):
        return self.fc(x)
'''


def test_cli_models_are_built_with_seeded_weights_and_the_rng_is_given_back(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "zeros.py").write_text(RANDOM_ZEROS)
    state = torch.get_rng_state()
    tables = []
    for _ in range(2):
        code, out, err = run(["zeros.py:HalfZeros", "--input", "1x64"], capsys)
        assert code == 0, err
        tables.append(out)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's random state is left as it was
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        weight = torch.nn.Linear(64, 64, bias=False).weight * (torch.rand(64, 64) < 0.5)  # as HalfZeros draws them
        expected = int((weight != 0).sum())  # one MAC per nonzero weight, for one input row
    assert tables[0] == tables[1]
    assert f"effective: {expected:,} MACs once multiplications by zero weights are skipped" in tables[0]
