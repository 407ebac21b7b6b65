"""Measure a model for real: latency, achieved FLOP/s and bytes/s, roofline, MFU/HFU and an energy estimate.

`measure(model, inputs)` returns a `Measurement` (`.table()`, `.to_dict()`, `.roofline_plot(path)` via
`roofline_plot`). Device peaks are data (`DEVICES`, each figure with its source); CPUs are calibrated.
"""

from .calibrate import Calibration, calibrate
from .devices import DEVICES, DeviceSpec, find_device
from .plot import roofline_plot
from .render import render_measurement
from .result import Measurement, Row
from .roofline import Peaks, resolve_peaks
from .run import measure
from .timing import Timing

Measurement.register_view("table", render_measurement)
Measurement.register_view("roofline", roofline_plot)

__all__ = [
    "DEVICES",
    "Calibration",
    "DeviceSpec",
    "Measurement",
    "Peaks",
    "Row",
    "Timing",
    "calibrate",
    "find_device",
    "measure",
    "resolve_peaks",
    "roofline_plot",
]
