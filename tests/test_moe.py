"""Mixture of experts: `aten._grouped_mm` in each of its forms, and a tiny Mixtral counted alike in every mode."""

from __future__ import annotations

import pytest
import torch

import flopwise

transformers = pytest.importorskip("transformers")

A = torch.ops.aten


def counted(fn, *args, **kwargs) -> flopwise.Report:
    with torch.no_grad(), flopwise.counting() as c:
        fn(*args, **kwargs)
    assert c.report.unsupported == {}
    return c.report


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_grouped_mm_forms(device: str) -> None:
    def t(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, device=device)

    # uneven groups (3, 0, 5 rows): only their sum, M = 8, matters
    offs = torch.tensor([3, 3, 8], dtype=torch.int32, device=device)
    r = counted(A._grouped_mm, t(8, 16), t(3, 16, 12), offs)  # 2d × 3d: tokens sorted by expert
    assert r.macs == (3 + 0 + 5) * 16 * 12  # Σ m_g·K·N = M·K·N
    assert r.flops == 2 * r.macs
    out = [c for c in r.calls if c.op == "aten._grouped_mm"][0]
    assert out.cost.bytes_written == 8 * 12 * 4  # (M, N) float32
    r = counted(A._grouped_mm, t(3, 8, 16), t(16, 12), torch.tensor([4, 8, 12], dtype=torch.int32, device=device))
    assert r.macs == 8 * 16 * (4 + 4 + 4)  # 3d × 2d: Σ M·K·n_g = M·K·N
    r = counted(A._grouped_mm, t(8, 16), t(16, 12), torch.tensor([4, 16], dtype=torch.int32, device=device))
    assert r.macs == 8 * (4 + 12) * 12  # 2d × 2d → (2, 8, 12): Σ M·k_g·N = M·K·N (a weight gradient)
    with flopwise.counting(convention="exact") as c:
        A._grouped_mm(t(8, 16), t(16, 12), torch.tensor([4, 16], dtype=torch.int32, device=device))
    assert c.report.flops == 2 * 8 * 16 * 12 - 2 * 8 * 12  # Σ_g M·N·(2·k_g − 1) over G = 2 groups
    r = counted(A._grouped_mm, t(3, 8, 16), t(3, 16, 12))  # 3d × 3d: a batched mm
    assert r.macs == 3 * 8 * 16 * 12  # G·M·K·N


def test_grouped_mm_bf16_on_meta_keeps_torch_meta_kernel() -> None:
    a = torch.empty(8, 16, dtype=torch.bfloat16, device="meta")
    b = torch.empty(3, 16, 8, dtype=torch.bfloat16, device="meta")
    with flopwise.counting() as c:
        out = A._grouped_mm(a, b, torch.empty(3, dtype=torch.int32, device="meta"))
    assert out.shape == (8, 8) and out.dtype == torch.bfloat16
    assert c.report.macs == 8 * 16 * 8  # M·K·N


def tiny_mixtral(experts: str) -> torch.nn.Module:
    config = transformers.MixtralConfig(
        hidden_size=64,
        intermediate_size=128,
        num_local_experts=8,
        num_experts_per_tok=2,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=1000,
    )
    config._experts_implementation = experts
    torch.manual_seed(0)
    return transformers.MixtralForCausalLM(config).eval()


# T tokens, hidden H, heads n_h of size d (n_kv key/value heads), E experts, top-k, expert width I, vocabulary V
T, H, N_H, D, N_KV, E, TOP_K, I, V, LAYERS = 8, 64, 4, 16, 2, 8, 2, 128, 1000, 2
EXPERTS_PER_LAYER = 3 * T * TOP_K * H * I  # every token's k experts: gate and up (H→2I), down (I→H)
PER_LAYER = (
    2 * T * H * (N_H * D)  # q and o projections
    + 2 * T * H * (N_KV * D)  # k and v projections
    + 2 * N_H * T * T * D  # scores QKᵀ and the weighted sum of values (dense)
    + T * H * E  # router
    + EXPERTS_PER_LAYER
)
MIXTRAL_MACS = LAYERS * PER_LAYER + T * H * V  # + lm_head


def test_closed_form_is_the_hand_count() -> None:
    # one layer's products written out with the sizes as numbers: T = 8 tokens, H = 64 (4 heads of 16, 2 kv heads),
    # 8 experts of width 128, each token routed to 2; vocabulary 1,000
    q = o = 8 * 64 * 64  # T·H·(heads·d): 32,768 each
    k = v = 8 * 64 * 32  # T·H·(kv heads·d): 16,384 each
    scores = values = 4 * 8 * 8 * 16  # heads·T·T·d (dense): 4,096 each
    router = 8 * 64 * 8  # T·H·E: 4,096
    experts = 8 * 2 * (64 * 128 + 64 * 128 + 128 * 64)  # T·k tokens through gate, up (H→I) and down (I→H): 393,216
    layer = q + k + v + o + scores + values + router + experts
    assert layer == 503_808
    assert MIXTRAL_MACS == 2 * layer + 8 * 64 * 1000 == 1_519_616  # 2 layers + lm_head T·H·V


@pytest.mark.parametrize("mode", ["real", "fake", "meta"])
def test_tiny_mixtral_grouped_mm_is_exact_in_every_mode(mode: str) -> None:
    ids = torch.randint(0, V, (1, T))
    r = flopwise.count(tiny_mixtral("grouped_mm"), {"input_ids": ids}, mode=mode)
    assert r.unsupported == {}
    assert r.macs == MIXTRAL_MACS
    assert r["model.layers.0.mlp.experts"].macs == EXPERTS_PER_LAYER  # 3·T·k·H·I = 393,216
    assert r.by_operator()["aten._grouped_mm"].macs == LAYERS * EXPERTS_PER_LAYER


@pytest.mark.parametrize("experts", ["eager", "batched_mm"])
def test_other_expert_kernels_count_the_same(experts: str) -> None:
    r = flopwise.count(tiny_mixtral(experts), {"input_ids": torch.randint(0, V, (1, T))})
    assert r.unsupported == {}
    assert r.macs == MIXTRAL_MACS


def test_the_command_line_counts_the_tiny_mixtral_exactly(tmp_path, capsys) -> None:
    """`flopwise hf:mixtral.json` (issue 10 item 1: it exited 2 on the meta kernel of `_grouped_mm`)."""
    import json

    from flopwise.cli import main

    config = tiny_mixtral("grouped_mm").config
    config.architectures = ["MixtralForCausalLM"]
    config.to_json_file(tmp_path / "mixtral.json")
    assert main([f"hf:{tmp_path / 'mixtral.json'}", "--tokens", f"1x{T}", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["unsupported"] == {}
    assert doc["total"]["macs"] == MIXTRAL_MACS  # the closed form above: 1,519,616
    assert doc["operators"]["aten._grouped_mm"]["macs"] == LAYERS * EXPERTS_PER_LAYER  # the experts' kernel
