"""Wall-clock timing: repeated runs of a whole step, and per-module times from global forward hooks.

CPU: `time.perf_counter` around each run. CUDA: a pair of `torch.cuda.Event`s recorded on the current stream
around each run (and in each module hook), read after one `torch.cuda.synchronize()`, so timing never stalls
the GPU between kernels. Every hook is removed in `finally`.
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook


@dataclass(frozen=True)
class Timing:
    """Seconds of repeated runs: the median and the spread around it."""

    samples: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.samples:
            raise ValueError("Timing needs at least one sample; got none (repeats must be ≥ 1)")

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def min(self) -> float:
        return min(self.samples)

    @property
    def max(self) -> float:
        return max(self.samples)

    @property
    def iqr(self) -> float:
        """Interquartile range (0 with fewer than 4 samples, where quartiles mean little)."""
        if len(self.samples) < 4:
            return 0.0
        q1, _, q3 = statistics.quantiles(self.samples, n=4)
        return q3 - q1

    @property
    def spread(self) -> float:
        """(max − min) / median: how far apart the runs were."""
        return (self.max - self.min) / self.median if self.median > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "median_s": self.median,
            "min_s": self.min,
            "max_s": self.max,
            "iqr_s": self.iqr,
            "spread": self.spread,
            "samples_s": list(self.samples),
        }


class Clock:
    """Start/stop marks on one device; `elapsed` is read after `finish()` (a CUDA synchronize)."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"

    def mark(self) -> Any:
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
            event.record()
            return event
        return time.perf_counter()

    def finish(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def elapsed(self, start: Any, end: Any) -> float:
        """Seconds between two marks."""
        if self.cuda:
            return float(start.elapsed_time(end)) / 1000.0  # elapsed_time is in milliseconds
        return float(end - start)


def time_runs(step: Callable[[], Any], device: torch.device, warmup: int, repeats: int) -> Timing:
    """Run `step` `warmup` times untimed, then `repeats` times, each timed on its own."""
    clock = Clock(device)
    for _ in range(warmup):
        step()
    clock.finish()
    marks = []
    for _ in range(repeats):
        start = clock.mark()
        step()
        marks.append((start, clock.mark()))
    clock.finish()
    return Timing(tuple(clock.elapsed(s, e) for s, e in marks))


@contextmanager
def module_clock(names: dict[torch.nn.Module, str], device: torch.device) -> Iterator[list[tuple[str, Any, Any]]]:
    """Record (module name, start mark, end mark) for every forward of a named module inside the block.

    Global hooks, so modules called from anywhere (shared, nested, functional wrappers) are seen. Modules
    not in `names` are ignored. The list is filled as the block runs; marks are read with `Clock.elapsed`.
    """
    clock = Clock(device)
    spans: list[tuple[str, Any, Any]] = []
    open_marks: dict[int, list[Any]] = defaultdict(list)

    def enter(module: torch.nn.Module, args: Any) -> None:
        if module in names:
            open_marks[id(module)].append(clock.mark())

    def leave(module: torch.nn.Module, args: Any, output: Any) -> None:
        if module in names and open_marks[id(module)]:
            start = open_marks[id(module)].pop()
            spans.append((names[module], start, clock.mark()))

    handles = [register_module_forward_pre_hook(enter), register_module_forward_hook(leave, always_call=True)]
    try:
        yield spans
    finally:
        for handle in handles:
            handle.remove()


def time_modules(
    step: Callable[[], Any], model: torch.nn.Module, device: torch.device, repeats: int
) -> tuple[dict[str, Timing], Timing]:
    """Per-module inclusive seconds (summed over a module's calls in one run), and the hooked whole-run times.

    Each module's Timing holds one sample per repeat. The hooked run times are returned too, so the hooks'
    own overhead can be stated against the plain runs.
    """
    clock = Clock(device)
    names = {module: name for name, module in model.named_modules()}  # a shared module keeps its first name
    per_run: list[dict[str, float]] = []
    whole: list[float] = []
    for _ in range(repeats):
        with module_clock(names, device) as spans:
            start = clock.mark()
            step()
            end = clock.mark()
        clock.finish()
        totals: dict[str, float] = defaultdict(float)
        for name, s, e in spans:
            totals[name] += clock.elapsed(s, e)
        per_run.append(totals)
        whole.append(clock.elapsed(start, end))
    seen = [name for name in names.values() if any(name in run for run in per_run)]
    timings = {name: Timing(tuple(run.get(name, 0.0) for run in per_run)) for name in seen}
    return timings, Timing(tuple(whole))
