"""The command line before and around the work (issue 28): --help, --version and usage errors answer without
importing torch; Ctrl-C at any moment, imports included, exits 130 in one line; a run past two seconds says what it
is doing on stderr (a terminal, or --progress), and --quiet silences it. bench/cli_startup.py prints the times."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time

import pytest
from test_cli import SCRIPT  # the console script beside this interpreter

import flopwise.counter
from flopwise.cli.options import MODES, build_parser, compare_parser, diff_parser, parse

SLOW = """
import time
from torch import nn

class Slow(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        time.sleep(3)
        return self.fc(x)
"""

TORCH_FREE = """
import sys
sys.argv = [{script!r}, *{args!r}]
from flopwise.cli import main
try:
    code = main()
except SystemExit as exit_:
    code = exit_.code
print("exit", code, "torch imported:", "torch" in sys.modules)
"""


@pytest.mark.parametrize(
    "args, code",
    [
        (["--help"], 0),
        (["--version"], 0),
        (["compare", "--help"], 0),
        (["diff", "--help"], 0),
        (["guides:SimpleConv", "--depth", "two"], 2),
        (["guides:SimpleConv", "--explain", "--format", "csv"], 2),
        (["--bogus"], 2),
        (["--batch", "2"], 2),
    ],
)
def test_help_version_and_usage_errors_import_no_torch(args, code):
    """As the console script starts (argv[0] is the script): the package root leaves the API out until it is used."""
    result = subprocess.run(
        [sys.executable, "-c", TORCH_FREE.format(script=SCRIPT, args=args)], capture_output=True, text=True, timeout=120
    )
    assert result.stdout.strip().splitlines()[-1] == f"exit {code} torch imported: False", result.stderr


def test_the_light_parsers_agree_with_the_library():
    assert MODES == flopwise.counter.MODES
    assert parse(["guides:SimpleConv", "--format", "md"])[1].format == "markdown"  # md is markdown's alias
    assert parse(["diff", "a.json", "b.json", "--format", "md"])[1].format == "markdown"
    for parser in (build_parser(), compare_parser(), diff_parser()):
        assert parser.format_help()


def test_a_program_importing_flopwise_gets_the_whole_api():
    code = "import sys, flopwise; print('torch' in sys.modules, callable(flopwise.count), flopwise.Report.__name__)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["True", "True", "Report"], result.stderr


def start_interruptible(args: list[str], **popen) -> subprocess.Popen:
    """The command as a terminal starts it, Ctrl-C's default restored (a shell's background job ignores SIGINT,
    and Python keeps an ignored SIGINT ignored), once its interpreter catches SIGINT: a loaded machine may take
    longer than a test's delay to start Python at all."""
    process = subprocess.Popen(
        args,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        **popen,
    )
    deadline = time.monotonic() + 60
    while not _catches_sigint(process.pid) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    return process


def _catches_sigint(pid: int) -> bool:
    """Whether the process has a SIGINT handler (Linux: the SigCgt mask of /proc/PID/status, bit SIGINT − 1)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            caught = next(line for line in status if line.startswith("SigCgt:"))
    except (OSError, StopIteration):
        return True  # no /proc: the test's own delay is all there is
    return bool(int(caught.split()[1], 16) >> (signal.SIGINT - 1) & 1)


@pytest.mark.parametrize("after_s", [0.3, 1.0, 2.5])
def test_ctrl_c_at_any_moment_exits_130_quietly(tmp_path, after_s):
    """Whether Ctrl-C lands while torch is imported, while the model loads or while it is counted."""
    (tmp_path / "slow.py").write_text(SLOW)
    process = start_interruptible([SCRIPT, "slow.py:Slow", "--input", "1x4"], cwd=tmp_path)
    time.sleep(after_s)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in err and err.strip().endswith("flopwise: interrupted"), err
    assert out == ""


SWALLOWED = """
import importlib, os, signal, sys, time
sys.argv = [{script!r}, "guides:SimpleConv"]
cli = importlib.import_module("flopwise.cli.main")

def swallowing_import(command):  # as torch's C++ start-up treats an error its import of numpy meets
    try:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(30)
    except BaseException:
        pass
    return lambda options: print("ran on") or 0

cli._command = swallowing_import
sys.exit(cli.main())
"""


def test_ctrl_c_during_the_imports_ends_the_run_though_an_import_swallows_it():
    """torch's start-up can swallow a KeyboardInterrupt (or abort on one, inside C++): Ctrl-C while the command's
    imports run ends the process then and there."""
    process = start_interruptible([sys.executable, "-c", SWALLOWED.format(script=SCRIPT)])
    out, err = process.communicate(timeout=120)
    assert (process.returncode, out) == (130, ""), err
    assert err.strip().endswith("flopwise: interrupted") and "Traceback" not in err, err


def test_a_long_run_says_what_it_is_doing_with_progress_and_not_with_quiet(tmp_path):
    (tmp_path / "slow.py").write_text(SLOW)
    args = [SCRIPT, "slow.py:Slow", "--input", "1x4", "--progress"]
    shown = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0, shown.stderr
    assert "flopwise: counting slow.py:Slow… (" in shown.stderr, shown.stderr
    quiet = subprocess.run([*args, "--quiet"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr


def test_on_a_terminal_the_progress_line_is_drawn_in_place_and_cleared(tmp_path):
    (tmp_path / "slow.py").write_text(SLOW)
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [SCRIPT, "slow.py:Slow", "--input", "1x4"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=follower
    )
    os.close(follower)
    drawn = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 300)
        try:
            chunk = os.read(leader, 4096) if ready else b""
        except OSError:  # the terminal closed with the process
            chunk = b""
        if not chunk:
            break
        drawn += chunk
    process.wait(timeout=60)
    assert process.returncode == 0
    text = drawn.decode()
    assert "\rflopwise: counting slow.py:Slow… (" in text and text.endswith("\r\x1b[K"), text
    assert "\n" not in text  # redrawn in place, then cleared: nothing left on the terminal
