"""report.moe: experts, tokens routed to each (observed in real mode, balanced top-k estimate otherwise), params."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import transformers

import flopwise
from flopwise.render.data import report_to_dict

D, E, K, T = 32, 4, 2, 6  # hidden size, routed experts, experts per token, tokens


def mixtral() -> Any:
    config = transformers.MixtralConfig(
        vocab_size=100,
        hidden_size=D,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        num_local_experts=E,
        num_experts_per_tok=K,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    return transformers.MixtralForCausalLM(config).eval()


def test_mixtral_with_known_routing(monkeypatch: pytest.MonkeyPatch) -> None:
    model = mixtral()
    router = model.model.layers[0].mlp.gate

    def route(hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        t = torch.arange(hidden.shape[0])
        index = torch.stack([t % E, (t + 1) % E], dim=-1)  # token t → experts t mod 4 and t+1 mod 4
        return torch.zeros(hidden.shape[0], E), torch.full((hidden.shape[0], K), 0.5), index

    monkeypatch.setattr(router, "forward", route)
    r = flopwise.count(model, {"input_ids": torch.randint(0, 100, (1, T))})
    (layer,) = r.moe
    assert layer.name == "model.layers.0.mlp" and (layer.experts, layer.top_k, layer.tokens) == (E, K, T)
    # expert 0: tokens 0, 4 (first choice), 3 (second); 1: 1, 5 and 0, 4; 2: 2 and 1, 5; 3: 3 and 2
    assert layer.tokens_per_expert == (3, 4, 3, 2) and not layer.estimate
    assert layer.params_per_expert == 3 * 64 * D  # gate, up and down projections of one expert
    assert layer.shared_params == E * D  # the router
    assert layer.active_params_per_token == E * D + K * 3 * 64 * D
    assert layer.total_params == E * D + E * 3 * 64 * D
    data = report_to_dict(r)["moe"][0]  # in the JSON too
    assert data["tokens_per_expert"] == [3, 4, 3, 2] and data["active_params_per_token"] == E * D + K * 3 * 64 * D
    experts = r["model.layers.0.mlp.experts"]
    assert experts.cost.macs == T * K * 3 * 64 * D  # what ran: 12 token–expert pairs of 3·F·D MACs


@pytest.mark.parametrize("mode", ["fake", "meta"])
def test_shape_only_routing_is_a_labelled_balanced_estimate(mode: str) -> None:
    r = flopwise.count(mixtral(), {"input_ids": torch.zeros(1, T, dtype=torch.long)}, mode=mode)
    (layer,) = r.moe
    assert layer.estimate and "balanced top-k" in layer.assumption
    assert layer.tokens_per_expert == (T * K / E,) * E  # 6 tokens · 2 experts / 4 = 3 each
    said = [w for w in r.warnings if "balanced top-k" in w]  # the assumption where every view shows it
    assert len(said) == 1 and layer.name in said[0]
    assert said[0] in report_to_dict(r)["warnings"] and said[0] in str(r)


def test_qwen_moe_shared_expert_is_active_for_every_token() -> None:
    config = transformers.Qwen2MoeConfig(
        vocab_size=100,
        hidden_size=D,
        intermediate_size=64,
        moe_intermediate_size=16,
        shared_expert_intermediate_size=48,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        num_experts=E,
        num_experts_per_tok=K,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    r = flopwise.count(transformers.Qwen2MoeForCausalLM(config).eval(), {"input_ids": torch.randint(0, 100, (1, T))})
    (layer,) = r.moe
    assert sum(layer.tokens_per_expert) == T * K and not layer.estimate  # observed routing
    assert layer.params_per_expert == 3 * 16 * D
    assert layer.shared_params == E * D + 3 * 48 * D + D  # router, shared expert, its sigmoid gate
    assert layer.active_params_per_token == layer.shared_params + K * 3 * 16 * D


def test_deepseek_style_shared_experts_on_meta() -> None:
    config = transformers.DeepseekV3Config(
        vocab_size=100,
        hidden_size=D,
        intermediate_size=64,
        moe_intermediate_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        n_routed_experts=E,
        n_shared_experts=1,
        num_experts_per_tok=K,
        first_k_dense_replace=0,
        q_lora_rank=16,
        kv_lora_rank=16,
        qk_rope_head_dim=8,
        v_head_dim=8,
        qk_nope_head_dim=8,
        n_group=1,
        topk_group=1,
        max_position_embeddings=64,
    )
    with torch.device("meta"):
        model = transformers.DeepseekV3ForCausalLM(config).eval()
    r = flopwise.count(model, {"input_ids": torch.zeros(1, T, dtype=torch.long)})
    (layer,) = r.moe
    assert layer.estimate and layer.tokens_per_expert == (3.0,) * E
    assert any("balanced top-k" in w for w in r.warnings)  # on the meta device: the assumption named
    assert layer.shared_params == E * D + 3 * 16 * D  # router, one shared expert of width 16
    assert layer.total_params == layer.shared_params + E * 3 * 16 * D


class HashRouted(torch.nn.Module):
    """Routing read from the token ids (DeepSeek-V4's hash layers): its values are known in every mode."""

    def __init__(self) -> None:
        super().__init__()
        self.experts = Experts()

    def forward(self, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        return self.experts(x, index, torch.full(index.shape, 0.5))


class Experts(torch.nn.Module):
    num_experts = E

    def __init__(self) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(D, D)

    def forward(self, x: torch.Tensor, index: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


@pytest.mark.parametrize("mode", ["real", "fake", "meta"])
def test_routing_known_from_the_inputs_is_observed_in_every_mode(mode: str) -> None:
    index = torch.tensor([[0, 1], [1, 2], [0, 3], [1, 1], [2, 0], [1, 3]])  # T=6 tokens, K=2 experts each
    r = flopwise.count(HashRouted(), (torch.randn(T, D), index), mode=mode)
    (layer,) = r.moe
    assert layer.tokens_per_expert == (3, 5, 2, 2) and not layer.estimate  # the 12 picks above, counted by hand
