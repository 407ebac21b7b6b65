"""Attention written out in ops (Q·Kᵀ → mask → softmax → ·V), under attention="masked": only the pairs the mask
keeps, in every mode, whatever module writes it; a mask whose values are unknown is counted dense with a warning."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

import flopwise

transformers = pytest.importorskip("transformers")

MODES = ("real", "fake", "meta")


def attention_macs(pairs: int, width: int) -> int:
    return pairs * (width + width)  # Q·Kᵀ and probabilities·V: one MAC per kept pair and width, each


@pytest.mark.parametrize("mode", MODES)
def test_gemma2_eager_sliding_and_global_layers(mode: str) -> None:
    config = transformers.Gemma2Config(
        vocab_size=100,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        sliding_window=4,
        attn_implementation="eager",
        layer_types=["sliding_attention", "full_attention"],
    )
    model = transformers.Gemma2Model(config).eval()
    ids = {"input_ids": torch.randint(0, 100, (1, 10))}
    dense = flopwise.count(model, ids, mode=mode)
    masked = flopwise.count(model, ids, mode=mode, attention="masked")
    assert dense.macs == 197_120
    # sliding window 4 on 10 tokens: query i keeps keys i−3..i, 1+2+3+4·7 = 34 pairs; the global causal layer 55
    assert masked.macs == dense.macs - 2 * attention_macs(2 * 10 * 10, 16) + 2 * attention_macs(34 + 55, 16)
    assert masked.macs == 190_016 and masked.warnings == []


@pytest.mark.parametrize("mode", MODES)
def test_gpt2_eager_with_a_padding_mask(mode: str) -> None:
    config = transformers.GPT2Config(
        n_layer=2,
        n_head=2,
        n_embd=32,
        vocab_size=100,
        n_positions=64,
        attn_implementation="eager",
        bos_token_id=0,
        eos_token_id=0,
    )
    model = transformers.GPT2Model(config).eval()
    mask = torch.ones(2, 8, dtype=torch.long)
    mask[1, 5:] = 0  # the second row: 5 tokens, then 3 of padding
    inputs = {"input_ids": torch.randint(0, 100, (2, 8)), "attention_mask": mask}
    dense = flopwise.count(model, inputs, mode=mode)
    masked = flopwise.count(model, inputs, mode=mode, attention="masked")
    # causal: row 0 keeps 8·9/2 = 36 pairs; row 1 keeps j ≤ i and j < 5: 1+2+3+4+5 + 3·5 = 30; per head and layer
    all_pairs, kept = 2 * 8 * 8, 36 + 30
    assert dense.macs - masked.macs == 2 * 2 * (attention_macs(all_pairs, 16) - attention_macs(kept, 16))  # L·H
    assert masked.warnings == []


@pytest.mark.parametrize("mode", MODES)
def test_bert_eager_with_a_padding_mask(mode: str) -> None:
    config = transformers.BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        attn_implementation="eager",
    )
    model = transformers.BertModel(config).eval()
    mask = torch.ones(2, 8, dtype=torch.long)
    mask[1, 5:] = 0
    inputs = {"input_ids": torch.randint(0, 100, (2, 8)), "attention_mask": mask}
    dense = flopwise.count(model, inputs, mode=mode)
    masked = flopwise.count(model, inputs, mode=mode, attention="masked")
    # both directions: row 0 keeps all 64 pairs, row 1 the 8·5 = 40 whose key is a token
    assert dense.macs - masked.macs == 2 * 2 * (attention_macs(128, 16) - attention_macs(64 + 40, 16))  # L·H


class Handwritten(nn.Module):
    """Attention as people write it by hand: a boolean mask through masked_fill, then a second one through where."""

    def __init__(self, keep: torch.Tensor, drop: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("drop", drop)  # True: the pair is dropped
        self.register_buffer("keep", keep)  # True: the pair is kept

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        scores = (q @ q.transpose(-1, -2)) / 4.0
        scores = scores.masked_fill(self.drop, float("-inf"))
        scores = torch.where(self.keep, scores, torch.finfo(scores.dtype).min)
        return torch.softmax(scores, dim=-1) @ q


@pytest.mark.parametrize("mode", MODES)
def test_masked_fill_and_where_masks_combine(mode: str) -> None:
    drop = torch.ones(6, 6, dtype=torch.bool).triu(1)  # causal: 21 pairs kept
    keep = torch.ones(6, 6, dtype=torch.bool)
    keep[:, 0] = False  # and never the first key: 21 − 6 = 15 pairs
    r = flopwise.count(Handwritten(keep, drop), torch.rand(2, 3, 6, 8), mode=mode, attention="masked")
    assert r.macs == 2 * 3 * attention_macs(15, 8)  # B·H heads of 15 pairs, width 8
    assert flopwise.count(Handwritten(keep, drop), torch.rand(2, 3, 6, 8), mode=mode).macs == 2 * 3 * 36 * 16


class FromWeights(nn.Module):
    """A mask computed from a parameter: its values are unknown without the weights."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = nn.Parameter(torch.randn(6, 6))

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        scores = q @ q.transpose(-1, -2)
        return torch.softmax(scores.masked_fill(self.gate < 0, float("-inf")), dim=-1) @ q


def test_a_mask_of_unknown_values_is_counted_dense_with_a_warning() -> None:
    r = flopwise.count(FromWeights(), torch.rand(1, 2, 6, 8), mode="fake", attention="masked")
    assert r.macs == 2 * attention_macs(36, 8)  # every pair of both heads
    assert any("eager attention" in w and "unknown" in w for w in r.warnings)
    model = FromWeights()
    real = flopwise.count(model, torch.rand(1, 2, 6, 8), attention="masked")  # with weights, the mask is read
    kept = int((model.gate >= 0).sum())  # the pairs whose gate is not negative, in each of the 2 heads
    assert real.macs == 2 * attention_macs(kept, 8) and real.warnings == []


def test_dense_counts_are_unchanged_by_masks() -> None:
    drop = torch.ones(6, 6, dtype=torch.bool).triu(1)
    counts: list[Any] = [
        flopwise.count(Handwritten(torch.ones(6, 6, dtype=torch.bool), drop), torch.rand(1, 1, 6, 8), mode=mode).macs
        for mode in MODES
    ]
    assert counts == [attention_macs(36, 8)] * 3
