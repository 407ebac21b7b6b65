"""Run by tests/test_parallel_real.py under `torchrun --nproc-per-node 2` (gloo, CPU): one train step of a tiny
Llama (real weights) under flopwise's default plan, tensor parallel or FSDP2, each rank counting its own program
(the counting modes with `LocalShards` above them, as `plan()` counts on the fake process group). Every rank
writes its MACs, FLOPs, bytes and collectives to OUT/rank{R}.json."""

from __future__ import annotations

import json
import sys

import torch
import torch.distributed as dist
from torch.distributed.device_mesh import init_device_mesh
from transformers import LlamaConfig, LlamaForCausalLM

import flopwise
from flopwise.parallel.local import LocalShards
from flopwise.parallel.styles import default_parallelize
from flopwise.parallel.world import group_dims


def main(out: str, dim: str) -> None:
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=128,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=8,
        num_key_value_heads=4,
    )
    model = LlamaForCausalLM(config)
    ids = torch.randint(0, 128, (4, 16))  # the global batch, the same on every rank (seeded)
    if dim == "dp":
        ids = ids.chunk(world)[rank]  # each data-parallel rank its slice
    mesh = init_device_mesh("cpu", (world,), mesh_dim_names=(dim,))
    default_parallelize(model, mesh)
    from torch.distributed.tensor.parallel import loss_parallel

    with flopwise.counting(model=model, step="train") as session, LocalShards(group_dims(mesh)) as local:
        with loss_parallel() if dim == "tp" else torch.enable_grad():
            loss = model(input_ids=ids, labels=ids).loss
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
    kept = [c for i, c in enumerate(r.calls) if i not in set(backend)]
    collectives = [[c.kind, c.mesh_dim, c.group_size, c.bytes, c.backward] for c in local.collectives]
    with open(f"{out}/rank{rank}.json", "w") as f:
        json.dump(
            {
                "macs": sum(c.cost.macs for c in kept),
                "flops": sum(c.cost.flops for c in kept),
                "bytes_read": sum(c.cost.bytes_read for c in kept),
                "bytes_written": sum(c.cost.bytes_written for c in kept),
                "backend_ops": [r.calls[i].op for i in backend],
                "reduce_scatters": sum(c.op == "c10d._reduce_scatter_base_" for c in r.calls),
                "collectives": collectives,
                "unsupported": r.unsupported,
            },
            f,
        )
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
