"""Per-operator time from the PyTorch profiler, attributed to the module that ran each op.

During profiled runs, global forward hooks open a `record_function("flopwise::<module>")` range around
each module, so every aten event has its module among its ancestors. An event whose name is one of the
ops the count recorded (`aten.addmm` ↔ `aten::addmm`) takes its inclusive time (its own work and every
call it makes, e.g. `aten::linear` → `aten::addmm` → `aten::copy_`); its descendants are not looked at
again. Events matching no counted op keep their self time as "other" (composite wrappers such as
`aten::linear`, dispatch of ops the count never saw). CPU: the event's CPU time. CUDA: the time of the
kernels it launched (`device_time_total`).

Eager mode and the counting mode can name one op differently (eager `aten::native_batch_norm`, counted
`aten._native_batch_norm_legit_no_training`). A module's unmatched time goes to its one counted op that
received no time, when there is exactly one (recorded in `by_residual`); otherwise it stays "other".

Overhead: the profiler adds bookkeeping to every event it records. `overhead_per_event()` measures it on
a loop of tiny `aten::add` calls, profiled and not; op times include at most (events inside the op) ×
that overhead, so per-op achieved FLOP/s are lower bounds. The bound is reported, not subtracted.
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
    by_residual: frozenset[tuple[str, str]] = frozenset()  # groups timed by their module's unmatched time
    overhead_per_event_s: float = 0.0


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
            return str(parent.name[len(_PREFIX) :])
        parent = parent.cpu_parent
    return ""


def _count_events(event: Any) -> int:
    return 1 + sum(_count_events(child) for child in event.cpu_children)


Attribution = tuple[dict[tuple[str, str], float], float, dict[tuple[str, str], int], set[tuple[str, str]]]


def attribute(events: list[Any], counted: set[tuple[str, str]], cuda: bool) -> Attribution:
    """Split one profiled run's events into (module, op) seconds, other seconds, nested-event counts, and
    the groups timed by their module's residual. `counted` holds the (module, op) groups that have a cost.
    """
    counted_ops = {op for _, op in counted}
    seconds: dict[tuple[str, str], float] = defaultdict(float)
    nested: dict[tuple[str, str], int] = defaultdict(int)
    unmatched: dict[str, float] = defaultdict(float)

    def total(event: Any) -> float:
        return float(event.device_time_total if cuda else event.cpu_time_total) / 1e6  # profiler reports µs

    def own(event: Any) -> float:
        return float(event.self_device_time_total if cuda else event.self_cpu_time_total) / 1e6

    def visit(event: Any) -> None:
        name = event.name.replace("::", ".")
        if name in counted_ops:
            key = (_module_of(event), name)
            seconds[key] += total(event)
            nested[key] += _count_events(event)
            return
        if not event.name.startswith(_PREFIX):  # a module range's own time is Python, not an aten op
            unmatched[_module_of(event)] += own(event)
        for child in event.cpu_children:
            visit(child)

    for event in events:
        if event.cpu_parent is None:
            visit(event)
    other, residual = 0.0, set()
    for module, spare in unmatched.items():
        untimed = [key for key in counted if key[0] == module and key not in seconds]
        if len(untimed) == 1:
            seconds[untimed[0]] += spare
            residual.add(untimed[0])
        else:
            other += spare
    return dict(seconds), other, dict(nested), residual


_OVERHEAD: dict[str, float] = {}


def overhead_per_event(device: torch.device, calls: int = 2000) -> float:
    """Seconds the profiler adds per recorded event: loops of 1-element adds with and without it, taken in
    turns (so a burst of load hits both) and the best of 5 of each compared."""
    if device.type in _OVERHEAD:
        return _OVERHEAD[device.type]
    x = torch.zeros(1, device=device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])

    def loop() -> float:
        start = time.perf_counter()
        for _ in range(calls):
            torch.add(x, x)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    plain, profiled = float("inf"), float("inf")
    with torch.no_grad():
        loop()  # warm-up
        for _ in range(5):
            plain = min(plain, loop())
            with profile(activities=activities):
                profiled = min(profiled, loop())
    _OVERHEAD[device.type] = max(profiled - plain, 0.0) / calls  # one aten::add event per call
    return _OVERHEAD[device.type]


def profile_ops(
    step: Callable[[], Any],
    model: torch.nn.Module,
    device: torch.device,
    counted: set[tuple[str, str]],
    repeats: int,
) -> OpTimes:
    """Profile `repeats` runs of `step` (already warmed up) and take per-(module, op) medians."""
    cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    runs: list[dict[tuple[str, str], float]] = []
    others, walls, counts = [], [], []
    nested: dict[tuple[str, str], int] = {}
    residual: set[tuple[str, str]] = set()
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
        seconds, other, nested, by_residual = attribute(events, counted, cuda)
        residual |= by_residual
        runs.append(seconds)
        others.append(other)
        counts.append(len(events))
    keys = {key for run in runs for key in run}
    medians = {key: _median([run.get(key, 0.0) for run in runs]) for key in keys}
    return OpTimes(
        medians,
        _median(others),
        int(_median(counts)),
        _median(walls),
        nested,
        frozenset(residual),
        overhead_per_event(device),
    )


def _median(values: list[float] | list[int]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return float(ordered[mid]) if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
