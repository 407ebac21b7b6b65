"""Is the CPU calibration repeatable? Two calibrations back to back, then `flopwise … --measure` twice.

    .venv/bin/python bench/calibration_repeat.py [--model torchvision:resnet18] [--threads N]

1. `calibrate()` twice, no cache: both FLOP/s and bytes/s figures, each run's trial spread, and the ratio of
   the two runs. Exits 1 when either figure differs between the runs by more than 10 %.
2. `python -m flopwise MODEL --measure --recalibrate --format json` twice (a cache folder of its own,
   calibrated afresh each time): the two calibrated peaks and MFU figures, and their ratios.

The machine's load average is printed first: a calibration measures the machine as it is while it runs, so a
loaded machine gives figures that neither run can repeat. Nothing here asserts a speed, only agreement.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import torch

from flopwise.hardware import calibrate

TOLERANCE = 0.10


def differs(a: float, b: float) -> float:
    """How far apart two figures are, relative to the smaller: 0.1 = one is 10 % above the other."""
    return max(a, b) / min(a, b) - 1


def calibrations() -> bool:
    runs = [calibrate(cache=False) for _ in range(2)]
    agree = True
    print(f"calibrate() twice, no cache: {runs[0].threads} threads, {runs[0].machine}, torch {torch.__version__}")
    for label, unit, value, spread in (
        ("matmul", "GFLOP/s", "flops_per_s", "flops_spread"),
        ("copy", "GB/s", "bytes_per_s", "bytes_spread"),
    ):
        first, second = (getattr(r, value) / 1e9 for r in runs)
        gap = differs(first, second)
        agree &= gap <= TOLERANCE
        spreads = ", ".join(f"{getattr(r, spread):.1%}" for r in runs)
        print(
            f"  {label:6} {first:8.2f} then {second:8.2f} {unit}: ratio {second / first:.3f} "
            f"({gap:.1%} apart; trial spreads {spreads}) {'ok' if gap <= TOLERANCE else 'OVER 10 %'}"
        )
    return agree


def cli_runs(model: str) -> bool:
    command = [sys.executable, "-m", "flopwise", model, "--measure", "--recalibrate", "--format", "json", "-q"]
    peaks, mfus = [], []
    with tempfile.TemporaryDirectory() as cache:
        for _ in range(2):
            env = {**os.environ, "FLOPWISE_CACHE_DIR": cache}
            done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
            if done.returncode != 0:
                print(f"  {' '.join(command)} failed ({done.returncode}): {done.stderr.strip()}")
                return False
            measured = json.loads(done.stdout)["measurement"]
            peaks.append(measured["peaks"]["flops_per_s"] / 1e9)
            mfus.append(measured["mfu"])
    print(f"{model} --measure --recalibrate twice:")
    print(f"  calibrated peak {peaks[0]:.2f} then {peaks[1]:.2f} GFLOP/s: ratio {peaks[1] / peaks[0]:.3f}")
    print(f"  MFU {mfus[0]:.1%} then {mfus[1]:.1%}: ratio {mfus[1] / mfus[0]:.3f}")
    return differs(*peaks) <= TOLERANCE


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="torchvision:resnet18")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads before calibrating")
    options = parser.parse_args()
    if options.threads:
        torch.set_num_threads(options.threads)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average (1, 5, 15 min): {load} on {os.cpu_count()} logical CPUs")
    agree = calibrations()
    agree &= cli_runs(options.model)
    print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("the two calibrations agree within 10 %" if agree else "the two calibrations differ by more than 10 %")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
