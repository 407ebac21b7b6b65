"""Per-operator time from the PyTorch profiler, attributed to the module that ran each op.

During profiled runs, global forward hooks open a `record_function("flopwise::<module>")` range around
each module, so every aten event has its module among its ancestors. An event whose name is one of the
ops the count recorded (`aten.addmm` ↔ `aten::addmm`) takes its inclusive time (its own work and every
call it makes, e.g. `aten::linear` → `aten::addmm` → `aten::copy_`); its descendants are not looked at
again. Events matching no counted op keep their self time as "other" (composite wrappers such as
`aten::linear`, dispatch of ops the count never saw). CPU: the event's CPU time. CUDA: the time of the
kernels it launched (`device_time_total`).

Overhead: the profiler adds bookkeeping to every event it records (a few µs each on a CPU). It is
measured per run as (profiled wall time − plain wall time) / events and reported; op times include at
most (events inside the op) × that overhead, so achieved FLOP/s per op are lower bounds.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook
from torch.profiler import ProfilerActivity, profile, record_function

_PREFIX = "flopwise::"


@dataclass(frozen=True)
class OpTimes:
    """Median seconds per (module, op) over the profiled runs, and what the profiler cost."""

    seconds: dict[tuple[str, str], float]  # (module, "aten.addmm") → seconds per run
    other_s: float  # self time of events that match no counted op, per run
    events: int  # profiler events per run
    wall_s: float  # median wall time of one profiled run
    nested: dict[tuple[str, str], int]  # events inside each (module, op) group per run: its overhead bound


def _module_ranges(model: torch.nn.Module) -> list[Any]:
    names = {module: name for name, module in model.named_modules()}
    open_ranges: list[Any] = []

    def enter(module: torch.nn.Module, args: Any) -> None:
        if module in names:
            scope = record_function(_PREFIX + names[module])
            scope.__enter__()  # type: ignore[no-untyped-call]
            open_ranges.append(scope)

    def leave(module: torch.nn.Module, args: Any, output: Any) -> None:
        if module in names and open_ranges:
            open_ranges.pop().__exit__(None, None, None)

    return [register_module_forward_pre_hook(enter), register_module_forward_hook(leave, always_call=True)]


def _module_of(event: Any) -> str:
    parent = event.cpu_parent
    while parent is not None:
        if parent.name.startswith(_PREFIX):
            return str(parent.name[len(_PREFIX):])
        parent = parent.cpu_parent
    return ""


def _count_events(event: Any) -> int:
    return 1 + sum(_count_events(child) for child in event.cpu_children)


def attribute(events: list[Any], counted_ops: set[str], cuda: bool) -> tuple[dict[tuple[str, str], float],
                                                                            float, dict[tuple[str, str], int]]:
    """Split one profiled run's events into (module, op) seconds, other seconds, and nested-event counts."""
    seconds: dict[tuple[str, str], float] = defaultdict(float)
    nested: dict[tuple[str, str], int] = defaultdict(int)
    other = 0.0

    def total(event: Any) -> float:
        return float(event.device_time_total if cuda else event.cpu_time_total) / 1e6  # profiler reports µs

    def own(event: Any) -> float:
        return float(event.self_device_time_total if cuda else event.self_cpu_time_total) / 1e6

    def visit(event: Any) -> None:
        nonlocal other
        name = event.name.replace("::", ".")
        if name in counted_ops:
            key = (_module_of(event), name)
            seconds[key] += total(event)
            nested[key] += _count_events(event)
            return
        if not event.name.startswith(_PREFIX):
            other += own(event)
        for child in event.cpu_children:
            visit(child)

    for event in events:
        if event.cpu_parent is None:
            visit(event)
    return dict(seconds), other, dict(nested)


def profile_ops(
    step: Callable[[], Any], model: torch.nn.Module, device: torch.device, counted_ops: set[str], repeats: int
) -> OpTimes:
    """Profile `repeats` runs of `step` (already warmed up) and take per-(module, op) medians."""
    cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    runs: list[dict[tuple[str, str], float]] = []
    others, walls, counts = [], [], []
    nested: dict[tuple[str, str], int] = {}
    for _ in range(repeats):
        handles = _module_ranges(model)
        try:
            with profile(activities=activities) as prof:
                start = time.perf_counter()
                step()
                if cuda:
                    torch.cuda.synchronize()
                walls.append(time.perf_counter() - start)
        finally:
            for handle in handles:
                handle.remove()
        events = list(prof.events())
        seconds, other, nested = attribute(events, counted_ops, cuda)
        runs.append(seconds)
        others.append(other)
        counts.append(len(events))
    keys = {key for run in runs for key in run}
    medians = {key: _median([run.get(key, 0.0) for run in runs]) for key in keys}
    return OpTimes(medians, _median(others), int(_median(counts)), _median(walls), nested)


def _median(values: list[float] | list[int]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return float(ordered[mid]) if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
