"""Run by tests/test_parallel_real.py under `torchrun --nproc-per-node N` (gloo, CPU): one train step of a tiny
Llama (real weights) under flopwise's default plan for a layout such as `tp=2`, `dp=2,tp=2` or `pp=2,cp=2`, each
rank counting its own program (the counting modes with `LocalShards` above them, as `plan()` counts on the fake
process group). Every rank writes its MACs, FLOPs, bytes, operators and collectives to OUT/rank{R}.json.

The mesh is laid out as flopwise lays it out (pp, dp, cp, tp, outermost first); a data-parallel rank takes its
slice of the global batch, a context-parallel rank its chunk of each sequence (with the chunk's positions). With
pp > 1 the model is cut here as the plan cuts it (the same split points: earlier stages one layer more; the
embedding on the first stage, the final norm and the head on the last) and the step is run by
torch.distributed.pipelining: a `PipelineStage` per rank and `Schedule1F1B` over as many micro-batches as stages,
after one uncounted warm-up step (the schedule's first step infers the stages' shapes by running them). With
FSDP2 the stage's module is FSDP2's root, as in torchtitan."""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.fsdp import fully_shard
from torch.distributed.tensor.parallel import loss_parallel
from transformers import LlamaConfig, LlamaForCausalLM

import flopwise
from flopwise.parallel.context import gathered_attention, slice_sequence
from flopwise.parallel.layout import Layout, parse
from flopwise.parallel.local import LocalShards
from flopwise.parallel.styles import default_parallelize, fsdp_dim, has_dim
from flopwise.parallel.world import device_mesh, group_dims, sub_mesh

BATCH, SEQ, VOCAB = 4, 16, 128  # the global batch: 4 sequences of 16 tokens


class Skipped(nn.Module):
    """A part of the model another stage runs: its first input, unchanged."""

    def __init__(self, replaced: nn.Module | None = None) -> None:
        super().__init__()
        if hasattr(replaced, "attention_type"):
            self.attention_type = replaced.attention_type  # transformers picks each layer's mask by it

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return args[0] if args else kwargs["hidden_states"]


def keep_stage(model: LlamaForCausalLM, stage: int, stages: int) -> None:
    """Make `model` pipeline stage `stage` of `stages`: the others' layers, embedding, norm and head skipped."""
    layers = model.model.layers
    per, extra = divmod(len(layers), stages)
    first = stage * per + min(stage, extra)
    last = first + per + (1 if stage < extra else 0)
    for i in range(len(layers)):
        if not first <= i < last:
            layers[i] = Skipped(layers[i])
    if stage > 0:
        model.model.embed_tokens = Skipped()  # type: ignore[assignment]
    if stage < stages - 1:
        model.model.norm = Skipped()  # type: ignore[assignment]
        model.lm_head = Skipped()  # type: ignore[assignment]


class StageStep(nn.Module):
    """What the pipeline runs on a stage: token ids (first stage) or the hidden states received, to the hidden
    states sent on (`logits` through a skipped head) or the logits (last stage)."""

    def __init__(self, model: LlamaForCausalLM, first: bool) -> None:
        super().__init__()
        self.model, self.first = model, first

    def forward(self, x: torch.Tensor, position_ids: torch.Tensor | None = None) -> torch.Tensor:
        given = {"input_ids": x} if self.first else {"inputs_embeds": x}
        if position_ids is not None:  # under cp: the global positions of the rank's chunk
            given["position_ids"] = position_ids
        out: torch.Tensor = self.model(**given, use_cache=False).logits
        return out


def pipelined_step(
    model: LlamaForCausalLM, layout: Layout, stage: int, ids: torch.Tensor, positions: torch.Tensor | None, mesh: Any
) -> Any:
    """One uncounted warm-up step, then a schedule ready for the counted one: `run()` runs it."""
    from torch.distributed.pipelining import PipelineStage, Schedule1F1B

    stages = layout.sizes["pp"]
    piece = StageStep(model, first=stage == 0)
    if has_dim(mesh, fsdp_dim(mesh)):
        # the stage torch's schedule runs is FSDP2's root, as in torchtitan, where the stage's module is the
        # sharded model part: the schedule then keeps gradients unsharded across micro-batches and reduce-scatters
        # them once, after the last (PipelineStage's no-sync backward); a unit holding no parameters of its own
        fully_shard(piece, mesh=sub_mesh(mesh, fsdp_dim(mesh)), reshard_after_forward=False)
    pipe = PipelineStage(piece, stage, stages, torch.device("cpu"), group=mesh.get_group("pp"))

    def loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = model.loss_function(logits=logits, labels=labels, vocab_size=VOCAB)
        return out

    schedule = Schedule1F1B(pipe, n_microbatches=stages, loss_fn=loss, scale_grads=False)

    def run() -> None:
        given = (ids,) if stage == 0 else ()
        # keyword inputs are split into micro-batches as the ids are, and given to every stage
        extra = {"position_ids": positions} if positions is not None else {}
        schedule.step(*given, target=ids if stage == stages - 1 else None, return_outputs=False, **extra)

    run()
    model.zero_grad(set_to_none=True)
    return run


def main(out: str, spec: str) -> None:
    layout = parse(spec)
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    assert dist.get_world_size() == layout.world, f"{spec} needs {layout.world} processes"
    coords = layout.coords(rank)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=8,
        num_key_value_heads=4,
    )
    model = LlamaForCausalLM(config)
    ids = torch.randint(0, VOCAB, (BATCH, SEQ))  # the global batch, the same on every rank (seeded)
    ids = ids.chunk(layout.sizes["dp"])[coords["dp"]]  # each data-parallel rank its slice
    positions = None
    if layout.sizes["cp"] > 1:  # then its chunk of each sequence, with the chunk's global positions
        _, sliced = slice_sequence(model, (), {"input_ids": ids}, layout.sizes["cp"], coords["cp"])
        ids, positions = sliced["input_ids"], sliced["position_ids"]
    mesh = device_mesh(layout)
    pipelined = layout.sizes["pp"] > 1
    if pipelined:
        keep_stage(model, coords["pp"], layout.sizes["pp"])
    default_parallelize(model, mesh, pipelined=pipelined)
    parallel_loss = loss_parallel() if layout.sizes["tp"] > 1 else contextlib.nullcontext()
    cp = layout.sizes["cp"]
    attention = gathered_attention(mesh["cp"].get_group().group_name, cp, coords["cp"]) if cp > 1 else None
    with parallel_loss, attention or contextlib.nullcontext():
        run = pipelined_step(model, layout, coords["pp"], ids, positions, mesh) if pipelined else None
        groups = group_dims(mesh)  # slicing the mesh runs ops (each rank's coordinates), no part of the step
        with flopwise.counting(model=model, step="train") as session, LocalShards(groups) as local:
            if run is not None:
                run()
            else:
                loss = model(input_ids=ids, labels=ids, position_ids=positions).loss
                with session.labeler.seed():
                    loss.backward()
    r = session.report
    # gloo has no reduce-scatter kernel: it all-reduces the whole input, then splits it and copies this rank's part
    # into the output, ops the dispatcher sees right after the collective (NCCL runs one kernel, the fake group
    # none). They are the backend's, not the rank's program: left out, and listed
    backend: list[int] = []
    for i, call in enumerate(r.calls):
        if call.op == "c10d._reduce_scatter_base_":
            backend += [j for j in (i + 1, i + 2) if r.calls[j].op in ("aten.split", "aten.copy_")]
    # a pipeline stage's sends and receives: the plan puts them in its collectives from the stage boundary's size,
    # not in the rank's program; left out of the count here too, and listed
    boundary = [i for i, c in enumerate(r.calls) if c.op in ("c10d.send", "c10d.recv_")]
    left_out = set(backend) | set(boundary)
    kept = [c for i, c in enumerate(r.calls) if i not in left_out]
    operators: dict[str, list[int]] = {}
    for c in kept:
        row = operators.setdefault(c.op, [0, 0, 0])
        row[0] += 1
        row[1] += c.cost.flops
        row[2] += c.cost.bytes_read + c.cost.bytes_written
    collectives = [[c.kind, c.mesh_dim, c.group_size, c.bytes, c.backward] for c in local.collectives]
    sends = [c for c in collectives if c[0] in ("send", "recv")]
    program = [c for c in collectives if c[0] not in ("send", "recv")]
    with open(f"{out}/rank{rank}.json", "w") as f:
        json.dump(
            {
                "macs": sum(c.cost.macs for c in kept),
                "flops": sum(c.cost.flops for c in kept),
                "bytes_read": sum(c.cost.bytes_read for c in kept),
                "bytes_written": sum(c.cost.bytes_written for c in kept),
                "operators": operators,  # op → [calls, FLOPs, bytes read and written]
                "backend_ops": [r.calls[i].op for i in backend],
                "reduce_scatters": sum(c.op == "c10d._reduce_scatter_base_" for c in r.calls),
                "boundary_ops": [r.calls[i].op for i in boundary],
                "collectives": program,
                "sends": sends,  # a stage's sends and receives, [kind, mesh_dim, group_size, bytes, backward]
                "unsupported": r.unsupported,
            },
            f,
        )
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
