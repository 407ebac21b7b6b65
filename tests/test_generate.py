"""count_generate: prefill and decode steps of transformers' generate(), real and shape-only, derived by hand."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch
import transformers

import flopwise
from flopwise.cli import main
from flopwise.render.data import report_to_dict

D, LAYERS, HEADS, VOCAB, PROMPT, NEW = 128, 2, 4, 1000, 8, 4
LINEAR = 12 * D * D  # per token and layer: qkv 3d², output d², MLP up 4d² and down 4d²
KV_PER_TOKEN = 2 * LAYERS * D * 4  # keys and values of every layer, float32


def gpt2(meta: bool = False) -> Any:
    config = transformers.GPT2Config(
        n_layer=LAYERS, n_embd=D, n_head=HEADS, vocab_size=VOCAB, n_positions=64, bos_token_id=0, eos_token_id=0
    )
    torch.manual_seed(0)
    with torch.device("meta" if meta else "cpu"):
        return transformers.GPT2LMHeadModel(config).eval()


def hand_macs(tokens: int, context: int, causal_pairs: int | None = None) -> int:
    """One forward: linears on every token, attention over `context` keys (QKᵀ and ·V: 2·pairs·d), lm_head on the
    last row only (generate asks for `logits_to_keep=1`)."""
    pairs = tokens * context if causal_pairs is None else causal_pairs
    return LAYERS * (tokens * LINEAR + 2 * pairs * D) + D * VOCAB


@pytest.fixture(scope="module")
def real() -> Any:
    ids = torch.randint(0, VOCAB, (1, PROMPT))
    return flopwise.count_generate(gpt2(), ids, max_new_tokens=NEW, do_sample=False, pad_token_id=0)


def test_prefill_and_each_decode_step_by_hand(real: Any) -> None:
    assert [s.phase for s in real.steps] == ["prefill"] + ["decode"] * (NEW - 1)  # N new tokens: N forwards
    assert real.steps[0].cost.macs == hand_macs(PROMPT, PROMPT) == 3_306_496
    for i, step in enumerate(real.steps[1:], start=1):
        assert step.tokens == 1 and step.context == PROMPT + i
        assert step.cost.macs == hand_macs(1, PROMPT + i)  # one query over the cache of 8 + i tokens
    assert real.steps[1].cost.macs == 2 * (LINEAR + 2 * 9 * D) + D * VOCAB == 525_824
    assert real.phases["prefill"] == real.steps[0].cost
    assert real.phases["decode"].macs == sum(hand_macs(1, PROMPT + i) for i in range(1, NEW))
    assert real.macs == real.phases["prefill"].macs + real.phases["decode"].macs  # the loop does no MACs
    assert real.phases["prefill"] + real.phases["decode"] + real.phases["sampling"] == real.total
    assert report_to_dict(real)["phases"]["decode"]["macs"] == real.phases["decode"].macs


# GPT-2's parameters by hand (D = 128, 2 layers, 64 positions, vocabulary 1,000; lm_head tied to wte, once):
# a layer has two LayerNorms (2·2D), c_attn D·3D + 3D, attention c_proj D·D + D, MLP c_fc D·4D + 4D and c_proj
# 4D·D + D: 12·D² + 13·D = 196,608 + 1,664 = 198,272
GPT2_PARAMS = VOCAB * D + 64 * D + LAYERS * (12 * D * D + 13 * D) + 2 * D  # wte, wpe, layers, ln_f: 532,992


def test_kv_cache_and_bytes_per_step(real: Any) -> None:
    assert GPT2_PARAMS == 128_000 + 8_192 + 2 * 198_272 + 256 == 532_992
    weights = GPT2_PARAMS * 4  # float32: 2,131,968 bytes
    for i, step in enumerate(real.steps):
        context = PROMPT + i
        assert step.kv_cache_bytes == step.kv_read_bytes == context * KV_PER_TOKEN  # 2048 bytes per token
        assert step.kv_written_bytes == (PROMPT if i == 0 else 1) * KV_PER_TOKEN
        assert step.weight_bytes == weights == 2_131_968
    assert real.steps[1].intensity < real.steps[0].intensity  # decode moves the weights for one token


def test_intensity_is_flops_per_byte_moved() -> None:
    # under convention="contractions" a step's FLOPs are 2·MACs, known by hand; intensity divides them by the
    # bytes its ops read and write
    ids = torch.zeros(1, PROMPT, dtype=torch.long)
    r = flopwise.count_generate(gpt2(meta=True), ids, max_new_tokens=2, convention="contractions")
    prefill, decode = r.steps
    assert prefill.cost.flops == 2 * hand_macs(PROMPT, PROMPT) == 2 * 3_306_496
    assert decode.cost.flops == 2 * hand_macs(1, PROMPT + 1) == 2 * 525_824
    assert prefill.intensity == 2 * 3_306_496 / (prefill.cost.bytes_read + prefill.cost.bytes_written)
    assert decode.intensity == 2 * 525_824 / (decode.cost.bytes_read + decode.cost.bytes_written)
    # decode reads at least every weight of the 2·12·D² linears and the D·V lm_head once, in float32
    assert decode.cost.bytes_read >= (LAYERS * 12 * D * D + D * VOCAB) * 4


def test_shape_only_path_equals_the_real_path(real: Any) -> None:
    fake = flopwise.count_generate(gpt2(meta=True), torch.zeros(1, PROMPT, dtype=torch.long), max_new_tokens=NEW)
    assert [s.cost for s in fake.steps] == [s.cost for s in real.steps]  # MACs, FLOPs and bytes alike
    assert [s.kv_cache_bytes for s in fake.steps] == [s.kv_cache_bytes for s in real.steps]
    assert fake.phases["prefill"] == real.phases["prefill"] and fake.phases["decode"] == real.phases["decode"]


def test_masked_prefill_counts_the_causal_pairs() -> None:
    ids = torch.zeros(1, PROMPT, dtype=torch.long)
    r = flopwise.count_generate(gpt2(meta=True), ids, max_new_tokens=2, attention="masked")
    assert r.steps[0].cost.macs == hand_macs(PROMPT, PROMPT, causal_pairs=PROMPT * (PROMPT + 1) // 2)
    assert r.steps[1].cost.macs == hand_macs(1, PROMPT + 1)  # one query sees the whole cache: nothing masked


def test_command_line_generate(tmp_path: Any, capsys: Any) -> None:
    config = tmp_path / "config.json"
    gpt2().config.to_json_file(config)
    code = main([f"hf:{config}", "--tokens", f"1x{PROMPT}", "--generate", str(NEW), "--device", "H100-SXM"])
    assert code == 0
    out = capsys.readouterr().out
    assert f"{hand_macs(PROMPT, PROMPT):,}" in out  # prefill
    assert f"{hand_macs(1, PROMPT + 1):,}" in out and f"{hand_macs(1, PROMPT + NEW - 1):,}" in out  # first, last
    assert "bound" in out and "tokens/s" in out


def test_command_line_generate_json(tmp_path: Any, capsys: Any) -> None:
    config = tmp_path / "config.json"
    gpt2().config.to_json_file(config)
    assert main([f"hf:{config}", "--tokens", f"1x{PROMPT}", "--generate", "2", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [s["macs"] for s in data["steps"]] == [hand_macs(PROMPT, PROMPT), hand_macs(1, PROMPT + 1)]
    assert data["steps"][1]["kv_cache_bytes"] == (PROMPT + 1) * KV_PER_TOKEN
    assert data["phases"]["decode"]["macs"] == hand_macs(1, PROMPT + 1)


def test_assisted_generation_splits_draft_and_target() -> None:
    def llama(layers: int) -> torch.nn.Module:
        config = transformers.LlamaConfig(
            vocab_size=100,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=layers,
            num_attention_heads=2,
            num_key_value_heads=1,
            attn_implementation="sdpa",
            bos_token_id=1,
            eos_token_id=2,
            pad_token_id=0,
        )
        return transformers.LlamaForCausalLM(config).eval()

    target, draft = llama(2), llama(1)
    ids = torch.randint(3, 100, (1, 6))
    r = flopwise.count_generate(target, ids, max_new_tokens=10, assistant_model=draft, do_sample=False)
    with torch.no_grad():
        out = target.generate(ids, max_new_tokens=10, assistant_model=draft, do_sample=False)
    generated = out.shape[-1] - ids.shape[-1]
    verifications = len(r.steps)
    # each verification keeps its accepted draft tokens and adds one token of the target's own
    assert sum(r.accepted) + verifications == generated
    assert all(0 <= a <= 10 for a in r.accepted) and len(r.accepted) == verifications
    assert r.draft_steps and r.phases["draft"] == sum((s.cost for s in r.draft_steps), flopwise.Cost(0, 0, 0, 0))
    total = r.phases["prefill"] + r.phases["decode"] + r.phases["draft"] + r.phases["sampling"]
    assert total == r.total  # the phases add up to the run
    with pytest.raises(ValueError, match="mode='real'"):
        flopwise.count_generate(target, ids, max_new_tokens=4, assistant_model=draft, mode="fake")


def test_a_draft_equal_to_the_target_has_every_token_accepted() -> None:
    import copy

    config = transformers.LlamaConfig(
        vocab_size=100,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        attn_implementation="sdpa",
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    target = transformers.LlamaForCausalLM(config).eval()
    draft = copy.deepcopy(target)  # greedy: it proposes exactly what the target would pick
    ids = torch.randint(3, 100, (1, 6))
    r = flopwise.count_generate(target, ids, max_new_tokens=12, assistant_model=draft, do_sample=False)
    assert sum(r.accepted) + len(r.steps) == 12  # every new token: accepted drafts and one target token a step
    assert len(r.steps) < 12 and sum(r.accepted) > 0  # fewer target forwards than tokens: drafts were accepted


@pytest.mark.parametrize("prompt", [5, 1])  # a prompt of one token: the first decode step is counted, not traced
def test_decode_steps_from_the_traced_cache_length_equal_counting_each_step(
    prompt: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flopwise.llm.decode_trace import DecodeTrace

    synthesized: list[int] = []  # the cache lengths whose steps came from the trace
    step_at = DecodeTrace.step_at
    monkeypatch.setattr(DecodeTrace, "step_at", lambda self, c: synthesized.append(c) or step_at(self, c))
    config = transformers.LlamaConfig(
        vocab_size=100,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        attn_implementation="sdpa",
    )
    real_model = transformers.LlamaForCausalLM(config).eval()
    with torch.device("meta"):
        meta_model = transformers.LlamaForCausalLM(config).eval()
    ids = torch.randint(3, 100, (2, prompt))
    made: list[tuple[int, int]] = []
    traced = flopwise.count_generate(meta_model, ids, max_new_tokens=9, progress=lambda *done: made.append(done))
    assert made == [(k, 9) for k in range(1, 10)]  # told after each of the 9 forwards
    first = 1 if prompt > 1 else 2  # decode step k attends to prompt + k − 1 cached tokens
    assert synthesized == [prompt + k - 1 for k in range(first, 9)]  # the trace made them, not a fallback
    real = flopwise.count_generate(real_model, ids, max_new_tokens=9, do_sample=False, min_new_tokens=9)
    assert len(traced.steps) == len(real.steps) == 9
    assert [s.cost for s in traced.steps] == [s.cost for s in real.steps]  # every step, sampled or not
    assert [(s.context, s.kv_cache_bytes) for s in traced.steps] == [(s.context, s.kv_cache_bytes) for s in real.steps]
    # a decode step over c cached tokens: per layer and head, one query against c + 1 keys of width 8, twice (QKᵀ, PV)
    attention = [s.cost.macs - traced.steps[2].cost.macs for s in traced.steps[2:]]
    assert attention == [2 * 4 * 2 * 8 * k * 2 for k in range(7)]  # batch 2, 4 heads, 2 layers: +1 key per step
