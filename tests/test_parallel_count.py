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


def test_the_command_line_plans_a_config(tmp_path: object) -> None:
    import json
    from pathlib import Path

    from flopwise.cli import main

    folder = Path(str(tmp_path))
    config = transformers.LlamaConfig(
        vocab_size=128,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=8,
        num_key_value_heads=8,
        max_position_embeddings=64,
    )
    config.to_json_file(folder / "config.json")
    out = folder / "plan.json"
    code = main(
        [
            f"hf:{folder / 'config.json'}",
            "--tokens",
            "1x16",
            "--parallel",
            "tp=2",
            "--format",
            "json",
            "-o",
            str(out),
            "-q",
        ]
    )
    assert code == 0
    plan = json.loads(out.read_text())
    # LlamaModel (the config names no architecture), 16 tokens, 2 layers: q, k, v, o 4·16·64·64, the MLP
    # 3·16·64·128, attention over 8 heads 8·16·16·(8 + 8)
    one_device = 2 * (4 * 16 * 64 * 64 + 3 * 16 * 64 * 128 + 8 * 16 * 16 * (8 + 8))
    assert plan["schema"] == "flopwise-parallel/1" and plan["macs"] == one_device == 1_376_256
    assert plan["ranks"][0]["ranks"] == [0, 1] and plan["ranks"][0]["macs"] == one_device // 2  # each rank half
    assert main([f"hf:{folder / 'config.json'}", "--parallel", "tp=two", "-q"]) == 2  # a usage error
