"""docs/compression.md is current, and its figures agree with counts derived by hand."""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent

# ResNet-18 on 224×224: the output side of every convolution, by where it sits (conv1 has stride 2, the max pool
# halves again, and the first block of layer2, layer3 and layer4 halves once more: 112, 56, 28, 14, 7).
SIDE = {"conv1": 112, "layer1": 56, "layer2": 28, "layer3": 14, "layer4": 7}


def _by_hand(model: nn.Module, weight_elements: Any) -> int:
    """Σ over convolutions and the classifier of (weight elements counted) × (output positions per weight
    element): H_out·W_out for a convolution (batch 1), 1 row for the classifier."""
    total = 0
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            side = SIDE[name.split(".")[0]]
            total += weight_elements(module.weight) * side * side
        elif isinstance(module, nn.Linear):
            total += weight_elements(module.weight) * 1
    return total


@pytest.fixture(scope="module")
def page() -> dict[str, Any]:
    pytest.importorskip("transformers")
    return runpy.run_path(str(ROOT / "scripts" / "gen_compression_docs.py"))


def test_page_is_current(page: dict[str, Any]) -> None:
    assert (ROOT / "docs" / "compression.md").read_text(encoding="utf-8") == page["render"](), (
        "docs/compression.md is out of date: run .venv/bin/python scripts/gen_compression_docs.py"
    )


@pytest.mark.parametrize(
    ("name", "amount"), [("ResNet-18 dense", 0.0), ("ResNet-18, 50 % pruned", 0.5), ("ResNet-18, 90 % pruned", 0.9)]
)
def test_pruned_resnet18_by_hand(page: dict[str, Any], name: str, amount: float) -> None:
    model = page["resnet18_pruned"](amount)
    report = page["reports"]()[name]
    dense = _by_hand(model, lambda w: w.numel())
    effective = _by_hand(model, lambda w: int(torch.count_nonzero(w)))
    assert report.macs == dense == 1_814_073_344  # ResNet-18's published 1.8 G multiply-adds
    assert report.effective_macs == effective
    # each layer keeps round(numel·(1 − amount)) weights: the count agrees with the share asked for, to rounding
    assert effective == pytest.approx(dense * (1 - amount), rel=1e-4)


def test_int8_bert_by_hand(page: dict[str, Any]) -> None:
    found = page["reports"]()
    dense, int8 = found["BERT-base dense"], found["BERT-base int8"]
    seq, d, ff, layers = 128, 768, 3072, 12
    linear = seq * (4 * d * d + 2 * d * ff)  # Q, K, V, output projections and the two feed-forward layers
    pooler = 1 * d * d  # the first token of one sequence
    attention = 2 * seq * seq * d  # QKᵀ and AV over 12 heads of 64
    split = int8.by_dtype()
    assert split["int8"].macs == layers * linear + pooler == 10_872_225_792
    assert split["float32"].macs == layers * attention == 301_989_888
    assert dense.macs == int8.macs == layers * (linear + attention) + pooler
    weights = layers * (4 * d * d + 2 * d * ff) + d * d  # every Linear weight, one byte each after quantization
    assert int8.param_bytes["qint8"] == weights
    assert dense.param_memory - int8.param_memory == weights * (4 - 1)  # each weight 4 bytes → 1
