"""How long the command line takes to answer what needs no model: --help, --version, a usage error.

Each is run REPEATS times as a fresh process (the console script beside this interpreter, and `python -m flopwise`);
the median wall time is printed beside that of `python -c "import torch"` (what answering used to cost at the least)
and of a fresh `python -c pass` (the interpreter's own start). Run: .venv/bin/python bench/cli_startup.py
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPEATS = 7
SCRIPT = shutil.which("flopwise", path=str(Path(sys.executable).parent)) or "flopwise"
CASES = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "python -c 'import torch'": [sys.executable, "-c", "import torch"],
    "flopwise --help": [SCRIPT, "--help"],
    "flopwise --version": [SCRIPT, "--version"],
    "flopwise compare --help": [SCRIPT, "compare", "--help"],
    "flopwise diff --help": [SCRIPT, "diff", "--help"],
    "flopwise --depth two (usage error)": [SCRIPT, "guides:SimpleConv", "--depth", "two"],
    "flopwise --explain --format csv (usage error)": [SCRIPT, "guides:SimpleConv", "--explain", "--format", "csv"],
    "python -m flopwise --help": [sys.executable, "-m", "flopwise", "--help"],
}
TORCH_FREE = (
    "import sys\nsys.argv = ['flopwise', '--version']\nfrom flopwise.cli import main\n"
    "try:\n    main()\nexcept SystemExit:\n    pass\nprint('torch' in sys.modules)"
)


def seconds(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, capture_output=True, check=False)
    return time.perf_counter() - start


def main() -> None:
    print(
        f"median wall seconds of {REPEATS} fresh processes each (min–max); {sys.platform}, Python "
        f"{sys.version.split()[0]}"
    )
    for label, command in CASES.items():
        runs = [seconds(command) for _ in range(REPEATS)]
        print(f"  {label:<48} {statistics.median(runs):7.3f} s  ({min(runs):.3f}–{max(runs):.3f})")
    check = [sys.executable, "-c", TORCH_FREE.replace("'flopwise'", repr(SCRIPT))]
    imported = subprocess.run(check, capture_output=True, text=True, check=False).stdout.strip().splitlines()[-1:]
    print(f"torch imported by `flopwise --version`: {imported[0] if imported else 'unknown'}")


if __name__ == "__main__":
    main()
