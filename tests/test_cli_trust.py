"""What a newcomer and a CI pipeline meet on the command line (issue 28): a model that exits fails (exit 2, one line,
no table, no budget verdict, no file claimed written), a model file sees its own argv, CLI models are seeded, every
rebuild with random weights is held to one size limit, and messages say what happened."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_cli import SCRIPT  # the console script beside this interpreter

from flopwise.cli import main as cli_main

EXITS = """
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
"""
ARGPARSE = """
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
"""


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


@pytest.mark.parametrize(
    "spec, where",
    [
        ("exits_on_import.py:Model", "while importing it (SystemExit(0))"),
        ("exits.py:exits_when_built", "in exits_when_built() (SystemExit(0))"),
        ("exits.py:ExitsInForward", "in its forward (SystemExit(0))"),
        ("exits.py:QuitsInForward", "in its forward (SystemExit())"),
    ],
)
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

LLAMA_8B = {
    "model_type": "llama",
    "architectures": ["LlamaForCausalLM"],
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "vocab_size": 128256,
    "max_position_embeddings": 8192,
    "torch_dtype": "bfloat16",
}
TINY_GPT2 = {
    "model_type": "gpt2",
    "architectures": ["GPT2LMHeadModel"],
    "n_layer": 1,
    "n_embd": 32,
    "n_head": 2,
    "vocab_size": 50,
    "n_positions": 64,
}


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


# — item 8: messages that say what happened —


class Shell:
    """Unpickling this calls posix.system: the shape of a real attack (the command only writes a marker)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import posix

        return (posix.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("how", ["torch.save", "pickle"])
def test_a_pickle_calling_posix_system_is_refused_as_unsafe(tmp_path, capsys, how):
    import pickle

    marker, path = tmp_path / "ran", tmp_path / "evil.pt"
    if how == "torch.save":
        torch.save(Shell(marker), path)
    else:
        path.write_bytes(pickle.dumps(Shell(marker)))
    code, out, err = run([str(path), "--input", "1x4"], capsys)
    assert code == 2 and out == "" and not marker.exists(), err
    assert err.count("\n") == 1
    assert "refused: the file holds a pickled Python object (it would import posix.system)" in err
    assert "not a torch file" not in err and "weights_only" not in err and "--allow-pickle" in err


def test_long_messages_end_at_a_sentence_and_torchs_advice_is_left_out():
    from flopwise.cli.archives import _first
    from flopwise.cli.errors import first_line

    sentence = "The archive's graph names an operator this build of torch does not have, " * 3 + "so it cannot load."
    assert 200 < len(sentence) < 300 and first_line(ValueError(sentence)) == sentence  # whole, not cut at 200
    long = " ".join([f"Sentence {i} says one thing about the file and then ends." for i in range(12)])
    cut = first_line(ValueError(long))
    assert cut.endswith("ends. […]") and len(cut) <= 310 and long.startswith(cut.removesuffix(" […]"))
    advice = (
        "Weights only load failed. Re-running `torch.load` with `weights_only` set to `False` will likely "
        "succeed, but it can result in arbitrary code execution. Do it only if you got the file from a trusted "
        "source.\nWeightsUnpickler error: Unsupported operand 149\nCheck the documentation of torch.load"
    )
    assert _first(RuntimeError(advice)) == "Unsupported operand 149"


def test_a_directory_or_a_fifo_given_as_a_model_file_says_what_it_is(tmp_path, capsys):
    (tmp_path / "folder.pt2").mkdir()
    os.mkfifo(tmp_path / "pipe.onnx")
    os.mkfifo(tmp_path / "pipe.py")
    fifo = "is a named pipe (FIFO), not a file"
    for spec, said in [("folder.pt2", "is a directory, not a file"), ("pipe.onnx", fifo), ("pipe.py:Model", fifo)]:
        code, _, err = run([str(tmp_path / spec)], capsys)
        assert code == 2 and said in err and "no such file" not in err, err


def test_output_under_a_file_says_the_file_is_not_a_folder(tmp_path, capsys):
    (tmp_path / "afile").write_text("")
    code, out, err = run(["guides:SimpleLinearModel", "-o", str(tmp_path / "afile" / "x")], capsys)
    assert code == 2 and out == "" and "File exists" not in err, err
    assert f"{tmp_path / 'afile'}' is a file, not a folder" in err


def test_a_full_disk_on_stdout_is_exit_2_in_one_line(tmp_path):
    with open("/dev/full", "w") as full:
        result = subprocess.run(
            [SCRIPT, "guides:SimpleLinearModel", "-q"], stdout=full, stderr=subprocess.PIPE, text=True, timeout=300
        )
    assert result.returncode == 2, result.stderr
    assert result.stderr == "flopwise: error: cannot write the output to stdout (No space left on device)\n"


def test_an_empty_onnx_file_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "empty.onnx").write_bytes(b"")
    code, out, err = run([str(tmp_path / "empty.onnx")], capsys)
    assert code == 2 and out == "" and "the file is empty (0 bytes), not an ONNX model" in err, err


def test_allow_pickle_on_a_pt2_whose_code_runs_says_one_line(tmp_path):
    from test_cli_safety import malicious_files

    archive = malicious_files(tmp_path)["pt2_sample_inputs"]
    result = subprocess.run(
        [SCRIPT, str(archive), "--allow-pickle", "-q"], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "not a loadable torch.export archive" in result.stderr, result.stderr
    assert "Logging error" not in result.stderr and "Traceback" not in result.stderr


def test_a_config_naming_no_model_class_is_refused(tmp_path, capsys):
    pytest.importorskip("transformers")
    llama = {
        "model_type": "llama",
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "vocab_size": 50,
    }
    for name in ("os.system", "AutoConfig"):
        code, out, err = run([config(tmp_path, name, {**llama, "architectures": [name]}), "--tokens", "1x4"], capsys)
        assert code == 2 and out == "", err
        assert f"the config's architectures names {name!r}, which is not a transformers model class" in err
    code, out, err = run([config(tmp_path, "unknown", {**llama, "architectures": ["LlamaForTomorrow"]})], capsys)
    assert code == 0 and "has no class 'LlamaForTomorrow' (the config's architectures); built the model" in err


def test_a_sweep_stops_where_a_direct_count_does(tmp_path, capsys):
    pytest.importorskip("transformers")
    gpt2 = config(tmp_path, "gpt2", TINY_GPT2)  # 64 positions
    code, _, direct = run([gpt2, "--tokens", "1x128"], capsys)
    assert code == 2 and "longer than the model's 64 positions" in direct
    code, out, err = run([gpt2, "--tokens", "1x8", "--sweep", "seq=8:128:x2"], capsys)
    assert code == 2 and out == "", err
    assert "--sweep seq reaches 128 tokens, past the model's 64 positions (n_positions in the config)" in err


@pytest.mark.parametrize(
    "args",
    [
        ["hf:{gpt2}", "--tokens", "1x4", "--sweep", "seq=4:16:x2", "-o", "{afile}/x"],
        ["compare", "guides:SimpleConv", "-o", "{afile}/x"],
        ["compare", "guides:SimpleConv", "--plot", "{afile}/zoo"],
    ],
)
def test_an_output_under_a_file_is_refused_before_anything_is_counted(tmp_path, capsys, monkeypatch, args):
    gpt2 = config(tmp_path, "gpt2", TINY_GPT2)[3:]
    (tmp_path / "afile").write_text("")
    counted = []
    monkeypatch.setattr("flopwise.cli.common.count", lambda *a, **k: counted.append(a))
    code, out, err = run([a.format(gpt2=gpt2, afile=tmp_path / "afile") for a in args], capsys)
    assert code == 2 and out == "" and f"{tmp_path / 'afile'}' is a file, not a folder" in err, err
    assert counted == []
