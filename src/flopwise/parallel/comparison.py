"""Several plans of one model side by side: the table to choose a plan from.

```python
c = flopwise.parallel.compare(model, inputs, [{"dp": 8, "tp": 8}, {"dp": 4, "pp": 2, "tp": 8}],
                              device="H100-SXM", link="NVLink4", memory=80 * 2**30, step="train")
c.rows[0].macs; c.rows[0].step_s; c.fastest; c.best; c.to_dict(); print(c)
```

Each plan is planned by `plan()` (the same options for all of them) and estimated by `estimate()` on the same
device and links. One `PlanRow` per plan, in the order given; its figures are per rank and per step:

- `macs`, `flops`: the most any rank does (the slowest rank sets the pace);
- `weight_bytes`, `gradient_bytes`, `optimizer_bytes`, `activation_bytes`: those of the rank that needs the most
  memory (their sum, `memory_bytes`, is that rank's);
- `communication`: `{kind: bytes}`, the most any rank moves of that kind over every mesh dimension;
- `bubble` (the pipeline's idle share, None without one), `step_s` and `mfu`: the plan's estimate.

`fits` compares `memory_bytes` with `memory` (one device's memory, bytes); the device table has no memory sizes,
so without `memory=` whether a plan fits is unknown (None), never guessed. `fastest` is the plan of the shortest
step; `best` the fastest of those that fit (None when none is known to fit).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ..hardware.devices import find_device
from ..render.grid import left, right, text_table
from ..render.units import binary_bytes, si, si_small
from .estimate import StepEstimate, estimate
from .layout import parse
from .links import Link, find_link
from .planner import plan
from .rank import Parallelize
from .report import ParallelPlan

KINDS = ("all_reduce", "all_gather", "reduce_scatter", "all_to_all", "broadcast", "send", "recv")  # table order


@dataclass(frozen=True)
class PlanRow:
    parallel: dict[str, int]  # the plan's dimensions of size above 1
    world: int
    macs: int  # per rank: the most any rank does in a step
    flops: int
    weight_bytes: int  # the four parts of the memory of the rank that needs the most
    gradient_bytes: int
    optimizer_bytes: int
    activation_bytes: int
    communication: dict[str, int]  # kind → the most bytes any rank moves of it in a step
    bubble: float | None  # the pipeline's idle share (estimate), None without pipeline parallelism
    step_s: float
    mfu: float | None
    fits: bool | None  # memory_bytes within `memory`; None when no memory size was given
    plan: ParallelPlan = field(repr=False)
    estimate: StepEstimate = field(repr=False)

    @property
    def name(self) -> str:
        return ",".join(f"{d}={n}" for d, n in self.parallel.items()) or "one rank"

    @property
    def memory_bytes(self) -> int:
        return self.weight_bytes + self.gradient_bytes + self.optimizer_bytes + self.activation_bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "parallel": self.parallel,
            "world": self.world,
            "macs": self.macs,
            "flops": self.flops,
            "memory": {
                "weights": self.weight_bytes,
                "gradients": self.gradient_bytes,
                "optimizer": self.optimizer_bytes,
                "activations": self.activation_bytes,
                "total": self.memory_bytes,
            },
            "communication": self.communication,
            "bubble": self.bubble,
            "step_s": self.step_s,
            "mfu": self.mfu,
            "fits": self.fits,
        }


@dataclass(frozen=True)
class PlanComparison:
    model: str
    inputs: str
    step: str
    device: str
    links: str  # the links inside and between nodes
    memory: int | None  # one device's memory, bytes, when given
    rows: list[PlanRow]  # in the order the plans were given

    @property
    def fastest(self) -> PlanRow:
        """The plan of the shortest estimated step (the first given, on a tie)."""
        return min(self.rows, key=lambda r: r.step_s)

    @property
    def best(self) -> PlanRow | None:
        """The fastest plan known to fit in memory; None when none is (or no memory size was given)."""
        fitting = [r for r in self.rows if r.fits]
        return min(fitting, key=lambda r: r.step_s) if fitting else None

    def to_dict(self) -> dict[str, Any]:
        best = self.best
        return {
            "schema": "flopwise-parallel-compare/1",
            "model": self.model,
            "inputs": self.inputs,
            "step": self.step,
            "device": self.device,
            "links": self.links,
            "memory": self.memory,
            "plans": [r.to_dict() for r in self.rows],
            "fastest": self.rows.index(self.fastest),
            "best": self.rows.index(best) if best is not None else None,
        }

    def __str__(self) -> str:
        kinds = [k for k in KINDS if any(k in r.communication for r in self.rows)]
        kinds += sorted({k for r in self.rows for k in r.communication} - set(kinds))
        columns = [
            *left("plan"),
            *right("ranks", "MACs/rank", "FLOPs/rank", "weights", "grads", "optim", "activ.", "memory"),
            *right(*kinds),
            *right("bubble", "step", "MFU", "fits"),
        ]
        fastest = self.fastest
        cells = []
        for r in self.rows:
            cells.append(
                [
                    r.name + (" *" if r is fastest else ""),
                    f"{r.world:,}",
                    si(r.macs),
                    si(r.flops),
                    binary_bytes(r.weight_bytes),
                    binary_bytes(r.gradient_bytes),
                    binary_bytes(r.optimizer_bytes),
                    binary_bytes(r.activation_bytes),
                    binary_bytes(r.memory_bytes),
                    *(binary_bytes(r.communication[k]) if k in r.communication else "-" for k in kinds),
                    "-" if r.bubble is None else f"{r.bubble:.1%}",
                    si_small(r.step_s, "s"),
                    "unknown" if r.mfu is None else f"{r.mfu:.2%}",
                    {True: "yes", False: "no", None: "?"}[r.fits],
                ]
            )
        memory = f", {binary_bytes(self.memory)} each" if self.memory is not None else ""
        lines = [
            f"{self.model}, {self.step} step, inputs {self.inputs}: {len(self.rows)} plans, per rank and per step",
            f"ESTIMATE on {self.device}{memory}; {self.links}",
            *text_table(columns, cells),
            f"* fastest: {fastest.name} ({si_small(fastest.step_s, 's')} a step)",
        ]
        best = self.best
        if self.memory is None:
            lines.append("fits: unknown (give the memory of one device: memory= in bytes, --device-memory GIB)")
        elif best is None:
            lines.append(f"fits: no plan fits in {binary_bytes(self.memory)}")
        elif best is not fastest:
            lines.append(f"fastest that fits: {best.name} ({si_small(best.step_s, 's')} a step)")
        lines.append(
            "MACs and FLOPs: the busiest rank's; memory: that of the rank needing the most; communication: the "
            "most any rank moves of each kind"
        )
        return "\n".join(lines)


def compare(
    model: nn.Module,
    inputs: Any,
    plans: Sequence[dict[str, int] | str],
    parallelize_fn: Parallelize | None = None,
    *,
    device: str = "H100-SXM",
    link: str | Link | None = None,
    memory: int | None = None,
    inter: str | Link = "InfiniBand-NDR",
    ranks_per_node: int = 8,
    overlap: float = 1.0,
    efficiency: float = 1.0,
    **options: Any,
) -> PlanComparison:
    """Plan `model` on `inputs` under each of `plans` ({"dp": 8, "tp": 8} or "dp=8,tp=8") with the same
    `options` (as `plan()` takes them), estimate each on `device` and the links (as `estimate()` takes them), and
    set them side by side (module docstring); `microbatches` goes to the pipelined plans alone. Every layout is
    checked before any plan is counted."""
    if not plans:
        raise ValueError("compare(): give at least one plan, e.g. [{'dp': 8, 'tp': 8}, {'dp': 4, 'pp': 2, 'tp': 8}]")
    if memory is not None and memory <= 0:
        raise ValueError(f"compare(): memory is one device's memory in bytes, a positive number; got {memory!r}")
    for p in plans:
        parse(p)
    if find_device(device) is None:
        raise ValueError(f"compare(): unknown device {device!r}: name a row of flopwise.hardware.devices.DEVICES")
    within, between = find_link(link if link is not None else "NVLink4"), find_link(inter)
    rows = []
    for p in plans:
        # micro-batches are a pipeline's: `microbatches=` applies to the plans with stages, the others take none
        mine = options if parse(p).sizes["pp"] > 1 else {k: v for k, v in options.items() if k != "microbatches"}
        planned = plan(model, inputs, p, parallelize_fn, **mine)
        timed = estimate(
            planned,
            device,
            link,
            inter=inter,
            ranks_per_node=ranks_per_node,
            overlap=overlap,
            efficiency=efficiency,
        )
        rows.append(_row(planned, timed, memory))
    first = rows[0].plan
    return PlanComparison(
        model=first.model,
        inputs=first.inputs,
        step=first.step,
        device=rows[0].estimate.device,
        links=f"{within.name} inside a node of {ranks_per_node} ranks, {between.name} between nodes",
        memory=memory,
        rows=rows,
    )


def _row(planned: ParallelPlan, timed: StepEstimate, memory: int | None) -> PlanRow:
    classes = planned.classes
    heaviest = max(classes, key=lambda r: r.memory_bytes)
    moved: dict[str, int] = {}
    for r in classes:
        mine: dict[str, int] = {}
        for c in r.collectives:
            mine[c["kind"]] = mine.get(c["kind"], 0) + c["bytes"]
        for kind, nbytes in mine.items():
            moved[kind] = max(moved.get(kind, 0), nbytes)
    return PlanRow(
        parallel={d: n for d, n in planned.layout.sizes.items() if n > 1},
        world=planned.world,
        macs=max(r.macs for r in classes),
        flops=max(r.flops for r in classes),
        weight_bytes=heaviest.weight_bytes,
        gradient_bytes=heaviest.gradient_bytes,
        optimizer_bytes=heaviest.optimizer_bytes,
        activation_bytes=heaviest.activation_bytes,
        communication=moved,
        bubble=timed.bubble_fraction,
        step_s=timed.step_s,
        mfu=timed.mfu,
        fits=None if memory is None else heaviest.memory_bytes <= memory,
        plan=planned,
        estimate=timed,
    )
