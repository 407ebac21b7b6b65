"""What `plan()` returns: a `ParallelPlan` with one `RankReport` per rank, ranks equal by symmetry sharing one.

Figures of a `RankReport` are per training (or forward) step of that rank, at its local shapes:

- `macs`, `flops`, `bytes_read`, `bytes_written`, `phases`: the counted program; under pipeline parallelism the
  program of one micro-batch times `microbatches` (every micro-batch has the same shapes), and in a train step
  the gradient accumulation of the micro-batches after the first (in `phases["backward"]`; `accumulation`: one
  micro-batch's adds, accumulate.py);
- `params` (local parameter elements), `weight_bytes`, `gradient_bytes`, `optimizer_bytes`,
  `activation_bytes` (the peak of the tensors the step makes; pipelined, one micro-batch's peak plus the
  activations the other micro-batches in flight keep for backward, as many as the schedule holds at once);
- `collectives`: `[{kind, bytes, mesh_dim, calls, group_size}]`, one entry per kind, mesh dimension and group
  size, `bytes` their total size (local.py says what a collective's size is). Pipelined: per micro-batch ones
  times `microbatches`, except FSDP2's (on dp, dp_cp or edp: FSDP2 gathers once and reduce-scatters once per
  step with `reshard_after_forward=False`); sends and receives of the stage boundary added from its tensors' sizes.

`report` is the flopwise Report of the program counted (one micro-batch when pipelined): per module, per
operator, with its warnings. `ranks` lists every rank the report stands for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..core.cost import Cost
from ..render.units import binary_bytes, count_text, si
from ..report.report import Report
from .layout import Layout


@dataclass(frozen=True)
class RankReport:
    rank: int  # the rank that was counted
    ranks: tuple[int, ...]  # every rank this report stands for: equal by symmetry, counted once
    coords: dict[str, int]
    stage: int | None  # the pipeline stage, None without pipeline parallelism
    microbatches: int
    report: Report  # the program counted: one micro-batch when pipelined
    macs: int
    flops: int
    bytes_read: int
    bytes_written: int
    phases: dict[str, Cost]
    params: int
    weight_bytes: int
    gradient_bytes: int
    optimizer_bytes: int
    activation_bytes: int
    collectives: list[dict[str, Any]]
    phase_of_calls: list[str] = field(default_factory=list, repr=False)  # the counted calls' phases (train)
    program_collectives: list[Any] = field(default_factory=list, repr=False)  # the counted program's, in order
    boundary_bytes: tuple[int, int] = (0, 0)  # a stage's hidden states received and sent, per micro-batch
    accumulation: Report | None = field(default=None, repr=False)  # a later micro-batch's gradient adds, each
    once_per_step: list[bool] = field(default_factory=list, repr=False)  # calls run once a step (per_step.py)
    notes: list[str] = field(default_factory=list)

    @property
    def shared(self) -> bool:
        """Whether other ranks share this report (equal by symmetry)."""
        return len(self.ranks) > 1

    @property
    def memory_bytes(self) -> int:
        return self.weight_bytes + self.gradient_bytes + self.optimizer_bytes + self.activation_bytes

    @property
    def collective_bytes(self) -> int:
        return sum(c["bytes"] for c in self.collectives)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "ranks": list(self.ranks),
            "coords": self.coords,
            "stage": self.stage,
            "microbatches": self.microbatches,
            "macs": self.macs,
            "flops": self.flops,
            "bytes_read": self.bytes_read,
            "bytes_written": self.bytes_written,
            "phases": {k: vars(v) for k, v in self.phases.items()},
            "params": self.params,
            "memory": {
                "weights": self.weight_bytes,
                "gradients": self.gradient_bytes,
                "optimizer": self.optimizer_bytes,
                "activations": self.activation_bytes,
            },
            "collectives": self.collectives,
            "notes": self.notes,
        }


@dataclass(frozen=True)
class ParallelPlan:
    model: str
    inputs: str
    layout: Layout
    step: str
    convention: str
    ranks: list[RankReport]  # one per rank, index = rank; equal ranks share one object
    microbatches: int
    schedule: str | None  # the torch.distributed.pipelining schedule, when pipelined
    pipeline_order: dict[int, list[str]] = field(default_factory=dict)  # pp rank → actions ("0F3", "1B0", …)
    counted: int = 0  # rank programs counted
    seconds: float = 0.0  # how long planning took
    notes: list[str] = field(default_factory=list)

    @property
    def world(self) -> int:
        return self.layout.world

    @property
    def classes(self) -> list[RankReport]:
        """The distinct rank reports, in rank order of the rank counted."""
        seen: dict[int, RankReport] = {}
        for r in self.ranks:
            seen.setdefault(id(r), r)
        return sorted(seen.values(), key=lambda r: r.rank)

    @property
    def macs(self) -> int:
        return sum(r.macs for r in self.ranks)

    @property
    def flops(self) -> int:
        return sum(r.flops for r in self.ranks)

    # set by the package (flopwise.parallel): estimate.py reads this module, so this module cannot import it
    estimator: ClassVar[Callable[..., Any] | None] = None

    def estimate(self, device: str = "H100-SXM", link: Any = None, **options: Any) -> Any:
        """Step time per rank and for the step, and the predicted MFU: a `StepEstimate` (estimate.py)."""
        if ParallelPlan.estimator is None:
            raise RuntimeError("import flopwise.parallel to estimate a plan")
        return ParallelPlan.estimator(self, device=device, link=link, **options)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": "flopwise-parallel/1",
            "model": self.model,
            "inputs": self.inputs,
            "parallel": {k: v for k, v in self.layout.sizes.items() if v > 1},
            "world": self.world,
            "step": self.step,
            "convention": self.convention,
            "microbatches": self.microbatches,
            "schedule": self.schedule,
            "pipeline_order": {str(k): v for k, v in self.pipeline_order.items()},
            "counted": self.counted,
            "macs": self.macs,
            "flops": self.flops,
            "ranks": [r.to_dict() for r in self.classes],
            "notes": self.notes,
        }

    def __str__(self) -> str:
        classes = self.classes
        lines = [
            f"{self.model} on {self.world:,} ranks ({self.layout.describe()}), {self.step} step, "
            f"inputs {self.inputs}"
            + (f", {self.microbatches} micro-batches ({self.schedule})" if self.schedule else ""),
            f"{len(classes)} distinct rank program(s) counted for {self.world:,} ranks "
            f"(ranks equal by symmetry share one count) in {self.seconds:.1f} s",
        ]
        header = ("ranks", "stage", "MACs", "FLOPs", "params", "weights", "grads", "optim", "activ.", "collectives")
        rows = [header]
        for r in classes:
            comm = (
                ", ".join(
                    f"{c['kind']}@{c['mesh_dim']} ×{c['calls']} {binary_bytes(c['bytes'])}" for c in r.collectives
                )
                or "none"
            )
            rows.append(
                (
                    _ranks(r.ranks),
                    "-" if r.stage is None else str(r.stage),
                    si(r.macs),
                    si(r.flops),
                    count_text(r.params),
                    binary_bytes(r.weight_bytes),
                    binary_bytes(r.gradient_bytes),
                    binary_bytes(r.optimizer_bytes),
                    binary_bytes(r.activation_bytes),
                    comm,
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
        for row in rows:
            lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1])
        lines.append(f"total over ranks: {self.macs:,} MACs, {self.flops:,} FLOPs")
        notes = sorted({n for r in classes for n in r.notes} | set(self.notes))
        lines += [f"note: {n}" for n in notes]
        return "\n".join(lines)


def _ranks(ranks: tuple[int, ...]) -> str:
    """'0-7' for a run of consecutive ranks, '0,8,16 … (128)' otherwise."""
    if len(ranks) == 1:
        return str(ranks[0])
    if ranks == tuple(range(ranks[0], ranks[-1] + 1)):
        return f"{ranks[0]}-{ranks[-1]}"
    head = ",".join(str(r) for r in ranks[:3])
    return f"{head} … ({len(ranks)})"
