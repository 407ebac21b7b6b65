"""Issue 10 item 11: the transformers families that crashed inside a meta count (`.item()` on meta tensors,
`nonzero`, CPU tensors made in forward) count as `flopwise hf:config.json` counts them, with no crash and no
unsupported op; where the path depends on the weights, the count runs for real on random weights and
`report.warnings` says so. Tiny configs (hidden 16, one or two layers), built on the meta device, no download."""

from __future__ import annotations

import warnings
from typing import Any

import pytest

from flopwise.cli.common import count_loaded
from flopwise.cli.inputs import make_inputs
from flopwise.cli.load import load
from flopwise.counter import count

transformers = pytest.importorskip("transformers")
D, V, F = 16, 100, 32  # hidden size, vocabulary, feed-forward width of every config below
SEQ2SEQ = {
    "encoder_layers": 1,
    "decoder_layers": 1,
    "encoder_attention_heads": 2,
    "decoder_attention_heads": 2,
    "encoder_ffn_dim": F,
    "decoder_ffn_dim": F,
    "max_position_embeddings": 64,
}  # hf: gives them 64 tokens
ENCODER = {"hidden_size": D, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": F}  # 128 tokens


def configs() -> dict[str, Any]:
    t = transformers
    moe = {"num_experts": 4, "expert_capacity": 4, "encoder_sparse_step": 2, "decoder_sparse_step": 2}
    return {
        "bart": t.BartConfig(vocab_size=V, d_model=D, **SEQ2SEQ),
        "big_bird": t.BigBirdConfig(
            vocab_size=V, max_position_embeddings=256, block_size=4, num_random_blocks=1, **ENCODER
        ),  # 128 tokens ≥ (5 + 2·1)·4: the block-sparse path
        "blenderbot": t.BlenderbotConfig(vocab_size=V, d_model=D, **SEQ2SEQ),
        "deberta": t.DebertaConfig(vocab_size=V, **ENCODER),
        "convbert": t.ConvBertConfig(vocab_size=V, embedding_size=D, **ENCODER),
        "dpr": t.DPRConfig(vocab_size=V, **ENCODER),
        "nllb_moe": t.NllbMoeConfig(
            vocab_size=V, d_model=D, **{**SEQ2SEQ, "encoder_layers": 2, "decoder_layers": 2}, **moe
        ),
        "switch_transformers": t.SwitchTransformersConfig(
            vocab_size=V, d_model=D, d_kv=8, d_ff=F, num_layers=2, num_decoder_layers=2, num_heads=2, **moe
        ),
        "imagegpt": t.ImageGPTConfig(vocab_size=V, n_positions=64, n_embd=D, n_layer=1, n_head=2),
        "fastspeech2_conformer": t.FastSpeech2ConformerConfig(
            vocab_size=V,
            hidden_size=D,
            encoder_layers=1,
            decoder_layers=1,
            encoder_num_attention_heads=2,
            decoder_num_attention_heads=2,
            encoder_linear_units=F,
            decoder_linear_units=F,
            num_mel_bins=8,
        ),
    }


# one attention projection per family: tokens · in · out, with the token count hf: gives each (64 or 128)
PROJECTION = {
    "bart": ("encoder.layers.0.self_attn.q_proj", 64 * D * D),
    "big_bird": ("encoder.layer.0.attention.self.query", 128 * D * D),
    "blenderbot": ("encoder.layers.0.self_attn.q_proj", 64 * D * D),
    "deberta": ("encoder.layer.0.attention.self.in_proj", 128 * D * 3 * D),  # q, k and v in one Linear
    "convbert": ("encoder.layer.0.attention.self.query", 128 * D * (D // 2)),  # head_ratio 2: half the heads
    "dpr": ("question_encoder.bert_model.encoder.layer.0.attention.self.query", 128 * D * D),
    "nllb_moe": ("encoder.layers.0.self_attn.q_proj", 64 * D * D),
    "switch_transformers": ("encoder.block.0.layer.0.SelfAttention.q", 128 * D * (2 * 8)),  # 2 heads of d_kv 8
    "imagegpt": ("h.0.attn.c_attn", 64 * D * 3 * D),  # GPT-2's Conv1D: q, k and v at once
    "fastspeech2_conformer": ("encoder.conformer_layers.0.self_attn.linear_q", 128 * D * D),
}
# the router's choice (MoE) or predicted durations (FastSpeech2) depend on the weights, which meta has not
NEEDS_WEIGHTS = {
    "nllb_moe": "Module.to() in forward in module 'encoder.layers.1.ffn.router'",
    "switch_transformers": "aten.nonzero in module 'encoder.block.1.layer.1.mlp.experts'",
    "fastspeech2_conformer": "aten._local_scalar_dense in module '(root)'",
}


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("families")
    for name, config in configs().items():
        config.save_pretrained(root / name)
    return {name: str(root / name) for name in configs()}


@pytest.mark.parametrize("family", list(PROJECTION))
def test_family_counts_on_meta_and_says_what_it_assumed(family: str, folders: dict[str, str]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the models' own notices (block sparse on short inputs, …)
        loaded = load(f"hf:{folders[family]}")
        said: list[str] = []
        r = count_loaded(loaded, "meta", "default", said.append)
    assert r.unsupported == {}
    name, macs = PROJECTION[family]
    assert r[name].macs == macs
    fallback = [w for w in r.warnings if "counting again in real mode" in w]
    if family in NEEDS_WEIGHTS:
        assert len(fallback) == 1 and NEEDS_WEIGHTS[family] in fallback[0]
        assert fallback[0].endswith("(built again with random weights)")
        assert sum("counting again in real mode" in line for line in said) == 1  # on stderr once, too
    else:
        assert fallback == []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            real = count(loaded.rebuild(), make_inputs(loaded.inputs, real=True))  # random weights on the CPU
        # MACs only: on fake tensors transformers takes its tracing path (`is_tracing()`), building the attention
        # mask that a real run skips after checking its values (`mask.all()`, `pad_id in ids`): a few elementwise
        # FLOPs and bytes apart (BART: 12,288 of 1.6 M FLOPs), its choice, which flopwise cannot patch
        assert r.macs == real.macs
