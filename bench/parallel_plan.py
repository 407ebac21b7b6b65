"""Plan Llama-70B on 1,024 ranks: dp=16 (FSDP2), pp=8 (1F1B, 8 micro-batches), tp=8, sequences of 4,096 tokens.

    .venv/bin/python bench/parallel_plan.py [--step train|forward] [--batch 128] [--seq 4096] [--single] [--svg F]

The model is transformers' LlamaForCausalLM built from a Llama-3-70B-shaped LlamaConfig on the meta device (no
weights), float32 parameters computed in bfloat16 (FSDP2's MixedPrecisionPolicy, gradients reduced in float32).
The global batch is 128 sequences: each of the 16 data-parallel ranks gets 8, one per micro-batch. Printed: the
time and peak resident memory of planning, the plan's table, its step estimate on H100s (NVLink inside a node,
InfiniBand NDR between nodes), and its figures beside Megatron-LM's formulas (Narayanan et al. 2021,
Korthikanti et al. 2022). `--single` also counts the whole step on one device and checks that the ranks' MACs add
up to it exactly (slower).
"""

from __future__ import annotations

import argparse
import resource
import time

import torch

LLAMA_70B = {
    "vocab_size": 128_256,
    "hidden_size": 8_192,
    "intermediate_size": 28_672,
    "num_hidden_layers": 80,
    "num_attention_heads": 64,
    "num_key_value_heads": 8,
    "max_position_embeddings": 8_192,
    "rope_theta": 500_000.0,
}


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # Linux reports KiB


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--step", default="train", choices=("train", "forward"))
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--seq", type=int, default=4_096)
    parser.add_argument("--single", action="store_true")
    parser.add_argument("--svg", help="write the estimate's bars and pipeline timeline to this SVG file")
    a = parser.parse_args()

    from transformers import LlamaConfig, LlamaForCausalLM

    import flopwise
    from flopwise.parallel import plan

    started = time.perf_counter()
    config = LlamaConfig(**LLAMA_70B)
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    built = time.perf_counter() - started
    ids = torch.randint(0, config.vocab_size, (a.batch, a.seq))
    inputs = {"input_ids": ids, "labels": ids}
    started = time.perf_counter()
    p = plan(model, inputs, {"dp": 16, "pp": 8, "tp": 8}, step=a.step, mixed_precision="bf16")
    planned = time.perf_counter() - started
    print(
        f"built on meta in {built:.1f} s; planned {p.world:,} ranks in {planned:.1f} s "
        f"({p.counted} rank programs counted); peak RSS {peak_rss_gb():.2f} GB"
    )
    print(p)
    e = p.estimate(device="H100-SXM", link="NVLink4", inter="InfiniBand-NDR")
    print(e)
    if a.svg:
        with open(a.svg, "w", encoding="utf-8") as f:
            f.write(e.to_svg())
    megatron(p, e, config, a.batch, a.seq)
    if a.single:
        started = time.perf_counter()
        one = (
            flopwise.count(model, inputs, step=a.step, mode="meta")
            if a.step == "train"
            else flopwise.count(model, inputs, mode="meta")
        )
        print(
            f"single-device count in {time.perf_counter() - started:.1f} s: {one.macs:,} MACs; the ranks add up to "
            f"{p.macs:,} ({'equal' if one.macs == p.macs else 'DIFFERENT'})"
        )


def megatron(p: object, e: object, config: object, batch: int, seq: int) -> None:
    """The plan's figures beside Megatron-LM's formulas, each term of the difference said."""
    from flopwise.parallel import ParallelPlan, StepEstimate

    assert isinstance(p, ParallelPlan) and isinstance(e, StepEstimate)
    L, h, V = config.num_hidden_layers, config.hidden_size, config.vocab_size  # type: ignore[attr-defined]
    f, kv = config.intermediate_size, config.num_key_value_heads * h // config.num_attention_heads  # type: ignore
    B, s = batch, seq
    formula = 72 * B * s * L * h * h + 12 * B * s * s * L * h + 6 * B * s * h * V  # the bracket multiplied out
    weights = L * (2 * h * h + 2 * h * kv + 3 * h * f) + h * V  # the matmul weights of this model (no tied head)
    print("\nbeside Megatron-LM (Narayanan et al. 2021, eq. 3: 72·B·s·l·h²·(1 + s/6h + V/12lh), no recomputation)")
    print(f"  model FLOPs per step, counted (2·MACs of forward and backward, all ranks): {e.model_flops:,}")
    print(
        f"  Megatron's formula:                                                      {formula:,}"
        f"  ({formula / e.model_flops - 1:+.2%})"
    )
    assumed = 12 * L * h * h + h * V
    print(
        f"    of which: matmul weights assumed 12·l·h² + h·V = {assumed:,}, the model has {weights:,} "
        f"(GQA: k, v of width {kv}; SwiGLU: 3·h·{f}): 6·B·s·(assumed − model) = {6 * B * s * (assumed - weights):+,}"
    )
    recompute = 2 * B * s * s * L * h  # QKᵀ once more in each layer's attention backward
    print(
        f"    and: flash attention's backward computes QKᵀ again (5 products to forward's 2, not 4), which "
        f"Megatron's 12·s·h per token leaves out: −2·B·s²·l·h = {-recompute:+,}"
    )
    rest = formula - 6 * B * s * (assumed - weights) + recompute - e.model_flops
    print(f"    left unexplained: {rest:+,}")
    m, pp = p.microbatches, p.layout.sizes["pp"]
    print(
        f"  pipeline bubble, Megatron's (p − 1)/(m + p − 1) = {(pp - 1) / (m + pp - 1):.1%}; replayed from "
        f"torch's {p.schedule} order with the counted stage times: {e.bubble_fraction:.1%}"
    )
    tp = p.layout.sizes["tp"]
    middle = p.ranks[p.layout.rank_of({"pp": 1})]
    layers = L // pp
    calls = next(c["calls"] for c in middle.collectives if c["mesh_dim"] == "tp")
    print(
        f"  tensor-parallel all-reduces per micro-batch of a middle stage ({layers} layers): Megatron 4 per layer "
        f"(2 forward, 2 backward) = {4 * layers}; counted {calls // m}"
    )
    from flopwise.parallel.planner import in_flight

    held = in_flight(p.pipeline_order[1]) - 1  # stage 1's micro-batches in flight beside the one it runs
    kept = middle.activation_bytes - (middle.report.peak_activation_bytes or 0)
    per_layer = s * h * (10 + 24 / tp)  # bytes per sequence, bf16 activations, no sequence parallelism
    print(
        f"  activations saved per layer and sequence: Korthikanti et al. 2022 (flash attention, no sequence "
        f"parallelism) s·h·(10 + 24/t) = {per_layer / 2**20:,.0f} MiB; counted on stage 1 (what autograd saves, "
        f"{held} micro-batches held by 1F1B): {kept / held / layers / 2**20:,.0f} MiB"
    )


if __name__ == "__main__":
    main()
