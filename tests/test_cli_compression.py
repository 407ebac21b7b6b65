"""The console script on compressed models: `--by-dtype`, the density column, and `compare` of a model beside its
pruned and quantized versions (loaded as file.py:NAME specs)."""

from __future__ import annotations

import json
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from test_cli import SCRIPT

MODELS = """
import warnings
import torch
from torch import nn
from torch.nn.utils import prune


class Autocast(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 8)

    def forward(self, x):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = self.fc(x)
        return torch.relu(y.float())


def dense():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def pruned():
    model = dense()
    with torch.no_grad():
        model[0].weight[:, :48] = 0  # 32 rows × 48 of 64 columns: a quarter of the weights left
    return model


def int8():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(dense(), {nn.Linear}, dtype=torch.qint8)


def static():
    tq = torch.ao.quantization
    model = nn.Sequential(tq.QuantStub(), *dense(), tq.DeQuantStub()).eval()
    model.qconfig = tq.get_default_qconfig("x86")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tq.prepare(model, inplace=True)
        model(torch.rand(4, 64))  # calibration
        return tq.convert(model)
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, subprocess.CompletedProcess[str]]:
    root: Path = tmp_path_factory.mktemp("compression")
    (root / "models.py").write_text(MODELS)
    cases = {
        "by_dtype": ["models.py:Autocast", "--input", "4x16", "--by-dtype"],
        "by_dtype_json": ["models.py:Autocast", "--input", "4x16", "--format", "json"],
        "density": ["models.py:pruned", "--input", "4x64"],
        "compare": ["compare", "models.py:dense", "models.py:pruned", "models.py:int8", "--input", "4x64", "-q"],
        "compare_json": [
            "compare",
            "models.py:dense",
            "models.py:pruned",
            "models.py:int8",
            "--input",
            "4x64",
            "--format",
            "json",
            "-q",
        ],
        "compare_meta": [
            "compare",
            "models.py:dense",
            "models.py:int8",
            "models.py:static",
            "--input",
            "4x64",
            "--mode",
            "meta",
            "--format",
            "json",
        ],  # not quiet: the notice of the real count
    }

    def run(args: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run([SCRIPT, *args], capture_output=True, text=True, cwd=root, timeout=300)

    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(zip(cases, pool.map(run, cases.values()), strict=True))


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def _cells(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


def test_by_dtype_table(runs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    lines = _ok(runs["by_dtype"]).splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("Dtype"))
    assert _cells(lines[header]) == ["Dtype", "MACs", "FLOPs", "Bytes moved", "Weight memory", "Energy (estimate)"]
    bf16, fp32, total = (_cells(line) for line in lines[header + 2 : header + 5])
    # 4·16·8 MACs; 2·512 + 32 bias adds = 1,056 FLOPs; casts of x, W, b to bf16 and addmm: 1,200 + 464 bytes
    assert bf16[:5] == ["bfloat16", "512", "1.06 k", "1.62 KiB", "–"]  # no bfloat16 weights: autocast casts copies
    # relu on 4×8 outside autocast; y.float() and relu move 192 + 256 bytes; weights (8·16 + 8)·4 bytes
    assert fp32[:5] == ["float32", "0", "32", "448 B", "544 B"]
    assert total[:5] == ["total", "512", "1.09 k", "2.06 KiB", "544 B"]
    assert any("ESTIMATE" in line and "Horowitz, ISSCC 2014" in line and "45 nm" in line for line in lines)
    assert any("bfloat16 not in the source" in line for line in lines)


def test_by_dtype_in_json(runs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    doc = json.loads(_ok(runs["by_dtype_json"]))
    assert doc["by_dtype"]["bfloat16"]["macs"] == 4 * 16 * 8
    assert doc["by_dtype"]["float32"]["flops"] == 4 * 8
    assert doc["energy_estimate"]["process_node"] == "45 nm"
    assert doc["energy_estimate"]["note"].startswith("estimate")


def test_density_column_for_sparse_weights(runs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    lines = _ok(runs["density"]).splitlines()
    assert _cells(lines[0])[-2:] == ["Density", "Effective MACs"]
    first, second = (_cells(line) for line in lines if line.startswith(("  0 ", "  2 ")))
    assert first[-2:] == ["25.0%", "2.05 k"]  # 32·16 of 32·64 weights non-zero; 4 rows · 512 = 2,048 MACs
    assert second[-2:] == ["100.0%", "1.28 k"]  # dense: 4·32·10
    effective = 4 * 32 * 16 + 4 * 32 * 10  # R·nnz of each Linear: 2,048 + 1,280
    assert f"effective: {effective:,} MACs" in "\n".join(lines)


def test_compare_dense_pruned_and_int8(runs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    lines = _ok(runs["compare"]).splitlines()
    assert "Effective MACs" in lines[0] and "Weight memory" in lines[0] and "Energy (estimate)" in lines[0]
    doc = json.loads(_ok(runs["compare_json"]))
    dense, pruned, int8 = doc["models"]
    dense_macs = 4 * 64 * 32 + 4 * 32 * 10  # R·K·N of both layers: 9,472
    assert dense["macs"] == pruned["macs"] == int8["macs"] == dense_macs
    assert dense["effective_macs"] == dense_macs
    assert pruned["effective_macs"] == 4 * 32 * 16 + 4 * 32 * 10  # 3,328
    weights, biases = 64 * 32 + 32 * 10, 32 + 10
    assert dense["param_memory"] == pruned["param_memory"] == (weights + biases) * 4  # pruning keeps dense storage
    assert int8["param_memory"] == weights * 1 + biases * 4  # qint8 weights, float32 biases
    assert int8["energy_j"][0] < dense["energy_j"][0]  # int8 MACs and a quarter of the weight bytes


def test_compare_quantized_models_in_meta_mode(runs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    doc = json.loads(_ok(runs["compare_meta"]))
    dense, int8, static = doc["models"]
    dense_macs = 4 * 64 * 32 + 4 * 32 * 10  # R·K·N of both layers: 9,472
    assert dense["macs"] == int8["macs"] == static["macs"] == dense_macs
    weights, biases = 64 * 32 + 32 * 10, 32 + 10
    assert int8["param_memory"] == static["param_memory"] == weights * 1 + biases * 4  # qint8 weights, fp32 biases
    # torch has no meta quantized tensors: the static model is counted for real, and the CLI says so
    assert "models.py:static: needs real data" in runs["compare_meta"].stderr
    assert "counting again in real mode" in runs["compare_meta"].stderr
