"""Across processes: each rank's step figures gathered into cluster figures, and the step's collective traffic.

Each rank counts and times its own step (its own micro-batch, its own shard of the work). `gather` is a
collective: every rank of the default process group must call it (through `Monitor.summary()`) at the same
point. The cluster's step lasts as long as its slowest rank, so cluster FLOP/s and MFU divide by that time:

    cluster FLOPs      = Σ_rank FLOPs per step
    cluster FLOP/s     = cluster FLOPs / max_rank step time
    cluster MFU        = Σ_rank model FLOPs / max_rank step time / Σ_rank peak FLOP/s   (None if a peak is unknown)

Collective traffic is what the dispatcher sees: the process-group ops (`c10d.allreduce_` from DDP's gradient
buckets, FSDP's all-gathers and reduce-scatters) and the functional collectives, by the bytes of the local
tensors each was handed (its inputs and its output buffers). Communication inside a library the dispatcher does
not see is not counted.
"""

from __future__ import annotations

from typing import Any

import torch.distributed as dist

from ..report.report import Report

COLLECTIVES = ("c10d.", "_c10d_functional.")


def collective_bytes(report: Report) -> dict[str, int]:
    """{collective op: bytes of the local tensors handed to it} over one step."""
    out: dict[str, int] = {}
    for call in report.calls:
        if call.op.startswith(COLLECTIVES):
            out[call.op] = out.get(call.op, 0) + call.cost.bytes_read
    return out


def world_size() -> int:
    """Processes in the default group; 1 when torch.distributed is not initialised."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def gather(local: dict[str, Any], peak_flops_per_s: float | None) -> dict[str, Any]:
    """The cluster figures from every rank's `local` summary (a collective: every rank calls it)."""
    mine = {
        "rank": dist.get_rank(),
        "flops": local["flops"],
        "model_flops": local["model_flops"],
        "step_time_s": local["step_time_s"],
        "peak_flops_per_s": peak_flops_per_s,
        "collective_bytes": local["collective_bytes"],
    }
    ranks: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(ranks, mine)
    times = [r["step_time_s"] for r in ranks]
    if any(t is None for t in times) or any(r["flops"] is None for r in ranks):
        slowest, step_time = None, None
    else:
        slowest = max(range(len(ranks)), key=lambda i: times[i])
        step_time = times[slowest]
    flops = sum(r["flops"] or 0 for r in ranks)
    peaks = [r["peak_flops_per_s"] for r in ranks]
    mfu = None
    if step_time and all(p is not None for p in peaks):
        mfu = sum(r["model_flops"] for r in ranks) / step_time / sum(peaks)
        mfu = mfu if mfu <= 1.0 else None  # above the peaks: a peak is wrong, never more than 100 %
    return {
        "world_size": len(ranks),
        "ranks": [{k: r[k] for k in ("rank", "flops", "step_time_s", "collective_bytes")} for r in ranks],
        "slowest_rank": slowest,
        "cluster_flops": flops,
        "cluster_tflops_per_s": flops / step_time / 1e12 if step_time else None,
        "cluster_mfu": mfu,
    }
