"""What a newcomer and a CI pipeline meet on the command line (issue 28): a model that exits fails (exit 2, one line,
no table, no budget verdict, no file claimed written), a model file sees its own argv, CLI models are seeded, every
rebuild with random weights is held to one size limit, and messages say what happened."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

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
