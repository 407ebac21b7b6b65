"""`Measurement`: timings joined to counts — per module and per operator time, FLOP/s, roofline, MFU, energy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ..core import energy
from ..core.conventions import CONTRACTIONS
from ..core.cost import ZERO, Cost
from ..engine.module_stack import ancestors
from ..report.report import Report
from .optimes import OpTimes
from .roofline import Peaks
from .timing import Timing

SCHEMA = "flopwise-measure/1"


@dataclass(frozen=True)
class Row:
    """Work and the time it took: one module, or one operator summed over its calls."""

    name: str
    kind: str  # module type, or "op"
    cost: Cost
    seconds: float
    share: float  # of the measured whole
    calls: int
    peaks: Peaks

    @property
    def flops_per_s(self) -> float | None:
        return self.cost.flops / self.seconds if self.seconds > 0 else None

    @property
    def bytes_per_s(self) -> float | None:
        return self.cost.bytes / self.seconds if self.seconds > 0 else None

    @property
    def intensity(self) -> float | None:
        return self.cost.intensity

    @property
    def bound(self) -> str:
        return self.peaks.bound(self.intensity)

    @property
    def roofline_fraction(self) -> float | None:
        return self.peaks.fraction(self.cost.flops, self.cost.bytes, self.seconds)

    @property
    def energy(self) -> energy.Energy | None:
        """ESTIMATED joules of this row's work in the measured dtype (see flopwise.energy)."""
        return energy.estimate(self.cost, self.peaks.dtype)

    def to_dict(self) -> dict[str, Any]:
        e = self.energy
        return {
            "name": self.name,
            "type": self.kind,
            "calls": self.calls,
            "seconds": self.seconds,
            "share": self.share,
            "flops": self.cost.flops,
            "macs": self.cost.macs,
            "bytes": self.cost.bytes,
            "flops_per_s": self.flops_per_s,
            "bytes_per_s": self.bytes_per_s,
            "intensity": self.intensity,
            "bound": self.bound,
            "roofline_fraction": self.roofline_fraction,
            "energy_estimate_j": None if e is None else list(e.total_j),
        }


OPLESS_FLOOR_S = 1e-4  # a forward with no op that takes this long does work elsewhere (hooks cost ~µs)


@dataclass(frozen=True)
class Measurement:
    # name → renderer; measure/__init__ registers the table and the plot, so this module imports neither
    _views: ClassVar[dict[str, Callable[..., Any]]] = {}

    report: Report  # the count of exactly the step that was timed
    step: str  # "forward" or "train" (forward + backward)
    device: str  # torch device, e.g. "cpu", "cuda:0"
    dtype: str
    peaks: Peaks
    total: Timing  # plain runs: no hooks, no profiler
    hooked: Timing  # runs with the module-timing hooks
    module_times: dict[str, Timing]  # inclusive, from the hooked runs
    op_times: OpTimes  # from the profiled runs
    forward: Report  # the count of one forward: model FLOPs, and the module rows of a training step

    # — whole step —
    @property
    def seconds(self) -> float:
        return self.total.median

    @property
    def flops_per_s(self) -> float:
        return self.report.flops / self.seconds

    @property
    def bytes_per_s(self) -> float:
        return (self.report.bytes_read + self.report.bytes_written) / self.seconds

    @property
    def model_flops(self) -> int:
        """FLOPs the model needs: 2 × forward MACs, × 3 for a training step (forward + 2 × backward)."""
        forward = sum(CONTRACTIONS.flops(call.work) for call in self.forward.calls)
        return 3 * forward if self.step == "train" else forward

    @property
    def hardware_flops(self) -> int:
        """Every FLOP counted in the step as run (default convention: contractions and all other ops)."""
        return self.report.flops

    @property
    def mfu(self) -> float | None:
        """Model FLOPs utilisation: model FLOPs / time / peak FLOP/s of the dtype; None when the peak is unknown or
        the figure would pass 100 % (`utilisation_note` says why), as the Monitor reports it."""
        return self._utilisation(self.model_flops)

    @property
    def hfu(self) -> float | None:
        """Hardware FLOPs utilisation: all FLOPs executed / time / peak; None as for `mfu`."""
        return self._utilisation(self.hardware_flops)

    def _utilisation(self, flops: int) -> float | None:
        peak = self.peaks.flops_per_s
        if peak is None:
            return None
        value = flops / self.seconds / peak
        return value if value <= 1.0 else None  # above the peak: the peak is wrong, not the run

    @property
    def utilisation_note(self) -> str:
        """Why MFU or HFU is unknown although the peak is known: the run went faster than the peak ('' if not)."""
        peak, achieved = self.peaks.flops_per_s, max(self.model_flops, self.hardware_flops) / self.seconds
        if peak is None or achieved <= peak:
            return ""
        why = (
            "its calibration ran under load or is stale (--recalibrate measures it again)"
            if self.peaks.calibration is not None
            else "wrong for this device or dtype (--peak-tflops sets it)"
        )
        return (
            f"achieved {achieved / 1e12:.3g} TFLOP/s is above the peak used ({peak / 1e12:.3g} TFLOP/s): that peak "
            f"is {why}; a utilisation over 100 % is not reported"
        )

    @property
    def energy(self) -> energy.Energy | None:
        """ESTIMATED joules per step (see flopwise.energy); None for dtypes the source does not cover."""
        return energy.estimate(self.report.total, self.dtype)

    # — rows —
    def timing_of(self, name: str) -> Timing | None:
        """A module's timing; for a container never called itself (ModuleList, ModuleDict), the per-run sum
        of its outermost timed descendants; None when nothing inside it ran."""
        if name in self.module_times:
            return self.module_times[name]
        prefix = f"{name}." if name else ""
        inside = [n for n in self.module_times if n.startswith(prefix) and n != name]
        outermost = [n for n in inside if not any(n.startswith(f"{other}.") for other in inside)]
        if not outermost:
            return None
        runs = len(self.module_times[outermost[0]].samples)
        return Timing(tuple(sum(self.module_times[n].samples[i] for n in outermost) for i in range(runs)))

    def modules(self, depth: int | None = 2) -> list[Row]:
        """Module rows: hook times joined to module costs. Forward hooks time forwards only, so for a training
        step the rows are the forward part (costs from the forward count; shares of the forward's time)."""
        whole = self.module_times[""].median if "" in self.module_times else self.hooked.median
        rows = []
        for row in self.forward.by_module(depth):
            timing = self.timing_of(row.name)
            if timing is None:
                continue  # a module that never ran in the timed runs (the count saw it through other code)
            kind = row.type if row.name in self.module_times else f"{row.type} (Σ)"
            rows.append(Row(row.name, kind, row.cost, timing.median, timing.median / whole, row.calls, self.peaks))
        return rows

    def operators(self) -> list[Row]:
        """Per operator name, summed over modules: profiler time joined to the counted cost; most time first."""
        costs: dict[str, Cost] = {}
        calls: dict[str, int] = {}
        for call in self.report.calls:
            costs[call.op] = costs.get(call.op, ZERO) + call.cost
            calls[call.op] = calls.get(call.op, 0) + 1
        seconds: dict[str, float] = {}
        for (_, op), s in self.op_times.seconds.items():
            seconds[op] = seconds.get(op, 0.0) + s
        whole = self.op_times.wall_s
        rows = [
            Row(op, "op", costs[op], seconds.get(op, 0.0), seconds.get(op, 0.0) / whole, calls[op], self.peaks)
            for op in costs
            if costs[op].flops or costs[op].bytes
        ]
        return sorted(rows, key=lambda r: -r.seconds)

    def op_groups(self) -> list[Row]:
        """Per (module, operator): the points of the roofline plot."""
        costs: dict[tuple[str, str], Cost] = {}
        for call in self.report.calls:
            key = (call.module, call.op)
            costs[key] = costs.get(key, ZERO) + call.cost
        whole = self.op_times.wall_s
        return [
            Row(f"{module}:{op}", "op", costs[(module, op)], s, s / whole, 1, self.peaks)
            for (module, op), s in self.op_times.seconds.items()
            if (module, op) in costs
        ]

    @property
    def profiler_overhead_per_event_s(self) -> float:
        """What the profiler adds per event it records (measured on a loop of tiny ops; see optimes.py)."""
        return self.op_times.overhead_per_event_s

    @property
    def profiler_overhead_bound_s(self) -> float:
        """At most this much of one profiled run's op times is the profiler's own bookkeeping."""
        return self.op_times.events * self.op_times.overhead_per_event_s

    @property
    def hook_overhead_s(self) -> float:
        """Median hooked run − median plain run: what the module-timing hooks cost per step."""
        return self.hooked.median - self.total.median

    def opless_modules(self, floor_s: float = OPLESS_FLOOR_S) -> dict[str, float]:
        """{module: median seconds} of modules whose forward ran no aten op at all yet took at least `floor_s`:
        work outside the dispatcher (numpy, a raw C++ or Triton kernel) that no dispatch-level count can see."""
        with_ops = {ancestor for call in self.forward.calls for ancestor in ancestors(call.module)}
        return {name: t.median for name, t in self.module_times.items() if name not in with_ops and t.median >= floor_s}

    def coverage(self, depth: int = 1) -> float:
        """Median over the hooked runs of (time inside modules at `depth`) / (the root module's time).

        Per run, not a ratio of medians: child spans nest inside the root's span in the same run, so the ratio
        is at most 1 and the gap is the parents' own code and the hooks.
        """
        whole = self.module_times[""].samples if "" in self.module_times else self.hooked.samples
        names = {row.name for row in self.forward.by_module(depth) if row.depth == depth}
        level = [t.samples for t in (self.timing_of(name) for name in names) if t is not None]
        ratios = sorted(sum(run[i] for run in level) / whole[i] for i in range(len(whole)))
        middle = len(ratios) // 2
        return ratios[middle] if len(ratios) % 2 else (ratios[middle - 1] + ratios[middle]) / 2

    # — output —
    @classmethod
    def register_view(cls, name: str, render: Callable[..., Any]) -> None:
        cls._views[name] = render

    def table(self, depth: int | None = 2, top: int = 12) -> str:
        text: str = self._views["table"](self, depth=depth, top=top)
        return text

    def __str__(self) -> str:
        return self.table()

    def roofline_plot(self, path: str | Path) -> Path:
        """Write the roofline plot (PNG, SVG or PDF by suffix); see flopwise.measure.plot."""
        written: Path = self._views["roofline"](self, path)
        return written

    def to_dict(self) -> dict[str, Any]:
        e = self.energy
        return {
            "schema": SCHEMA,
            "count": self.report.to_dict(),
            "step": self.step,
            "device": self.device,
            "device_name": self.peaks.device,
            "dtype": self.dtype,
            "peaks": {
                "flops_per_s": self.peaks.flops_per_s,
                "bytes_per_s": self.peaks.bytes_per_s,
                "source": self.peaks.source,
                "unknown": self.peaks.unknown or None,
                "calibration": None if self.peaks.calibration is None else self.peaks.calibration.to_dict(),
            },
            "time": self.total.to_dict(),
            "hooked_time": self.hooked.to_dict(),
            "flops_per_s": self.flops_per_s,
            "bytes_per_s": self.bytes_per_s,
            "model_flops": self.model_flops,
            "hardware_flops": self.hardware_flops,
            "mfu": self.mfu,
            "hfu": self.hfu,
            "utilisation_note": self.utilisation_note or None,
            "energy_estimate": None
            if e is None
            else {
                "joules_low": e.total_j[0],
                "joules_high": e.total_j[1],
                "compute_joules": e.compute_j,
                "source": energy.SOURCE,
                "note": "estimate from counts, not a power measurement",
            },
            "profiler": {
                "wall_s": self.op_times.wall_s,
                "events": self.op_times.events,
                "other_s": self.op_times.other_s,
                "overhead_per_event_s": self.profiler_overhead_per_event_s,
            },
            "modules": [r.to_dict() for r in self.modules(depth=None)],
            "opless_modules": self.opless_modules(),
            "operators": [r.to_dict() for r in self.operators()],
        }
