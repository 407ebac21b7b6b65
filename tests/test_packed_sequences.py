"""Packed and variable-length batches, counted as the kernels run them: three documents of 5, 3 and 8 tokens packed
into 16 give 5² + 3² + 8² = 98 query–key pairs per head (causal: 15 + 6 + 36 = 57), not 16² = 256."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import flopwise

H, E = 2, 8  # heads, head width
LENGTHS = (5, 3, 8)
PAIRS, CAUSAL = 5 * 5 + 3 * 3 + 8 * 8, 5 * 6 // 2 + 3 * 4 // 2 + 8 * 9 // 2  # 98 and 57 per head


def attention_macs(pairs: int, width: int = E) -> int:
    return H * pairs * (width + width)  # Q·Kᵀ and P·V over H heads: one MAC per pair and width, each


class Varlen(nn.Module):
    def __init__(self, window: tuple[int, int] = (-1, -1)) -> None:
        super().__init__()
        self.window = window

    def forward(self, q: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        from torch.nn.attention.varlen import varlen_attn

        return varlen_attn(q, q, q, offsets, offsets, 8, 8, window_size=self.window)


OFFSETS = torch.tensor([0, 5, 8, 16], dtype=torch.int32)


@pytest.mark.parametrize("mode", ["fake", "meta"])  # a CUDA kernel: counted on fake tensors here
def test_varlen_attention_counts_each_document_alone(mode: str) -> None:
    q = torch.randn(16, H, E)
    dense = flopwise.count(Varlen(), (q, OFFSETS), mode=mode)
    assert dense.macs == attention_macs(PAIRS) and dense.unsupported == {}  # in dense mode too: never 16² pairs
    causal = flopwise.count(Varlen((-1, 0)), (q, OFFSETS), mode=mode, attention="masked")
    assert causal.macs == attention_macs(CAUSAL)
    assert flopwise.count(Varlen((-1, 0)), (q, OFFSETS), mode=mode).macs == attention_macs(PAIRS)


def test_varlen_sliding_window_within_each_document() -> None:
    q = torch.randn(16, H, E)
    r = flopwise.count(Varlen((1, 0)), (q, OFFSETS), mode="meta", attention="masked")
    # each query keeps itself and the key before it, inside its document: 2·L − 1 pairs for a document of L
    assert r.macs == attention_macs((2 * 5 - 1) + (2 * 3 - 1) + (2 * 8 - 1))


class OffsetsFromWeights(Varlen):
    def __init__(self) -> None:
        super().__init__()
        self.ends = nn.Parameter(torch.tensor([5.0, 8.0, 16.0]))

    def forward(self, q: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        computed = torch.cat([offsets[:1], self.ends.int()])  # values only the weights know
        return super().forward(q, computed)


def test_varlen_offsets_of_unknown_values_are_said_and_counted_as_one_sequence() -> None:
    r = flopwise.count(OffsetsFromWeights(), (torch.randn(16, H, E), OFFSETS), mode="fake")
    assert r.macs == attention_macs(16 * 16)
    assert any("offsets are unknown" in w for w in r.warnings)


class Jagged(nn.Module):
    def forward(self, q: torch.Tensor) -> torch.Tensor:
        return F.scaled_dot_product_attention(q, q, q)


def _jagged() -> torch.Tensor:
    sequences = [torch.randn(n, H, E) for n in LENGTHS]
    return torch.nested.nested_tensor(sequences, layout=torch.jagged).transpose(1, 2)  # (B, H, j, E)


def test_nested_jagged_tensors_through_sdpa() -> None:
    r = flopwise.count(Jagged(), _jagged())
    assert r.macs == attention_macs(PAIRS) and r.unsupported == {}


def test_nested_jagged_tensors_in_fake_mode_count_for_real_and_say_so() -> None:
    r = flopwise.count(Jagged(), _jagged(), mode="fake")
    assert r.macs == attention_macs(PAIRS)
    assert any("jagged nested tensor" in w and "real mode" in w for w in r.warnings)


@pytest.mark.parametrize("mode", ["real", "fake", "meta"])
def test_transformers_flattening_collator_on_a_tiny_llama(mode: str) -> None:
    transformers = pytest.importorskip("transformers")
    config = transformers.LlamaConfig(
        vocab_size=100,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=H,
        num_key_value_heads=1,
        attn_implementation="sdpa",
    )
    model = transformers.LlamaForCausalLM(config).eval()
    documents = [{"input_ids": list(range(1, n + 1))} for n in LENGTHS]
    batch = transformers.DataCollatorWithFlattening(return_tensors="pt")(documents)
    assert batch["position_ids"].tolist() == [[0, 1, 2, 3, 4, 0, 1, 2, 0, 1, 2, 3, 4, 5, 6, 7]]  # restarts per doc
    inputs = {"input_ids": batch["input_ids"], "position_ids": batch["position_ids"], "use_cache": False}
    dense = flopwise.count(model, inputs, mode=mode)
    masked = flopwise.count(model, inputs, mode=mode, attention="masked")
    # SDPA is given a block-diagonal causal mask: its kernel computes all 16² pairs (dense), the mask keeps 57
    width = 32 // H
    assert dense.macs - masked.macs == 2 * (attention_macs(16 * 16, width) - attention_macs(CAUSAL, width))  # 2 layers
    # no mask left unread; in shape-only modes one value is read from the inputs: transformers' check for packing
    read = [] if mode == "real" else [f"{mode} mode: data-dependent values (aten._local_scalar_dense ×1) were "]
    assert [w[: len(r)] for w, r in zip(masked.warnings, read, strict=True)] == read
