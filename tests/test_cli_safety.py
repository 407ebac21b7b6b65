"""The command line on hostile files and at its edges, through the real console script (issue 11).

Nothing is unpickled without --allow-pickle in any format; exit codes are 0/1/2/3/130 as README documents; a closed
pipe, an ASCII terminal and Ctrl-C end cleanly; inputs are never allocated in fake or meta mode.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import signal
import subprocess
import sys
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from test_cli import SCRIPT  # the console script beside this interpreter
from test_cli_startup import start_interruptible
from torch import nn

MODELS = '''
import time
import torch
from torch import nn

class Conv(nn.Module):
    """Any image size: a strided convolution, then the mean."""
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, stride=2)

    def forward(self, x):
        return self.conv(x).mean()

class BadInit(nn.Module):
    def __init__(self):
        super().__init__()
        raise KeyError("width")

def slow():
    open("slow.started", "w").close()  # the test waits for this, then presses Ctrl-C
    time.sleep(120)
'''


class Evil:
    """Unpickling this creates the file `path`: the marker that code from a file ran."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def torch_saved(obj: object) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def rewrite(source: Path, target: Path, members: dict[str, bytes], configs: dict[str, dict] | None = None) -> Path:
    """A copy of a zip archive with members replaced or added (by their name inside the top folder)."""
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w") as zout:
        top = zin.namelist()[0].split("/")[0]
        for info in zin.infolist():
            inner = info.filename.split("/", 1)[1]
            data = zin.read(info.filename)
            if configs and inner in configs:
                doc = json.loads(data)
                for key, change in configs[inner].items():
                    doc["config"][key].update(change)
                data = json.dumps(doc).encode()
            zout.writestr(info, members.pop(inner, data))
        for inner, data in members.items():
            zout.writestr(f"{top}/{inner}", data)
    return target


class WithConstant(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(x) + torch.tensor([1.0, 2.0, 3.0])  # a lifted tensor constant in the export


def malicious_files(root: Path) -> dict[str, Path]:
    """Each hostile file, and the marker its payload would create. Payloads are checked live in a test below."""
    good = root / "good.pt2"
    torch.export.save(torch.export.export(WithConstant(), (torch.rand(2, 4),)), good)
    files: dict[str, Path] = {}

    def evil(name: str) -> bytes:
        return torch_saved(Evil(root / f"{name}.marker"))

    files["pt2_sample_inputs"] = rewrite(
        good, root / "a.pt2", {"data/sample_inputs/model.pt": evil("pt2_sample_inputs")}
    )
    files["pt2_pickled_weight"] = rewrite(
        good,
        root / "b.pt2",
        {"data/weights/weight_0": evil("pt2_pickled_weight")},
        {"data/weights/model_weights_config.json": {"fc.weight": {"use_pickle": True}}},
    )
    raw = pickle.dumps(Evil(root / "pt2_raw_pickled_constant.marker"), protocol=0)  # no torch.save wrapper
    files["pt2_raw_pickled_constant"] = rewrite(
        good,
        root / "c.pt2",
        {"data/constants/tensor_0": raw},
        {"data/constants/model_constants_config.json": {"lifted_tensor_0": {"use_pickle": True}}},
    )
    opaque = pickle.dumps(Evil(root / "pt2_opaque_constant.marker"))
    entry = {"path_name": "opaque_obj_0", "use_pickle": True}
    files["pt2_opaque_constant"] = rewrite(
        good,
        root / "d.pt2",
        {"data/constants/opaque_obj_0": opaque},
        {"data/constants/model_constants_config.json": {"lifted_tensor_0": entry}},
    )
    files["pt2_old_format_member"] = rewrite(  # torch falls back to the 2.7 format when the new one fails to load
        good,
        root / "e.pt2",
        {"models/model.json": b"{}", "serialized_example_inputs.pt": evil("pt2_old_format_member")},
    )
    (root / "f.pt").write_bytes(evil("pt"))
    files["pt"] = root / "f.pt"
    torch.save(Evil(root / "legacy.marker"), root / "g.pt", _use_new_zipfile_serialization=False)
    files["legacy"] = root / "g.pt"
    with pytest.warns(FutureWarning):
        torch.jit.script(nn.Linear(2, 2)).save(str(root / "script.pt"))
    tampered = pickle.dumps(Evil(root / "torchscript.marker"))
    files["torchscript"] = rewrite(root / "script.pt", root / "h.pt", {"data.pkl": tampered})
    return files


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("safety")
    (root / "models.py").write_text(MODELS)
    files = malicious_files(root)
    sys.path.insert(0, str(root))
    (root / "gone.py").write_text("from torch import nn\n\nclass Gone(nn.Linear):\n    pass\n")
    saver = "import torch, gone; torch.save(gone.Gone(4, 3), 'gone.pt')"
    subprocess.run([sys.executable, "-c", saver], cwd=root, check=True, env={**os.environ, "PYTHONPATH": str(root)})
    (root / "gone.py").unlink()  # its class can no longer be imported
    sys.path.remove(str(root))
    rss = (
        "import resource, sys\nfrom flopwise.cli import main\nmain(sys.argv[1:])\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # the peak, KiB"
    )
    boom = (
        "import sys\nfrom flopwise.cli import main, model_command\n"
        "def boom(*a, **k): raise ZeroDivisionError('a bug')\n"
        "model_command._render = boom\nsys.exit(main(sys.argv[1:]))"
    )
    conv = "models.py:Conv"
    cases = {
        "malicious": [SCRIPT, "compare", *map(str, files.values()), "--input", "2x4", "--format", "json"],
        "refused_pt2": [SCRIPT, str(files["pt2_sample_inputs"])],
        "bad_init": [SCRIPT, "models.py:BadInit"],
        "gone": [SCRIPT, "gone.pt", "--allow-pickle", "--input", "2x4"],
        "internal": [sys.executable, "-c", boom, conv, "--input", "1x3x8x8"],
        "internal_tb": [sys.executable, "-c", boom, conv, "--input", "1x3x8x8", "--traceback"],
        "usage_tb": [SCRIPT, "nonsense", "--traceback"],
        "huge_size": [SCRIPT, conv, "--input", "99999999999999999999x3x32x32"],
        "rss_small": [sys.executable, "-c", rss, conv, "--input", "1x3x32x32", "-q"],
        "rss_fake": [sys.executable, "-c", rss, conv, "--input", "1x3x100000x100000", "-q"],
        "rss_meta": [sys.executable, "-c", rss, conv, "--input", "1x3x100000x100000", "--mode", "meta", "-q"],
        "ascii": [SCRIPT, conv, "--input", "1x3x32x32", "--per-operator"],
        "c_locale_file": [SCRIPT, conv, "--input", "1x3x32x32", "-o", "out/table.txt"],
        "bf16_input": [SCRIPT, conv, "--input", "1x3x32x32:bf16"],
    }
    envs = {"ascii": {"PYTHONIOENCODING": "ascii"}, "c_locale_file": {"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0"}}

    def run(name: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, **envs.get(name, {})}
        return subprocess.run(
            cases[name],
            capture_output=True,
            text=True,
            cwd=root,
            timeout=300,
            env=env,
            encoding="utf-8",
            errors="replace",
        )

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = dict(zip(cases, pool.map(run, cases)))
    return root, files, results


def exited(result, code: int) -> str:
    assert result.returncode == code, f"exit {result.returncode}, expected {code}; stderr:\n{result.stderr}"
    return result.stderr


def test_the_payloads_are_live(tmp_path):
    """Loaded the way torch loads them without consent, the hostile files do write their marker."""
    files = malicious_files(tmp_path)
    for name in ("pt2_sample_inputs", "pt2_pickled_weight", "pt2_raw_pickled_constant", "pt2_opaque_constant"):
        try:
            torch.export.load(files[name])
        except Exception:
            pass  # the payload returns a file object where torch expects a tensor: it ran all the same
        assert (tmp_path / f"{name}.marker").exists(), name
    for name in ("pt", "legacy"):
        torch.load(files[name], weights_only=False)  # noqa: S614 - proving the file is hostile
        assert (tmp_path / f"{name}.marker").exists(), name
    with zipfile.ZipFile(files["torchscript"]) as archive:
        pickle.loads(next(archive.read(n) for n in archive.namelist() if n.endswith("data.pkl")))  # noqa: S301
    assert (tmp_path / "torchscript.marker").exists()


def test_nothing_is_unpickled_without_consent(runs):
    root, files, results = runs
    doc = json.loads(exited(results["malicious"], 1) and results["malicious"].stdout)
    errors = {Path(m["spec"]).name: m["error"] for m in doc["models"]}
    assert len(errors) == len(files) and all(errors.values()), errors  # every file refused
    for name in files:
        assert not (root / f"{name}.marker").exists(), f"{name}: code from the file ran"
    for name in ("a.pt2", "b.pt2", "c.pt2", "d.pt2", "e.pt2"):
        assert "is not plain tensor data" in errors[name] and "--allow-pickle" in errors[name]
    assert "unpickling can run any code" in errors["f.pt"] and "unpickling can run any code" in errors["g.pt"]
    assert "not a loadable TorchScript file" in errors["h.pt"]
    refused = exited(results["refused_pt2"], 2)
    assert refused.count("\n") == 1 and "member data/sample_inputs/model.pt" in refused


def test_the_users_model_failing_exits_2(runs):
    _, _, results = runs
    assert "models.py:BadInit: BadInit() raised KeyError: 'width'" in exited(results["bad_init"], 2)
    gone = exited(results["gone"], 2)
    assert "unpickling it raised ModuleNotFoundError: No module named 'gone'" in gone and "Traceback" not in gone
    huge = exited(results["huge_size"], 2)
    assert huge.count("\n") == 1 and "is impossibly large" in huge
    for result in (results["bad_init"], results["gone"], results["huge_size"]):
        assert "Traceback" not in result.stderr


def test_a_bug_in_flopwise_exits_3_in_one_line(runs):
    _, _, results = runs
    bug = exited(results["internal"], 3)
    assert bug.strip() == (
        "flopwise: internal error: ZeroDivisionError: a bug (a bug in flopwise, please report it; "
        "--traceback shows where)"
    )
    assert "Traceback" in exited(results["internal_tb"], 3)
    assert "Traceback" in exited(results["usage_tb"], 2)  # --traceback on a usage error: the trace, still 2


def test_inputs_are_never_allocated_in_fake_or_meta_mode(runs):
    """A 1×3×100000×100000 input (120 GB as float32) costs no more memory than a 1×3×32×32 one."""
    _, _, results = runs
    peak_kib = {name: int(results[name].stdout.split()[-1]) for name in ("rss_small", "rss_fake", "rss_meta")}
    for name in ("rss_fake", "rss_meta"):
        exited(results[name], 0)
        assert peak_kib[name] - peak_kib["rss_small"] < 100 * 1024, peak_kib  # < 100 MiB over the same tiny count


def test_output_degrades_to_ascii_and_files_are_utf8(runs):
    root, _, results = runs
    out = results["ascii"].stdout
    exited(results["ascii"], 0)
    assert "1x3x32x32 float32" in out and "--" in out and "×" not in out and "─" not in out
    exited(results["c_locale_file"], 0)
    assert "1×3×32×32 float32" in (root / "out" / "table.txt").read_text(encoding="utf-8")


def test_a_float_input_of_another_dtype_names_the_fix(runs):
    _, _, results = runs
    err = exited(results["bf16_input"], 2)
    assert "the inputs are bfloat16 but the model's weights are float32" in err and "--dtype bfloat16" in err
    assert "--mode real" not in err  # not a data problem


def test_a_closed_pipe_ends_quietly(tmp_path):
    process = subprocess.Popen([SCRIPT, "guides:SimpleConv"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()  # the reader is gone before flopwise writes a byte (`flopwise … | true`)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 0 and err == b""


def test_output_files_say_when_they_replace_one(tmp_path):
    first = subprocess.run(
        [SCRIPT, "guides:SimpleLinearModel", "-o", "r.txt"], capture_output=True, text=True, cwd=tmp_path
    )
    second = subprocess.run(
        [SCRIPT, "guides:SimpleLinearModel", "-o", "r.txt"], capture_output=True, text=True, cwd=tmp_path
    )
    assert first.stderr.strip() == "flopwise: wrote r.txt" and second.stderr.strip() == "flopwise: replaced r.txt"


def test_ctrl_c_in_compare_prints_the_finished_rows_and_exits_130(tmp_path):
    (tmp_path / "models.py").write_text(MODELS)
    process = start_interruptible(
        [SCRIPT, "compare", "guides:SimpleLinearModel", "models.py:slow", "guides:SimpleConv"], cwd=tmp_path
    )
    deadline = time.monotonic() + 240
    while not (tmp_path / "slow.started").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "Traceback" not in err and "interrupted after 1 of 3 models" in err
    assert out.splitlines()[2].startswith("guides:SimpleLinearModel")  # the row it finished, under the header
    assert "guides:SimpleConv" not in out
