"""count(model, inputs, parallel=...) is flopwise.parallel.plan(): each rank's local count under the plan."""

from __future__ import annotations

import pytest
import torch

import flopwise

transformers = pytest.importorskip("transformers")


def test_count_with_a_parallel_plan_counts_each_rank() -> None:
    config = transformers.LlamaConfig(
        vocab_size=128,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=8,
        num_key_value_heads=8,
        attn_implementation="sdpa",
    )
    model = transformers.LlamaForCausalLM(config).eval()
    ids = {"input_ids": torch.randint(0, 128, (1, 16))}
    whole = flopwise.count(model, ids)
    planned = flopwise.count(model, ids, parallel={"tp": 2})
    assert len(planned.ranks) == 2
    # transformers' tp plan splits every contraction in two: the q/k/v/o and MLP projections, attention by heads
    # (8 → 4 per rank) and lm_head by vocabulary; the rest does no MACs
    assert planned.ranks[0].macs == whole.macs // 2 == 1_507_328 // 2
    all_reduces = [c for c in planned.ranks[0].collectives if c["kind"] == "all_reduce"]
    assert all_reduces and all_reduces[0]["mesh_dim"] == "tp"
