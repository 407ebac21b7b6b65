"""Peaks of the device a measurement ran on, and where work sits under its roofline.

The roofline: a kernel of arithmetic intensity I (FLOPs per byte moved) can reach at most
min(peak FLOP/s, I × bandwidth). Below the ridge point (peak / bandwidth) it is memory-bound, above it
compute-bound. The fraction of roofline is achieved FLOP/s over that attainable figure (for work with no
FLOPs, achieved bytes/s over the bandwidth).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .calibrate import Calibration
from .devices import find_device, peak_key


@dataclass(frozen=True)
class Peaks:
    """Peak FLOP/s and bytes/s for one (device, dtype); None where unknown, with the reason."""

    device: str
    dtype: str
    flops_per_s: float | None
    bytes_per_s: float | None
    source: str
    unknown: str = ""  # why a figure is missing, and how to supply it
    calibration: Calibration | None = None  # a CPU's measured peaks: their spread, date, and whether cached

    @property
    def ridge(self) -> float | None:
        """FLOPs per byte where the memory roof meets the compute roof."""
        if self.flops_per_s is None or not self.bytes_per_s:
            return None
        return self.flops_per_s / self.bytes_per_s

    def attainable(self, intensity: float) -> float | None:
        if self.flops_per_s is None or self.bytes_per_s is None:
            return None
        return min(self.flops_per_s, intensity * self.bytes_per_s)

    def bound(self, intensity: float | None) -> str:
        """ "compute" or "memory" by arithmetic intensity; "unknown" without both peaks; "-" for no work."""
        ridge = self.ridge
        if ridge is None:
            return "unknown"
        if intensity is None:
            return "-"  # nothing read or written: no place on the roofline
        return "compute" if intensity >= ridge else "memory"

    def fraction(self, flops: int, bytes_moved: int, seconds: float) -> float | None:
        """Achieved over attainable performance for this much work done in this time."""
        if seconds <= 0 or self.bytes_per_s is None:
            return None
        if flops == 0 or not bytes_moved:
            return (bytes_moved / seconds) / self.bytes_per_s if bytes_moved else None
        attainable = self.attainable(flops / bytes_moved)
        return (flops / seconds) / attainable if attainable else None


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return device.type


def resolve_peaks(
    name: str,
    kind: str,
    dtype: torch.dtype,
    *,
    peak_tflops: float | None = None,
    peak_gbs: float | None = None,
    calibrate: Callable[[], Calibration] | None = None,
) -> Peaks:
    """Peaks for a device: user figures first, then the device table, then (CPU only) calibration.

    `kind` is the torch device type. An accelerator missing from the table is reported unknown, never
    guessed from a similar one; pass `peak_tflops` (and `peak_gbs`) to supply its figures.
    """
    dtype_name = str(dtype).removeprefix("torch.")
    flops = peak_tflops * 1e12 if peak_tflops is not None else None
    bandwidth = peak_gbs * 1e9 if peak_gbs is not None else None
    sources = ["given by the user"] if peak_tflops is not None or peak_gbs is not None else []
    unknown = ""
    measured: Calibration | None = None
    if kind == "cpu":
        if (flops is None or bandwidth is None) and calibrate is not None:
            measured = calibrate()
            flops = flops if flops is not None else measured.flops_per_s
            bandwidth = bandwidth if bandwidth is not None else measured.bytes_per_s
            sources.append(measured.source)
    else:
        spec = find_device(name)
        key = peak_key(dtype_name, torch.backends.cuda.matmul.allow_tf32)
        if spec is None:
            if flops is None:
                unknown = f"device {name!r} is not in flopwise's peak table; pass peak_tflops (--peak-tflops)"
        else:
            table_flops = spec.tflops.get(key)
            if flops is None and table_flops is not None:
                flops = table_flops * 1e12
            elif flops is None:
                unknown = f"{spec.name}'s sheet gives no {key} peak; pass peak_tflops (--peak-tflops)"
            bandwidth = bandwidth if bandwidth is not None else spec.bandwidth_gbs * 1e9
            sources.append(f"{spec.name} {key}: {spec.source}")
    if flops is None and not unknown:
        unknown = f"no peak known for {name!r}; pass peak_tflops (--peak-tflops)"
    return Peaks(name, dtype_name, flops, bandwidth, "; ".join(sources), unknown, measured)
