"""`plan()`: each distinct rank program of a parallel plan counted once, and a report for every rank.

Ranks are equal by symmetry when they run the same program at the same local shapes: every rank of a pipeline
stage, unless a parameter splits unevenly along a mesh dimension (then the ranks along it are counted apart:
each coordinate once). The stage's first rank is counted first; its parameters' placements decide which other
coordinates need their own count. `symmetry=False` counts every rank (a check of the symmetry, and the way for a
`parallelize_fn` that treats ranks differently in ways their placements do not show).
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..core.conventions import Convention
from ..core.cost import ZERO, Cost, totals_by
from ..counter import split_inputs
from ..engine.prepare import describe_inputs
from ..formulas.registry import Formula
from . import per_step
from .layout import DIMS, FSDP_DIMS, Layout, parse
from .rank import Options, Parallelize, RankRun, run_rank
from .report import ParallelPlan, RankReport

MODES = ("fake", "meta", "real")
REAL = (
    "parallel plans count on fake tensors (the fake process group moves no data, so values after a collective "
    "would be wrong): mode='real' counted as 'fake'"
)


def plan(
    model: nn.Module,
    inputs: Any = (),
    parallel: dict[str, int] | str | None = None,
    parallelize_fn: Parallelize | None = None,
    *,
    mode: str = "fake",
    step: str = "forward",
    convention: str | Convention = "default",
    attention: str | None = None,
    loss_fn: Callable[[Any], torch.Tensor] | None = None,
    optimizer: Callable[[Any], torch.optim.Optimizer] | torch.optim.Optimizer | None = None,
    microbatches: int | None = None,
    schedule: str = "Schedule1F1B",
    mixed_precision: str | None = None,
    symmetry: bool = True,
    overrides: dict[Any, Formula | None] | None = None,
    shortcuts: bool = True,
    symbolic: dict[str, Any] | None = None,
) -> ParallelPlan:
    """Count what each rank of a parallel plan runs (see flopwise.parallel). `count()`'s options are taken as it
    takes them; `optimizer` may be an optimizer of the model (rebuilt, same class and defaults, over each rank's
    parameters) or a factory of one; `shortcuts` changes nothing (a plan counts every call); `symbolic` is refused."""
    started = time.perf_counter()
    if mode not in MODES:
        raise ValueError(f"plan(): mode must be one of {', '.join(MODES)}, got {mode!r}")
    if symbolic is not None:
        raise ValueError("plan(): symbolic sizes are not planned; plan each size you need")
    if step not in ("forward", "train"):
        raise ValueError(f"plan(): step must be 'forward' or 'train', got {step!r}")
    if optimizer is not None and step != "train":
        raise ValueError("plan(): optimizer= belongs to a training step; pass step='train' with it")
    layout = parse(parallel or {})
    pp = layout.sizes["pp"]
    m = microbatches if microbatches is not None else (pp if pp > 1 else 1)
    if pp == 1 and m != 1:
        raise ValueError("plan(): micro-batches are a pipeline's (pp > 1)")
    if m < 1:
        raise ValueError(f"plan(): microbatches must be positive, got {m}")
    args, kwargs = split_inputs(inputs)
    factory = _rebuild(optimizer) if isinstance(optimizer, torch.optim.Optimizer) else optimizer
    options = Options(
        step, convention, attention, loss_fn, factory, parallelize_fn, m, schedule, mixed_precision, overrides
    )
    runs: dict[int, RankRun] = {}  # rank counted → its run
    owner: dict[int, int] = {}  # every rank → the rank whose run stands for it
    received = None
    order: dict[int, list[str]] = {}
    for s in range(pp):
        stage_ranks = [r for r in range(layout.world) if layout.coords(r)["pp"] == s]
        first = layout.rank_of({"pp": s})
        runs[first] = run = run_rank(model, args, kwargs, layout, first, options, received)
        order = run.order or order
        apart = [d for d in DIMS if d != "pp" and d in run.uneven_dims] if symmetry else [d for d in DIMS if d != "pp"]
        for r in stage_ranks:
            coords = layout.coords(r)
            key = {d: coords[d] for d in apart}
            owner[r] = rep = layout.rank_of({"pp": s, **key})
            if rep not in runs:
                runs[rep] = run_rank(model, args, kwargs, layout, rep, options, received)
        received = run.output
    reports: dict[int, RankReport] = {}
    for rep, run in runs.items():
        sharing = tuple(r for r in range(layout.world) if owner[r] == rep)
        reports[rep] = _rank_report(run, rep, sharing, layout, m, order)
    return ParallelPlan(
        model=type(model).__name__,
        inputs=describe_inputs(args, kwargs),
        layout=layout,
        step=step,
        convention=convention if isinstance(convention, str) else convention.name,
        ranks=[reports[owner[r]] for r in range(layout.world)],
        microbatches=m,
        schedule=schedule if pp > 1 else None,
        pipeline_order=order,
        counted=len(runs),
        seconds=time.perf_counter() - started,
        notes=[REAL] if mode == "real" else [],
    )


def _rebuild(optimizer: torch.optim.Optimizer) -> Callable[[Any], torch.optim.Optimizer]:
    """A factory of `optimizer`'s class with its defaults (those its constructor takes), for a rank's parameters."""
    accepted = inspect.signature(type(optimizer)).parameters
    defaults = {k: v for k, v in optimizer.defaults.items() if k in accepted}
    return lambda params: type(optimizer)(params, **defaults)


def _boundary_bytes(meta: tuple[tuple[int, ...], torch.dtype] | None) -> int:
    if meta is None:
        return 0
    shape, dtype = meta
    return math.prod(shape) * dtype.itemsize


def in_flight(actions: list[str]) -> int:
    """The most micro-batches a stage holds between their forward and their backward, by its schedule."""
    held = most = 0
    for a in actions:
        kind = a.lstrip("0123456789")[:1]
        if kind == "F":
            held += 1
        elif kind in ("B", "I"):
            held -= 1
        most = max(most, held)
    return max(most, 1)


def _rank_report(
    run: RankRun, rank: int, sharing: tuple[int, ...], layout: Layout, m: int, order: dict[int, list[str]]
) -> RankReport:
    report = run.report
    stage = run.stage
    ledger: dict[tuple[str, str, int], dict[str, Any]] = {}

    def add(kind: str, dim: str, size: int, nbytes: int, calls: int) -> None:
        entry = ledger.setdefault(
            (kind, dim, size), {"kind": kind, "mesh_dim": dim, "group_size": size, "calls": 0, "bytes": 0}
        )
        entry["calls"] += calls
        entry["bytes"] += nbytes * calls

    for c in run.collectives:
        add(c.kind, c.mesh_dim, c.group_size, c.bytes, 1 if (m > 1 and c.mesh_dim in FSDP_DIMS) else m)
    train = bool(report.phases)
    activation = run.activation_bytes
    if stage is not None:
        pp = layout.sizes["pp"]
        sent = _boundary_bytes(run.output)
        got = _boundary_bytes(run.received) if run.received is not None else 0
        if not stage.last:
            add("send", "pp", pp, sent, m)
            if train:
                add("recv", "pp", pp, sent, m)  # the gradient of what it sent
        if not stage.first:
            add("recv", "pp", pp, got, m)
            if train:
                add("send", "pp", pp, got, m)
        if train and order:
            activation += (in_flight(order.get(stage.index, [])) - 1) * run.saved_bytes
    # every call once per micro-batch, but the optimizer's once per step, and under a pipeline FSDP2's gathers,
    # reductions and their copies too (per_step.py); each micro-batch after the first also adds its gradients into
    # the earlier ones' (accumulate.py), in backward
    once = per_step.once_per_step(report, run.collectives) if m > 1 else [False] * len(report.calls)
    labels = run.phases or ["forward"] * len(report.calls)
    by_phase = totals_by(
        (label, call.cost, 1 if taken or label == "optimizer" else m)
        for call, label, taken in zip(report.calls, labels, once, strict=True)
    )
    phases = {k: by_phase.get(k, ZERO) for k in report.phases}
    if run.accumulation is not None and "backward" in phases:
        phases["backward"] = phases["backward"] + _times(run.accumulation.total, m - 1)
    total = sum(phases.values(), ZERO) if phases else by_phase.get("forward", ZERO)
    return RankReport(
        rank=rank,
        ranks=sharing,
        coords=layout.coords(rank),
        stage=stage.index if stage is not None else None,
        microbatches=m,
        report=report,
        macs=total.macs,
        flops=total.flops,
        bytes_read=total.bytes_read,
        bytes_written=total.bytes_written,
        phases=phases,
        params=run.params,
        weight_bytes=run.weight_bytes,
        gradient_bytes=run.gradient_bytes,
        optimizer_bytes=run.optimizer_bytes,
        activation_bytes=activation,
        collectives=sorted(ledger.values(), key=lambda e: (e["mesh_dim"], e["kind"])),
        phase_of_calls=run.phases,
        accumulation=run.accumulation,
        once_per_step=once,
        program_collectives=list(run.collectives),
        boundary_bytes=(
            _boundary_bytes(run.received) if stage is not None and not stage.first else 0,
            _boundary_bytes(run.output),
        ),
        notes=run.notes,
    )


def _times(cost: Cost, m: int) -> Cost:
    return Cost(cost.macs * m, cost.flops * m, cost.bytes_read * m, cost.bytes_written * m)
