"""Measure this machine's own peaks: a large matmul (FLOP/s) and a streaming copy (bytes/s).

Used for CPUs, where no datasheet figure applies to the machine as configured (cores, threads, clocks,
memory channels). So that two runs agree, torch's thread count is fixed for the calibration (and restored
after), each kernel is warmed up, then timed in several trials of many runs each within a time budget; the
peak is the median trial, reported with the trials' spread. A result is cached on disk per machine
(peak_cache.py) with the date it was measured and the machine's load average then, so later runs reuse it instead of
measuring again under whatever load they meet; `recalibrate=True` (`--recalibrate`) measures again and replaces it.
A cached result is checked by a tenth of a second of the same matmul first: one STALE times slower than that check
was measured under load (by another process, another day) and is measured again, and the peaks' source says so.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

import torch

from . import peak_cache
from .timing import Timing


@dataclass(frozen=True)
class Calibration:
    flops_per_s: float  # 2·n³ FLOPs over the median matmul time
    bytes_per_s: float  # the copy's bytes, read and written, over the median copy time
    matmul_n: int
    copy_bytes: int
    dtype: str
    matmul: Timing  # seconds per matmul: one sample per trial
    copy: Timing  # seconds per copy: one sample per trial
    threads: int  # torch's thread count during the calibration
    machine: str  # the CPU's model name and logical CPU count, or the accelerator's name
    torch_version: str
    measured_at: str  # local time, ISO 8601
    cached: bool = False  # read from the cache, not measured in this process
    load_average: float | None = None  # the machine's 1-minute load average as it was measured (None: unknown)
    note: str = ""  # why this process measured again (a stale cached calibration); never cached

    @property
    def flops_spread(self) -> float:
        """(max − min) / median of the matmul trials."""
        return self.matmul.spread

    @property
    def bytes_spread(self) -> float:
        return self.copy.spread

    @property
    def source(self) -> str:
        n, when = self.matmul_n, self.measured_at[:16].replace("T", " ")
        origin = (
            f"calibrated on this machine at {when} (from the cache; --recalibrate measures again)"
            if self.cached
            else f"calibrated now, {when} (cached for later runs)"
        )
        return (
            f"{origin}: median of {len(self.matmul.samples)} trials of a {n}×{n}·{n}×{n} {self.dtype} matmul "
            f"(spread {self.flops_spread:.1%}) and of {len(self.copy.samples)} of a "
            f"{self.copy_bytes >> 20} MiB copy (spread {self.bytes_spread:.1%}), {self.threads} threads"
            + self._load()
            + (f"; {self.note}" if self.note else "")
        )

    def _load(self) -> str:
        """', under load (…)' when other work kept the CPUs busy as it was measured."""
        cpus = os.cpu_count() or 1
        if self.load_average is None or self.load_average < cpus / 2:
            return ""
        return f", under load (load average {self.load_average:.2g} on {cpus} CPUs: the peaks may be low)"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["matmul"], data["copy"] = self.matmul.to_dict(), self.copy.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        timings = {k: Timing(tuple(data[k]["samples_s"])) for k in ("matmul", "copy")}
        return cls(**{**data, **timings})


@contextlib.contextmanager
def pinned_threads(threads: int) -> Iterator[None]:
    """torch's intra-op thread count set to `threads` for the block, and restored after it."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _trials(run: Callable[[], None], trials: int, budget_s: float, warmup_s: float) -> Timing:
    """Seconds per run, one sample per trial. Warm-up first (allocation, library start-up, clocks ramping up),
    then `trials` trials, each of as many runs as fit in budget_s / trials (at least one)."""
    began = time.perf_counter()
    run()
    while time.perf_counter() - began < warmup_s:
        run()
    samples = []
    for _ in range(trials):
        runs, start = 0, time.perf_counter()
        while runs == 0 or time.perf_counter() - start < budget_s / trials:
            run()
            runs += 1
        samples.append((time.perf_counter() - start) / runs)
    return Timing(tuple(samples))


def _machine(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else peak_cache.cpu_name()


def calibrate(
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    *,
    matmul_n: int = 1024,
    copy_mib: int = 128,
    repeats: int = 9,
    budget_s: float = 1.5,
    warmup_s: float = 0.25,
    threads: int | None = None,
    cache: bool = True,
    recalibrate: bool = False,
) -> Calibration:
    """Peak FLOP/s of an n×n matmul (2·n³ FLOPs) and bytes/s of a copy (read + write) on `device`.

    Each is the median of `repeats` trials filling `budget_s` seconds after `warmup_s` of warm-up, with
    `threads` torch threads (default: the current count). `cache`: reuse this machine's cached result and
    store a new one; `recalibrate`: measure even when a result is cached, and replace it.
    """
    device = torch.device(device)
    threads = threads or torch.get_num_threads()
    dtype_name, machine = str(dtype).removeprefix("torch."), _machine(device)
    key = " | ".join(
        [
            f"{device.type} {machine}",
            f"{threads} threads",
            f"torch {torch.__version__}",
            dtype_name,
            f"matmul {matmul_n}",
            f"copy {copy_mib} MiB",
            f"{repeats} trials in {budget_s} s",
        ]
    )
    stale = ""
    if cache and not recalibrate:
        cached = _cached(peak_cache.read_entry(key))
        if cached is not None:
            now = _spot_check(device, dtype, matmul_n, threads)
            if now <= STALE * cached.flops_per_s:
                return cached
            stale = (
                f"measured again: the calibration cached at {cached.measured_at[:16].replace('T', ' ')} "
                f"({cached.flops_per_s / 1e9:.3g} GFLOP/s) is slower than a check now ({now / 1e9:.3g} GFLOP/s), "
                "so it was measured under load"
            )
    cuda = device.type == "cuda"

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    with torch.no_grad(), pinned_threads(threads):
        own = torch.Generator(device=device).manual_seed(0)  # torch's global RNG is left alone
        a = torch.randn(matmul_n, matmul_n, device=device, generator=own).to(dtype)
        b = torch.randn(matmul_n, matmul_n, device=device, generator=own).to(dtype)

        def matmul() -> None:
            torch.mm(a, b)
            sync()

        matmul_s = _trials(matmul, repeats, budget_s, warmup_s)
        source = torch.empty(copy_mib << 20, dtype=torch.uint8, device=device)
        target = torch.empty_like(source)

        def copy() -> None:
            target.copy_(source)
            sync()

        copy_s = _trials(copy, repeats, budget_s, warmup_s)
    result = Calibration(
        flops_per_s=2 * matmul_n**3 / matmul_s.median,  # n² outputs, each n multiplies and n adds
        bytes_per_s=2 * source.numel() / copy_s.median,  # every byte is read once and written once
        matmul_n=matmul_n,
        copy_bytes=copy_mib << 20,
        dtype=dtype_name,
        matmul=matmul_s,
        copy=copy_s,
        threads=threads,
        machine=machine,
        torch_version=torch.__version__,
        measured_at=datetime.now().astimezone().isoformat(timespec="seconds"),
        load_average=_load_average(),
    )
    if cache:
        peak_cache.write_entry(key, result.to_dict())
    return replace(result, note=stale)


STALE = 1.5  # a cached peak this many times slower than a quick check now was measured under load


def _cached(entry: dict[str, Any] | None) -> Calibration | None:
    if entry is None:
        return None
    try:
        return replace(Calibration.from_dict(entry), cached=True, note="")
    except (KeyError, TypeError, ValueError):  # an entry of an older layout: measured again
        return None


def _spot_check(device: torch.device, dtype: torch.dtype, n: int, threads: int) -> float:
    """FLOP/s of the calibration's matmul now, timed as the calibration times it but briefly: the median of three
    short trials (a tenth of a second in all)."""
    cuda = device.type == "cuda"
    with torch.no_grad(), pinned_threads(threads):
        own = torch.Generator(device=device).manual_seed(0)
        a = torch.randn(n, n, device=device, generator=own).to(dtype)
        b = torch.randn(n, n, device=device, generator=own).to(dtype)

        def matmul() -> None:
            torch.mm(a, b)
            if cuda:
                torch.cuda.synchronize()

        return 2 * n**3 / _trials(matmul, trials=3, budget_s=0.1, warmup_s=0.02).median


def _load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):  # not available on this system
        return None
