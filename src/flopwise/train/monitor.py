"""`Monitor`: MFU of a real training loop, counted once per input shape and timed every step.

```python
mon = flopwise.Monitor(model, peak_tflops=None)
for batch in loader:
    with mon.step():
        loss = model(**batch).loss; loss.backward(); opt.step(); opt.zero_grad()
mon.summary()   # {"flops", "tflops_per_s", "mfu", "hfu", "steps", "step_time_s", "peak", …}
```

What a step costs is decided by the inputs of the model's first forward in it (their shapes and dtypes, the
training flag, grad mode): the first step with a new signature is counted, from that forward to the end of the
step, by `counting(step="train")`; every later step with the same signature is only timed (a forward pre-hook
on the model, present only inside `step()`, computes the signature: microseconds). Counted steps run under
the counting modes and are slower, so they are left out of the timing figures.

Time: `time.perf_counter` on CPU; on CUDA a pair of events around the step, read when a figure is asked for.
FLOPs are counted in the contractions convention by default (what MFU practice and the peak tables mean):
- model FLOPs = forward + backward (what the model needs; PaLM's MFU), hardware FLOPs = + recompute (HFU);
- MFU = model FLOPs / step time / peak FLOP/s of the parameters' dtype on this device (measure/devices.py);
  an unknown peak gives None unless `peak_tflops` is given. A utilisation above 100 % means the peak is wrong
  (a sparse figure, another dtype): it is reported as None with a note, never as more than 100 %.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils._pytree import tree_leaves

from ..core.conventions import Convention
from ..counter import Counting, counting
from ..hardware.roofline import Peaks, device_name, resolve_peaks
from ..report.report import Report
from . import cluster


@dataclass(frozen=True)
class StepCount:
    """The FLOPs of one kind of step (one input signature)."""

    flops: int  # every FLOP of the step in the monitor's convention
    model_flops: int  # forward + backward
    hardware_flops: int  # forward + backward + recompute
    collective_bytes: dict[str, int]  # collective op → bytes of the local tensors handed to it
    report: Report

    @classmethod
    def of(cls, report: Report) -> StepCount:
        phases = report.phases
        model = phases["forward"].flops + phases["backward"].flops
        return cls(report.flops, model, model + phases["recompute"].flops, cluster.collective_bytes(report), report)


@dataclass
class StepRecord:
    index: int
    signature: Any
    counted: bool  # this step ran under the counting modes (slower: left out of the timing figures)
    seconds: float | None = None
    _events: tuple[Any, Any] | None = None  # CUDA start and end events, read lazily

    def time(self) -> float | None:
        if self.seconds is None and self._events is not None:
            start, end = self._events
            end.synchronize()
            self.seconds = start.elapsed_time(end) / 1e3  # events report milliseconds
        return self.seconds


def _event() -> Any:
    event = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
    event.record()
    return event


def _signature(model: torch.nn.Module, args: Any, kwargs: Any) -> Any:
    shapes = tuple(
        (tuple(x.shape), x.dtype, x.device) if isinstance(x, torch.Tensor) else type(x)
        for x in tree_leaves((args, kwargs))
    )
    return shapes, model.training, torch.is_grad_enabled()


class Monitor:
    def __init__(
        self,
        model: torch.nn.Module,
        peak_tflops: float | None = None,
        *,
        convention: str | Convention = "contractions",
    ) -> None:
        self.model = model
        self.convention = convention
        self.counts: dict[Any, StepCount] = {}  # signature → what such a step costs
        self.records: list[StepRecord] = []
        first = next((p for p in model.parameters() if p.is_floating_point()), None)
        self.device = first.device if first is not None else torch.device("cpu")
        self.dtype = first.dtype if first is not None else torch.float32
        self.peaks: Peaks = resolve_peaks(
            device_name(self.device), self.device.type, self.dtype, peak_tflops=peak_tflops
        )
        self._current: StepRecord | None = None
        self._counting: contextlib.AbstractContextManager[Counting] | None = None
        self._session: Counting | None = None

    # — one step —
    @contextlib.contextmanager
    def step(self, key: Any = None) -> Iterator[StepRecord]:
        """Around one training step. `key` names the kind of step (a batch's shapes, say) when the model's
        forward is not what runs it (a Lightning training_step may call submodules directly); by default the
        model's first forward inputs decide."""
        record = StepRecord(len(self.records), None, False)
        self._current = record
        handle = self.model.register_forward_pre_hook(self._on_forward, with_kwargs=True)
        if key is not None:
            self._begin(record, key)
        start_event = _event() if self.device.type == "cuda" else None
        start = time.perf_counter()
        failed = True
        try:
            yield record
            failed = False
        finally:
            handle.remove()
            self._current = None
            if self._counting is not None:
                self._finish_count(record, failed)
            if start_event is not None:
                record._events = (start_event, _event())
            else:
                record.seconds = time.perf_counter() - start
            if not failed:
                self.records.append(record)

    def _on_forward(self, module: torch.nn.Module, args: Any, kwargs: Any) -> None:
        record = self._current
        if record is None or record.signature is not None:
            return  # not in a step, or not the step's first forward
        self._begin(record, _signature(module, args, kwargs))

    def _begin(self, record: StepRecord, signature: Any) -> None:
        record.signature = signature
        if signature not in self.counts:  # a new kind of step: count it from here to its end
            record.counted = True
            self._counting = counting(self.convention, model=self.model, step="train")
            self._session = self._counting.__enter__()

    def _finish_count(self, record: StepRecord, failed: bool) -> None:
        assert self._counting is not None and self._session is not None
        context, session = self._counting, self._session
        self._counting = self._session = None
        context.__exit__(None, None, None)
        if not failed:
            self.counts[record.signature] = StepCount.of(session.report)

    # — figures —
    def count_of(self, record: StepRecord) -> StepCount | None:
        return self.counts.get(record.signature)

    def stats(self, record: StepRecord) -> dict[str, Any]:
        """One step: seconds, FLOPs, TFLOP/s, MFU and HFU (None where unknown)."""
        seconds, count = record.time(), self.count_of(record)
        out: dict[str, Any] = {
            "step": record.index,
            "counted": record.counted,
            "step_time_s": seconds,
            "flops": count.flops if count else None,
        }
        rate = count.flops / seconds if count and seconds else None
        out["tflops_per_s"] = rate / 1e12 if rate is not None else None
        out["mfu"] = self._utilisation(count.model_flops, seconds) if count else None
        out["hfu"] = self._utilisation(count.hardware_flops, seconds) if count else None
        return out

    def _utilisation(self, flops: int, seconds: float | None) -> float | None:
        peak = self.peaks.flops_per_s
        if peak is None or not seconds:
            return None
        value = flops / seconds / peak
        return value if value <= 1.0 else None  # above the peak: the peak is wrong, not the step

    def summary(self) -> dict[str, Any]:
        """Totals over the steps, timing figures over the steps that were only timed (all, if every one was
        counted): the median step time, and FLOPs, TFLOP/s, MFU and HFU of a median step.

        Under torch.distributed (more than one process) this is a collective that every rank must call: it adds
        the cluster figures (see flopwise.train.cluster): "world_size", "ranks" (per-rank FLOPs, step time and
        collective bytes), "slowest_rank", "cluster_flops", "cluster_tflops_per_s", "cluster_mfu"."""
        timed = [r for r in self.records if not r.counted] or list(self.records)
        counts = [self.count_of(r) for r in timed]
        known = [(r, c) for r, c in zip(timed, counts, strict=True) if c is not None]
        seconds = statistics.median(t for r, _ in known if (t := r.time()) is not None) if known else None
        flops = statistics.median_low(c.flops for _, c in known) if known else None
        model = statistics.median_low(c.model_flops for _, c in known) if known else None
        hardware = statistics.median_low(c.hardware_flops for _, c in known) if known else None
        peak = self.peaks.flops_per_s
        notes = []
        if peak is None:
            notes.append(self.peaks.unknown)
        elif model and seconds and model / seconds > peak:
            notes.append(
                f"achieved {model / seconds / 1e12:.3g} TFLOP/s is above the peak used "
                f"({peak / 1e12:.4g}): that peak is wrong for this device or dtype; MFU not given"
            )
        middle = next((c for _, c in known if c.flops == flops), None)
        local = {
            "steps": len(self.records),
            "timed_steps": len(timed),
            "step_time_s": seconds,
            "flops": flops,
            "model_flops": model,
            "hardware_flops": hardware,
            "tflops_per_s": flops / seconds / 1e12 if flops is not None and seconds else None,
            "mfu": self._utilisation(int(model), seconds) if model is not None else None,
            "hfu": self._utilisation(int(hardware), seconds) if hardware is not None else None,
            "peak": {
                "tflops": peak / 1e12 if peak is not None else None,
                "dtype": self.peaks.dtype,
                "device": self.peaks.device,
                "source": self.peaks.source or None,
            },
            "notes": notes,
            "collective_bytes": dict(middle.collective_bytes) if middle is not None else {},
        }
        if cluster.world_size() > 1:
            local.update(cluster.gather(local, peak))
        return local

    def __str__(self) -> str:
        s = self.summary()
        peak = s["peak"]
        where = (
            f"{peak['tflops']:.4g} TFLOP/s {peak['dtype']} ({peak['source']})"
            if peak["tflops"] is not None
            else f"unknown ({self.peaks.unknown})"
        )

        def pct(x: float | None) -> str:
            return f"{100 * x:.3g} %" if x is not None else "unknown"

        convention = self.convention if isinstance(self.convention, str) else self.convention.name
        lines = [
            f"steps: {s['steps']} ({s['timed_steps']} timed); median step {s['step_time_s'] or 0:.4g} s",
            f"FLOPs per step: {s['flops'] or 0:,} ({convention}); {s['tflops_per_s'] or 0:.4g} TFLOP/s",
            f"MFU {pct(s['mfu'])}, HFU {pct(s['hfu'])}; peak used: {where}",
        ]
        return "\n".join(lines + s["notes"])
