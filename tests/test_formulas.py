"""report.vs_formulas(): a transformer train step beside 6ND (Chinchilla, Kaplan), PaLM and Megatron, each
difference term by term; docs/training.md shows it for GPT-2 small and a TinyLlama-shaped Llama."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import flopwise

transformers = pytest.importorskip("transformers")

DOCS = Path(__file__).parent.parent / "docs" / "training.md"
DOC_MODELS = {
    "GPT-2 small, 1×1024 tokens": (lambda: transformers.GPT2Config(), (1, 1024)),
    "TinyLlama-1.1B shape, 1×2048 tokens": (
        lambda: transformers.LlamaConfig(
            num_hidden_layers=22,
            hidden_size=2048,
            num_attention_heads=32,
            num_key_value_heads=4,
            intermediate_size=5632,
            vocab_size=32000,
        ),
        (1, 2048),
    ),
}


def count(config: object, batch: int, seq: int) -> flopwise.Report:
    config._attn_implementation = "eager"  # type: ignore[attr-defined]
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(config)
        ids = torch.zeros(batch, seq, dtype=torch.long)
    return flopwise.count(model, {"input_ids": ids, "labels": ids}, step="train")


def comparison(name: str) -> str:
    build, (batch, seq) = DOC_MODELS[name]
    return str(count(build(), batch, seq).vs_formulas())


def test_tiny_gpt2_by_hand() -> None:
    L, d, H, V, B, T = 2, 64, 4, 500, 2, 32
    config = transformers.GPT2Config(n_layer=L, n_embd=d, n_head=H, vocab_size=V, n_positions=T)
    c = count(config, B, T).vs_formulas()
    D = B * T
    # the count: 6·D·W + 12·L·d·T·D, W = 12·L·d² (QKV 3d², out d², MLP 8d²) + the tied head d·V
    W = 12 * L * d * d + d * V
    assert c.count == 6 * D * W + 12 * L * d * T * D
    assert c["Megatron"].flops == c.count  # GPT-2 is the model Megatron's formula describes
    N = W + T * d + (L * (2 * d + 3 * d + d + 2 * d + 4 * d + d) + 2 * d)  # + wpe + biases and norm scales
    assert c["Chinchilla"].flops == 6 * N * D
    assert c["PaLM"].flops == 6 * N * D + 12 * L * H * (d // H) * T * D
    for row in c.rows:  # every difference is its terms, exactly
        assert sum(v for _, v in row.terms) == row.flops - c.count
    terms = dict(c["Kaplan"].terms)
    assert terms["LM head tied to the excluded embedding (−6·D·V·d)"] == -6 * D * V * d


def test_llama_differences() -> None:
    L, d, H, KV, F, V, B, T = 2, 64, 4, 2, 160, 500, 2, 32
    config = transformers.LlamaConfig(
        num_hidden_layers=L,
        hidden_size=d,
        num_attention_heads=H,
        num_key_value_heads=KV,
        intermediate_size=F,
        vocab_size=V,
    )
    c = count(config, B, T).vs_formulas()
    D, Q = B * T, d // H
    W = L * (d * d + 2 * d * KV * Q + d * d + 3 * d * F) + d * V  # q, k, v (GQA), o, SwiGLU; untied head
    assert c.count == 6 * D * W + 12 * L * H * Q * T * D
    megatron = dict(c["Megatron"].terms)
    assert megatron["matmul weights assumed 12·L·d² + d·V, the model has W (6·D·(12·L·d² + d·V − W))"] == (
        6 * D * (12 * L * d * d + d * V - W)
    )
    assert dict(c["PaLM"].terms)["embedding lookups counted as matmuls (6·D·(embeddings − tied head))"] == 6 * D * V * d
    for row in c.rows:
        assert sum(v for _, v in row.terms) == row.flops - c.count


def test_vs_formulas_needs_a_transformer_train_step() -> None:
    report = flopwise.count(torch.nn.Linear(3, 3), torch.randn(2, 3), step="train")
    with pytest.raises(ValueError, match="needs a transformers model counted with step='train'"):
        report.vs_formulas()


@pytest.mark.parametrize("name", DOC_MODELS)
def test_docs_page_shows_what_vs_formulas_prints(name: str) -> None:
    text = DOCS.read_text()
    block = re.search(rf"### {re.escape(name)}\n\n```\n(.*?)```", text, re.S)
    assert block is not None, f"docs/training.md has no block for {name}"
    assert block.group(1).rstrip("\n") == comparison(name)


def test_flash_attention_reads_is_causal_in_each_overload() -> None:
    from flopwise.formulas.attention import flash
    from flopwise.formulas.registry import specs

    def masked_macs(*args: object) -> int | None:  # what attention="masked" counts; None when no mask applies
        work = flash(*args)
        return work.masked_macs.value if work.masked_macs is not None else None

    q = specs(torch.empty(1, 2, 8, 16, device="meta"))  # B·H = 2 heads, L = S = 8, E = 16
    assert flash((q,), q, q, q, 0.0, True).macs.value == 2 * (8 * 8 * 16 + 8 * 8 * 16)  # dense: all 64 pairs
    causal = 2 * (36 * 16 + 36 * 16)  # the 8·9/2 = 36 pairs on or below the diagonal, QKᵀ and PV
    assert masked_macs((q,), q, q, q, 0.0, True) == causal
    assert masked_macs((q,), q, q, q, 0.0, False) is None
    # .quantized: q_descale, k_descale, v_descale come first; a descale given is not is_causal
    assert masked_macs((q,), q, q, q, q, q, q, 0.0, False) is None
    assert masked_macs((q,), q, q, q, None, None, None, 0.0, True) == causal


def test_efficient_attention_causal_masks_aligned_top_left_and_bottom_right() -> None:
    from flopwise.formulas.attention import efficient_forward
    from flopwise.formulas.registry import specs

    q = specs(torch.empty(1, 3, 1, 8, device="meta"))  # (B, L, H, E): 3 queries, 1 head, width 8
    k = specs(torch.empty(1, 5, 1, 8, device="meta"))  # 5 keys

    def masked_macs(mask_type: int) -> int | None:
        work = efficient_forward((q,), q, k, k, None, None, None, None, None, 0.0, mask_type)  # bias, cu_seqlens, max
        return work.masked_macs.value if work.masked_macs is not None else None

    assert masked_macs(0) is None
    assert masked_macs(1) == (1 + 2 + 3) * (8 + 8)  # top-left: query i sees keys 0..i
    assert masked_macs(2) == (3 + 4 + 5) * (8 + 8)  # bottom-right: query i sees keys 0..i + S − L
