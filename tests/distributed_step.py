"""Run by tests/test_distributed.py under `torchrun --nproc-per-node 2` (gloo, CPU): a few monitored train steps
of a tiny model wrapped in DDP (or FSDP2's fully_shard), each rank on its own micro-batch size; every rank
writes its summary and a single-process count of its micro-batch to OUT/rank{R}.json."""

from __future__ import annotations

import json
import sys

import torch
import torch.distributed as dist
from torch import nn

import flopwise

K, H, M = 16, 32, 4


def build() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(K, H), nn.ReLU(), nn.Linear(H, M))


def main(out: str, wrapper: str) -> None:
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    rows = 8 + 4 * rank  # each rank its own micro-batch
    x = torch.randn(rows, K)
    if wrapper == "ddp":
        model: nn.Module = nn.parallel.DistributedDataParallel(build())
    else:
        from torch.distributed.fsdp import fully_shard

        model = build()
        for layer in model:
            if isinstance(layer, nn.Linear):
                fully_shard(layer)
        fully_shard(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    mon = flopwise.Monitor(model, peak_tflops=1.0)
    for _ in range(4):
        with mon.step():
            model(x).sum().backward()
            optimizer.step()
            optimizer.zero_grad()
    summary = mon.summary()  # a collective: every rank calls it
    single = flopwise.count(build(), x, step="train", convention="contractions")
    unsupported = next(iter(mon.counts.values())).report.unsupported
    with open(f"{out}/rank{rank}.json", "w") as f:
        json.dump(
            {"rank": rank, "rows": rows, "summary": summary, "single_flops": single.flops, "unsupported": unsupported},
            f,
            default=str,
        )
    # both ranks tear down together: a rank aborted (SIGABRT) in two loaded full test runs, and a rank still running
    # when its peer closes the gloo connections is one way that happens (gloo's own thread throws)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
