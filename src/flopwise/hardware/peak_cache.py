"""Where measured peaks are kept between runs: one JSON file per user, an entry per machine configuration.

The file is `$FLOPWISE_CACHE_DIR/calibration.json`, else `$XDG_CACHE_HOME/flopwise/…`, else
`~/.cache/flopwise/…`. An entry is keyed by everything that changes the figures: the device (a CPU's model
name and logical CPU count), torch's thread count, torch's version, the dtype and the benchmark sizes; any
change is a miss and a new measurement. A missing or unreadable file is a miss, never an error.
"""

from __future__ import annotations

import json
import os
import platform
import warnings
from pathlib import Path
from typing import Any

ENV = "FLOPWISE_CACHE_DIR"  # tests and CI point this at a folder of their own
FILE = "calibration.json"


def cache_file() -> Path:
    if os.environ.get(ENV):
        return Path(os.environ[ENV]) / FILE
    base = Path(os.environ["XDG_CACHE_HOME"]) if os.environ.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "flopwise" / FILE


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux) and how many logical CPUs the machine has."""
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            model = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), "")
    except OSError:
        pass  # not Linux: the platform's own description below
    model = model or platform.processor() or platform.machine() or "unknown CPU"
    return f"{model} ×{os.cpu_count() or 1}"


def _entries(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_entry(key: str) -> dict[str, Any] | None:
    entry = _entries(cache_file()).get(key)
    return entry if isinstance(entry, dict) else None


def write_entry(key: str, entry: dict[str, Any]) -> None:
    """Add or replace one entry; written to a temporary file and renamed, so a reader never sees half a file."""
    path = cache_file()
    entries = _entries(path)
    entries[key] = entry
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(entries, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(temporary, path)
    except OSError as error:  # a read-only home must not fail the measurement; the next run measures again
        warnings.warn(
            f"flopwise: cannot cache the calibration in {path} ({error.strerror}); set {ENV} to a writable folder",
            stacklevel=3,
        )
