"""A step-time estimate for a plan: compute from the device table, communication from the link table, the
pipeline's bubbles from its schedule. An ESTIMATE under the assumptions it lists, never a measurement.

- Compute: each op call of a rank's program at its roofline bound, max(compute, memory): 2·MACs at the dense
  peak of the dtype it computed in (hardware/devices.py), its other FLOPs at the float32 peak (vector units),
  its bytes at the memory bandwidth. No kernel launch overheads, no fusion (each eager op reads and writes
  memory): a bound an eager run approaches. Collective ops are communication, timed below, not here.
- Communication: each collective by the NCCL ring model of links.py, on the link of its group: `intra` when
  all the group's ranks share a node (`ranks_per_node` consecutive ranks), else `inter`.
- Overlap (stated, not derived): FSDP2's collectives (its all-gathers and reduce-scatters, prefetched, on dp;
  "dp_cp" with context parallelism, "edp" for experts sharded over part of dp) hide under the rank's compute up
  to `overlap` × its compute time; tensor-parallel collectives, context parallel's key and value gathers and
  expert parallel's all-to-alls are exposed (they sit between the matmuls that need them); a pipeline's sends
  take their time between the stages' actions.
- Pipeline: the schedule's own action order (torch.distributed.pipelining `pipeline_order`) replayed, each
  stage's forward and backward taking their micro-batch times: the bubbles are what it leaves idle. The gradient
  accumulation of the micro-batches after the first is spread evenly over the micro-batches' backward.
- MFU = model FLOPs (2·MACs of forward and backward over all ranks) / step time / (ranks × dense peak).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core.cost import OpCall
from ..hardware.devices import DeviceSpec, find_device
from ..render.units import si_small
from .layout import FSDP_DIMS
from .links import Link, find_link, seconds
from .report import ParallelPlan, RankReport

ACTION = re.compile(r"^(\d+)([A-Z_]+?)(\d*)$")
COMMUNICATION = ("c10d.", "_c10d_functional.")


@dataclass(frozen=True)
class RankTime:
    rank: int
    ranks: tuple[int, ...]
    stage: int | None
    compute_s: float  # per step
    forward_s: float  # one micro-batch's forward: compute and exposed tensor-parallel communication
    backward_s: float  # one micro-batch's backward (and recompute), likewise
    optimizer_s: float
    comm_s: dict[str, float]  # per mesh dimension, per step, all of it (hidden or not)
    exposed_dp_s: float  # dp communication left after overlap
    step_s: float  # this rank's own step, without waiting for other stages
    per_step_s: float = 0.0  # FSDP2's copies around its gathers and reductions, once a step under a pipeline


@dataclass(frozen=True)
class StepEstimate:
    device: str
    dtype: str
    peak_flops_per_s: float
    links: dict[str, str]  # mesh dimension → the link its groups use
    ranks: list[RankTime]
    step_s: float
    bubble_fraction: float | None  # pipelined: idle share of the pipeline's time on the average stage
    model_flops: int
    mfu: float | None
    timeline: list[tuple[int, str, float, float]] = field(default_factory=list)  # (stage, action, start, end)
    assumptions: list[str] = field(default_factory=list)

    def to_svg(self) -> str:
        """Bars of each rank's compute and communication, and the pipeline's timeline (plot.py)."""
        from .plot import estimate_svg

        return estimate_svg(self)

    def __str__(self) -> str:
        lines = [
            f"ESTIMATE on {self.device} ({self.dtype} peak {self.peak_flops_per_s / 1e12:,.1f} TFLOP/s); links "
            + ", ".join(f"{d}: {name}" for d, name in self.links.items())
        ]
        for r in self.ranks:
            comm = ", ".join(f"{d} {si_small(t, 's')}" for d, t in r.comm_s.items()) or "none"
            stage = "" if r.stage is None else f" stage {r.stage}"
            lines.append(
                f"  rank {r.rank}{stage} (×{len(r.ranks)}): compute {si_small(r.compute_s, 's')}, "
                f"communication {comm}, exposed dp {si_small(r.exposed_dp_s, 's')}, "
                f"own step {si_small(r.step_s, 's')}"
            )
        bubble = f", pipeline bubbles {self.bubble_fraction:.1%}" if self.bubble_fraction is not None else ""
        mfu = f"{self.mfu:.2%}" if self.mfu is not None else "unknown"
        lines.append(
            f"step {si_small(self.step_s, 's')}{bubble}; model FLOPs {self.model_flops:,}; predicted MFU {mfu}"
        )
        lines += [f"assumption: {a}" for a in self.assumptions]
        return "\n".join(lines)


def _peak(spec: DeviceSpec, dtype: str) -> float | None:
    key = "float8" if dtype.startswith("float8") else dtype
    value = spec.tflops.get(key)
    return value * 1e12 if value is not None else None


def call_seconds(r: RankReport, spec: DeviceSpec, unknown: set[str]) -> list[float]:
    """Each counted call's roofline time (module docstring)."""
    return _roofline(r.report.calls, spec, unknown)


def _roofline(calls: Sequence[OpCall], spec: DeviceSpec, unknown: set[str]) -> list[float]:
    vector = _peak(spec, "float32")
    memory = spec.bandwidth_gbs * 1e9
    out = []
    for call in calls:
        if call.op.startswith(COMMUNICATION):  # timed as communication, on its link
            out.append(0.0)
            continue
        cost = call.cost
        contraction = 2 * cost.macs
        t = 0.0
        if contraction:
            peak = _peak(spec, call.dtype)
            if peak is None:
                unknown.add(call.dtype or "?")
            else:
                t += contraction / peak
        other = cost.flops - contraction
        if other > 0 and vector is not None:
            t += other / vector
        out.append(max(t, cost.bytes / memory))
    return out


def _link_of(plan: ParallelPlan, rank: int, dim: str, intra: Link, inter: Link, per_node: int) -> Link:
    if dim not in (*plan.layout.sizes, "edp", "dp_cp"):  # the default group beyond the mesh
        return inter
    nodes = {r // per_node for r in plan.layout.group(rank, dim)}
    return intra if len(nodes) == 1 else inter


def estimate(
    plan: ParallelPlan,
    device: str = "H100-SXM",
    link: Any = None,
    *,
    inter: str | Link = "InfiniBand-NDR",
    ranks_per_node: int = 8,
    overlap: float = 1.0,
    efficiency: float = 1.0,
) -> StepEstimate:
    """The plan's step time and predicted MFU on `device` (a row of hardware/devices.py), with `link` the link
    inside a node (default NVLink4) and `inter` between nodes; `efficiency` scales every link's bandwidth."""
    spec = find_device(device)
    if spec is None:
        raise ValueError(f"unknown device {device!r}: name a row of flopwise.hardware.devices.DEVICES")
    intra = find_link(link if link is not None else "NVLink4")
    between = find_link(inter)
    unknown: set[str] = set()
    times: list[RankTime] = []
    durations: dict[int, tuple[float, float, float]] = {}  # stage → forward, backward, send time per micro-batch
    links: dict[str, str] = {}
    model_flops = 0
    dtype_macs: dict[str, int] = {}
    for r in plan.classes:
        per_call = call_seconds(r, spec, unknown)
        labels = r.phase_of_calls or ["forward"] * len(per_call)
        by_phase: dict[str, float] = {}
        per_step = 0.0  # FSDP2's own calls under a pipeline: once a step, not per micro-batch (per_step.py)
        for t, label, once in zip(per_call, labels, r.once_per_step or [False] * len(per_call), strict=True):
            if once:
                per_step += t
            else:
                by_phase[label] = by_phase.get(label, 0.0) + t
        for call, label in zip(r.report.calls, labels, strict=True):
            if label in ("forward", "backward"):
                dtype_macs[call.dtype] = dtype_macs.get(call.dtype, 0) + call.cost.macs * len(r.ranks)
        m = r.microbatches
        fwd_comm = bwd_comm = dp_comm = 0.0
        comm: dict[str, float] = {}
        for c in r.program_collectives:
            chosen = _link_of(plan, r.rank, c.mesh_dim, intra, between, ranks_per_node)
            links[c.mesh_dim] = chosen.name
            t = seconds(c.kind, c.group_size, c.bytes, 1, chosen, efficiency)
            if c.mesh_dim in FSDP_DIMS:  # once per step, also under PP (report.py)
                dp_comm += t
            elif c.backward:
                bwd_comm += t
            else:
                fwd_comm += t
            comm[c.mesh_dim] = comm.get(c.mesh_dim, 0.0) + (t if c.mesh_dim in FSDP_DIMS else t * m)
        # gradient accumulation (the micro-batches after the first), spread over the micro-batches' backward
        accumulation: Sequence[OpCall] = r.accumulation.calls if r.accumulation is not None else ()
        by_phase["backward"] = by_phase.get("backward", 0.0) + sum(_roofline(accumulation, spec, unknown)) * (m - 1) / m
        forward = by_phase.get("forward", 0.0) + fwd_comm
        backward = by_phase.get("backward", 0.0) + by_phase.get("recompute", 0.0) + bwd_comm
        optimizer = by_phase.get("optimizer", 0.0)
        compute = (
            m * (by_phase.get("forward", 0.0) + by_phase.get("backward", 0.0) + by_phase.get("recompute", 0.0))
            + optimizer
            + per_step
        )
        exposed = max(0.0, dp_comm - overlap * compute)
        send = 0.0
        if r.stage is not None:
            pp_link = _link_of(plan, r.rank, "pp", intra, between, ranks_per_node)
            links["pp"] = pp_link.name
            send = seconds("send", 2, r.boundary_bytes[1], 1, pp_link, efficiency)
            comm["pp"] = comm.get("pp", 0.0) + m * send * (2 if r.phases else 1)
            durations[r.stage] = (
                max(durations.get(r.stage, (0.0, 0.0, 0.0))[0], forward),
                max(durations.get(r.stage, (0.0, 0.0, 0.0))[1], backward if r.phases else 0.0),
                send,
            )
        own = m * (forward + backward) + optimizer + per_step + exposed
        times.append(
            RankTime(r.rank, r.ranks, r.stage, compute, forward, backward, optimizer, comm, exposed, own, per_step)
        )
        if r.phases:
            model_flops += 2 * (r.report.phases["forward"].macs + r.report.phases["backward"].macs) * m * len(r.ranks)
        else:
            model_flops += 2 * r.report.macs * m * len(r.ranks)
    timeline: list[tuple[int, str, float, float]] = []
    bubble = None
    if plan.pipeline_order:
        train = plan.step == "train"
        makespan, timeline = replay(plan.pipeline_order, durations, train)
        tail = max((t.optimizer_s + t.per_step_s + t.exposed_dp_s for t in times), default=0.0)
        step = makespan + tail
        busy = sum(end - start for _, _, start, end in timeline)
        bubble = 1 - busy / (makespan * len(plan.pipeline_order)) if makespan else None
    else:
        step = max(t.step_s for t in times)
    dtype = max(dtype_macs, key=lambda k: dtype_macs[k]) if dtype_macs else "float32"
    peak = _peak(spec, dtype)
    mfu = model_flops / step / (plan.world * peak) if peak and step > 0 else None
    assumptions = [
        "compute: every op at its roofline bound (2·MACs at the dense peak of its dtype, other FLOPs at the float32 "
        "peak, bytes at the memory bandwidth); no launch overheads",
        f"communication: NCCL's ring model; inside a node ({ranks_per_node} consecutive ranks) {intra.name} "
        f"({intra.bandwidth_gbs:g} GB/s each way; {intra.source}), between nodes {between.name} "
        f"({between.bandwidth_gbs:g} GB/s; {between.source}); latency: {intra.latency_source}"
        + (f"; bandwidths × {efficiency:g}" if efficiency != 1.0 else ""),
        f"overlap: dp (FSDP2) collectives hidden under up to {overlap:.0%} of the rank's compute; tensor-parallel "
        "collectives, context-parallel gathers and expert-parallel all-to-alls exposed; pipeline sends between the "
        "stages' actions",
    ]
    if unknown:
        assumptions.append(
            f"{spec.name} has no peak for {', '.join(sorted(unknown))}: those products timed by their bytes alone"
        )
    return StepEstimate(
        spec.name, dtype, peak or 0.0, links, times, step, bubble, model_flops, mfu, timeline, assumptions
    )


def replay(
    order: dict[int, list[str]], durations: dict[int, tuple[float, float, float]], train: bool
) -> tuple[float, list[tuple[int, str, float, float]]]:
    """Each pp rank's actions in the schedule's order, each starting once its inputs have arrived (the previous
    stage's forward of the micro-batch, the next stage's backward) and its rank is free; returns the makespan and
    the timeline."""
    stages = len(order)
    done: dict[tuple[int, str, int], float] = {}
    free = dict.fromkeys(order, 0.0)
    queues = {
        rank: [
            a
            for a in (ACTION.match(s) for s in actions)
            if a and a.group(2) in ("F", "B") and (train or a.group(2) == "F")
        ]
        for rank, actions in order.items()
    }
    position = dict.fromkeys(order, 0)
    timeline: list[tuple[int, str, float, float]] = []
    while any(position[r] < len(queues[r]) for r in order):
        moved = False
        for rank in order:
            while position[rank] < len(queues[rank]):
                action = queues[rank][position[rank]]
                stage, kind, mb = int(action.group(1)), action.group(2), int(action.group(3) or 0)
                forward, backward, _ = durations.get(stage, (0.0, 0.0, 0.0))
                if kind == "F":
                    deps = [((stage - 1, "F", mb), durations.get(stage - 1, (0, 0, 0.0))[2])] if stage else []
                else:
                    deps = [((stage, "F", mb), 0.0)]
                    if stage < stages - 1:
                        deps.append(((stage + 1, "B", mb), durations.get(stage, (0, 0, 0.0))[2]))
                if any(key not in done for key, _ in deps):
                    break
                start = max([free[rank]] + [done[key] + delay for key, delay in deps])
                end = start + (forward if kind == "F" else backward)
                done[(stage, kind, mb)] = end
                free[rank] = end
                timeline.append((stage, action.group(0), start, end))
                position[rank] += 1
                moved = True
        if not moved:
            raise RuntimeError("pipeline replay: the schedule's actions wait on each other (no action can start)")
    return max(free.values(), default=0.0), timeline
