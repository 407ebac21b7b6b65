"""Run by tests/test_parallel_real_experts.py under `torchrun --nproc-per-node 2` (gloo, CPU), each rank counting
its own program as `plan()` counts on the fake process group, and writing its MACs, FLOPs, bytes and collectives
to OUT/rank{R}.json: `parallel_rank_experts.py OUT MODEL LAYOUT`. MODEL "mixtral": one train step of a tiny
Mixtral (real weights) under flopwise's default plan for LAYOUT (e.g. dp=2,ep=2: FSDP2 for the dense layers,
transformers' expert parallelism for the experts, its AllToAllEP on real tensors), the router's choice made
balanced (token t's j-th expert is (t·k + j) mod E), the routing the plan assumes, by a hook that runs outside
the count. MODEL "llama": the tiny Llama of tests/test_parallel.py (e.g. cp=2: each rank its chunk of the
sequence, keys and values all-gathered, FSDP2 over the cp ranks)."""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Any

import torch
import torch.distributed as dist
from torch.utils._python_dispatch import _disable_current_modes
from transformers import LlamaConfig, LlamaForCausalLM, MixtralConfig, MixtralForCausalLM

import flopwise
from flopwise.parallel.context import gathered_attention, slice_sequence
from flopwise.parallel.layout import parse
from flopwise.parallel.local import LocalShards
from flopwise.parallel.rank import _loss_parallel
from flopwise.parallel.styles import default_parallelize
from flopwise.parallel.world import device_mesh, group_dims


def tiny_mixtral() -> MixtralForCausalLM:
    """The model of tests/test_parallel_experts.py (the same config, seeded)."""
    config = MixtralConfig(
        vocab_size=128,
        hidden_size=32,
        intermediate_size=64,
        num_local_experts=4,
        num_experts_per_tok=2,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
    )
    config._experts_implementation = "grouped_mm"
    torch.manual_seed(0)
    return MixtralForCausalLM(config)


def balanced(module: torch.nn.Module, args: tuple[Any, ...], output: tuple[Any, ...]) -> tuple[Any, ...]:
    """The router's output with its indices replaced by balanced ones, made outside the count."""
    logits, scores, indices = output
    with _disable_current_modes():
        tokens, k = indices.shape
        slots = torch.arange(tokens * k).reshape(tokens, k)
        indices = (slots % module.num_experts).to(indices.dtype)
    return logits, scores, indices


def tiny_llama() -> LlamaForCausalLM:
    """The model of tests/test_parallel.py's `tiny_llama` (the same config, seeded)."""
    config = LlamaConfig(
        vocab_size=128,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=8,
        num_key_value_heads=4,
    )
    torch.manual_seed(0)
    return LlamaForCausalLM(config)


def main(out: str, model_name: str, layout_text: str) -> None:
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    layout = parse(layout_text)
    coords = layout.coords(rank)
    model = tiny_mixtral() if model_name == "mixtral" else tiny_llama()
    torch.manual_seed(0)
    ids = torch.randint(0, 128, (4, 8) if model_name == "mixtral" else (4, 16))  # the global batch, seeded
    ids = ids.chunk(layout.sizes["dp"])[coords["dp"]]  # each data-parallel rank its slice
    inputs: dict[str, Any] = {"input_ids": ids, "labels": ids}
    if layout.sizes["cp"] > 1:  # then its chunk of each sequence
        inputs = slice_sequence(model, (), inputs, layout.sizes["cp"], coords["cp"])[1]
    mesh = device_mesh(layout)
    default_parallelize(model, mesh)
    if layout.ep > 1:
        for layer in model.model.layers:
            layer.mlp.gate.register_forward_hook(balanced)
    # slicing the mesh runs ops (this rank's coordinates), no part of the step: before the count, as plan() does
    groups = group_dims(mesh)
    cp_group = mesh["cp"].get_group().group_name if layout.sizes["cp"] > 1 else None
    with contextlib.ExitStack() as scope:
        session = scope.enter_context(flopwise.counting(model=model, step="train"))
        local = scope.enter_context(LocalShards(groups))
        scope.enter_context(torch.enable_grad())
        scope.enter_context(_loss_parallel(model))  # as plan() takes the loss: under loss_parallel() with tp
        if cp_group is not None:
            scope.enter_context(gathered_attention(cp_group, layout.sizes["cp"], coords["cp"]))
        loss = model(**inputs).loss
        with session.labeler.seed():
            loss.backward()
    r = session.report
    # gloo has no reduce-scatter kernel: it all-reduces the whole input, then splits it and copies this rank's part
    # into the output, ops the dispatcher sees right after the collective: the backend's, left out and listed
    backend: list[int] = []
    for i, call in enumerate(r.calls):
        if call.op == "c10d._reduce_scatter_base_":
            backend += [j for j in (i + 1, i + 2) if r.calls[j].op in ("aten.split", "aten.copy_")]
    kept = [c for i, c in enumerate(r.calls) if i not in set(backend)]
    with open(f"{out}/rank{rank}.json", "w") as f:
        json.dump(
            {
                "macs": sum(c.cost.macs for c in kept),
                "flops": sum(c.cost.flops for c in kept),
                "bytes_read": sum(c.cost.bytes_read for c in kept),
                "bytes_written": sum(c.cost.bytes_written for c in kept),
                "grouped_mm_macs": sum(c.cost.macs for c in kept if c.op == "aten._grouped_mm"),
                "backend_ops": [r.calls[i].op for i in backend],
                "reduce_scatters": sum(c.op == "c10d._reduce_scatter_base_" for c in r.calls),
                "collectives": [[c.kind, c.mesh_dim, c.group_size, c.bytes, c.backward] for c in local.collectives],
                "unsupported": r.unsupported,
            },
            f,
        )
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
