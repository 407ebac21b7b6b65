"""attention="masked": only the query–key pairs a mask keeps (causal, sliding window, padding, BlockMask)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
import transformers
from torch import nn
from torch.nn.attention.flex_attention import create_block_mask, flex_attention

import flopwise
from flopwise.cli import main

pytestmark = pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")


class Causal(nn.Module):
    def forward(self, q: torch.Tensor) -> torch.Tensor:
        return F.scaled_dot_product_attention(q, q, q, is_causal=True)


@pytest.mark.parametrize("mode", ["real", "fake"])
def test_causal_keeps_half_the_square_plus_the_diagonal(mode: str) -> None:
    b, h, s, e = 2, 3, 8, 16
    q = torch.rand(b, h, s, e)
    dense = flopwise.count(Causal(), q, mode=mode)
    masked = flopwise.count(Causal(), q, mode=mode, attention="masked")
    assert dense.macs == b * h * s * s * (e + e)  # every pair: QKᵀ and the weighted sum of V
    assert masked.macs == b * h * (s * (s + 1) // 2) * (e + e)  # query i sees keys 0..i: S(S+1)/2 = 36 pairs
    assert masked.flops == dense.flops - 2 * (dense.macs - masked.macs)  # softmax and scale stay as the kernel runs


def test_causal_convention_is_an_alias_of_masked_attention() -> None:
    q = torch.rand(1, 2, 8, 16)
    old = flopwise.count(Causal(), q, convention="causal")
    assert old.macs == 1 * 2 * 36 * 32 == flopwise.count(Causal(), q, attention="masked").macs
    assert flopwise.count(Causal(), q, convention="causal", attention="dense").macs == 1 * 2 * 64 * 32
    with pytest.raises(ValueError, match="attention must be one of dense, masked"):
        flopwise.count(Causal(), q, attention="sparse")


def test_padding_mask_keeps_the_real_tokens() -> None:
    b, h, s, e = 2, 2, 6, 8
    q = torch.rand(b, h, s, e)
    valid = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]], dtype=torch.bool)  # 6 and 4 real keys
    with torch.no_grad(), flopwise.counting(attention="masked") as c:
        F.scaled_dot_product_attention(q, q, q, attn_mask=valid[:, None, None, :])
    assert c.report.macs == (6 + 4) * h * s * (e + e)  # each of the H·S queries of sequence b sees its real keys


def test_additive_mask_keeps_the_finite_entries() -> None:
    q = torch.rand(1, 1, 4, 8)
    bias = torch.zeros(4, 4).masked_fill(torch.eye(4, dtype=torch.bool), float("-inf"))  # drops the diagonal
    with torch.no_grad(), flopwise.counting(attention="masked") as c:
        F.scaled_dot_product_attention(q, q, q, attn_mask=bias)
    assert c.report.macs == (16 - 4) * (8 + 8)


def _mistral(window: int) -> Any:
    config = transformers.MistralConfig(
        vocab_size=100,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        sliding_window=window,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    return transformers.MistralForCausalLM(config).eval()


@pytest.mark.parametrize("mode", ["real", "fake"])
def test_mistral_sliding_window_shorter_than_the_sequence(mode: str) -> None:
    s, w, h, e = 10, 4, 4, 16
    model, ids = _mistral(w), torch.randint(0, 100, (1, s))
    dense = flopwise.count(model, {"input_ids": ids}, mode=mode)
    masked = flopwise.count(model, {"input_ids": ids}, mode=mode, attention="masked")  # fake: values followed
    kept = sum(min(i + 1, w) for i in range(s))  # 1 + 2 + 3 + 4·7 = 34 of 100 pairs
    assert kept == 34
    assert dense.macs - masked.macs == h * (s * s - kept) * (e + e)  # one layer, 4 heads of 16
    assert masked.warnings == []


def test_llama_causal_with_right_padding() -> None:
    config = transformers.LlamaConfig(
        vocab_size=100,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config).eval()
    ids, pad = torch.randint(0, 100, (2, 6)), torch.tensor([[1] * 6, [1, 1, 1, 1, 0, 0]])
    dense = flopwise.count(model, {"input_ids": ids, "attention_mask": pad})
    masked = flopwise.count(model, {"input_ids": ids, "attention_mask": pad}, attention="masked")
    # sequence 0: causal, 6·7/2 = 21 pairs; sequence 1: query i sees keys j ≤ i, j < 4: 1+2+3+4+4+4 = 18
    assert dense.macs - masked.macs == 2 * (2 * 36 - (21 + 18)) * (16 + 16)  # 2 heads of 16


def test_causal_block_mask_keeps_three_of_four_blocks() -> None:
    b, h, s, e = 1, 2, 256, 16
    q = torch.rand(b, h, s, e)
    mask = create_block_mask(lambda b, h, q, kv: q >= kv, None, None, s, s, device="cpu", BLOCK_SIZE=128)
    for attention, blocks in (("dense", 4), ("masked", 3)):  # the block above the diagonal is skipped
        with torch.no_grad(), flopwise.counting(attention=attention) as c:
            flex_attention(q, q, q, block_mask=mask)
        flex = c.report.by_operator()["higher_order.flex_attention"]
        assert flex.macs == b * h * blocks * 128 * 128 * (e + e)


def test_command_line_attention_masked(tmp_path: Any, capsys: Any) -> None:
    script = tmp_path / "causal.py"
    script.write_text(
        "import torch.nn.functional as F\nfrom torch import nn\n"
        "class M(nn.Module):\n    def forward(self, q):\n"
        "        return F.scaled_dot_product_attention(q, q, q, is_causal=True)\n"
    )
    for attention, pairs in (("dense", 8 * 8), ("masked", 8 * 9 // 2)):
        assert main([f"{script}:M", "--input", "1x2x8x16", "--attention", attention, "--format", "json"]) == 0
        out = capsys.readouterr().out
        assert f'"macs": {1 * 2 * pairs * (16 + 16)}' in out and f'"attention": "{attention}"' in out


class Window(nn.Module):
    """A sliding window of 3 built by index arithmetic, as transformers builds its masks."""

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        i = torch.arange(q.shape[-2], device=q.device)
        keep = (i[:, None] >= i[None, :]) & (i[:, None] - i[None, :] < 3)
        return F.scaled_dot_product_attention(q, q, q, attn_mask=keep)


@pytest.mark.parametrize("mode", ["real", "fake"])
def test_mask_built_from_shapes_is_counted_without_data(mode: str) -> None:
    r = flopwise.count(Window(), torch.rand(1, 2, 8, 16), mode=mode, attention="masked")
    kept = sum(min(i + 1, 3) for i in range(8))  # 1 + 2 + 3·6 = 21 pairs per head
    assert r.macs == 2 * kept * (16 + 16) and r.warnings == []


def test_meta_mode_counts_masks_as_a_cpu_run_does() -> None:
    r = flopwise.count(Window(), torch.rand(1, 2, 8, 16), mode="meta", attention="masked")
    kept = sum(min(i + 1, 3) for i in range(8))  # meta runs on fake CPU tensors: the mask's values are followed
    assert r.macs == 2 * kept * (16 + 16) and r.warnings == []


def test_mask_of_unknown_values_falls_back_to_dense_with_a_warning() -> None:
    class Given(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.keep = nn.Parameter(torch.rand(8, 8))

        def forward(self, q: torch.Tensor) -> torch.Tensor:
            return F.scaled_dot_product_attention(q, q, q, attn_mask=self.keep > 0.5)  # values of the weights

    r = flopwise.count(Given(), torch.rand(1, 2, 8, 16), mode="fake", attention="masked")
    assert r.macs == 2 * 64 * (16 + 16)  # B·H = 2, all 8·8 pairs, QKᵀ and PV of width 16
    assert any("unknown" in w and "dense" in w for w in r.warnings)


def test_mask_computed_from_a_float_input_is_read_in_fake_mode() -> None:
    class Given(nn.Module):
        def forward(self, q: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
            return F.scaled_dot_product_attention(q, q, q, attn_mask=keep > 0.5)  # values of a float input

    keep = torch.zeros(8, 8)
    keep[:, :3] = 1.0  # every query keeps its first 3 keys: 8·3 = 24 pairs
    r = flopwise.count(Given(), (torch.rand(1, 2, 8, 16), keep), mode="fake", attention="masked")
    assert r.macs == 2 * 24 * (16 + 16)  # B·H = 2, 24 pairs, QKᵀ and PV of width 16
    assert r.warnings == []
