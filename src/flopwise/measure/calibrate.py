"""Measure this machine's own peaks: a large matmul (FLOP/s) and a streaming copy (bytes/s).

Used for CPUs, where no datasheet figure applies to the machine as configured (cores, threads, clocks,
memory channels). The best of at least a few runs, and of as many as fit in about a second, is taken: a peak is what the
machine can reach, not its average.
Results are cached per (device, dtype, threads) for the life of the process.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

_CACHE: dict[tuple[str, torch.dtype, int], Calibration] = {}


@dataclass(frozen=True)
class Calibration:
    flops_per_s: float
    bytes_per_s: float
    matmul_n: int
    copy_bytes: int
    dtype: str

    @property
    def source(self) -> str:
        n = self.matmul_n
        return f"calibrated here: best {n}×{n}·{n}×{n} {self.dtype} matmul, best copy of {self.copy_bytes >> 20} MiB"


def _best(run: Callable[[], None], repeats: int, budget_s: float) -> float:
    """Fastest of at least `repeats` runs, going on until `budget_s` has passed: on a shared machine, more
    tries give a better chance of one run that had the cores to itself."""
    run()  # warm-up: first-call allocation and library initialisation are not the machine's peak
    best, tries, began = float("inf"), 0, time.perf_counter()
    while tries < repeats or (time.perf_counter() - began < budget_s and tries < 100 * repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
        tries += 1
    return best


def calibrate(
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    *,
    matmul_n: int = 1024,
    copy_mib: int = 128,
    repeats: int = 5,
    budget_s: float = 1.0,
) -> Calibration:
    """Peak FLOP/s of an n×n matmul (2·n³ FLOPs) and bytes/s of a copy (read + write) on `device`."""
    device = torch.device(device)
    key = (str(device), dtype, torch.get_num_threads())
    if key in _CACHE and _CACHE[key].matmul_n == matmul_n and _CACHE[key].copy_bytes == copy_mib << 20:
        return _CACHE[key]
    cuda = device.type == "cuda"

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    with torch.no_grad():
        own = torch.Generator(device=device).manual_seed(0)  # torch's global RNG is left alone
        a = torch.randn(matmul_n, matmul_n, device=device, generator=own).to(dtype)
        b = torch.randn(matmul_n, matmul_n, device=device, generator=own).to(dtype)

        def matmul() -> None:
            torch.mm(a, b)
            sync()

        seconds = _best(matmul, repeats, budget_s)
        flops_per_s = 2 * matmul_n**3 / seconds  # n² outputs, each n multiplies and n adds
        source = torch.empty(copy_mib << 20, dtype=torch.uint8, device=device)
        target = torch.empty_like(source)

        def copy() -> None:
            target.copy_(source)
            sync()

        bytes_per_s = 2 * source.numel() / _best(copy, repeats, budget_s)  # every byte is read once and written once
    result = Calibration(flops_per_s, bytes_per_s, matmul_n, copy_mib << 20, str(dtype).removeprefix("torch."))
    _CACHE[key] = result
    return result
