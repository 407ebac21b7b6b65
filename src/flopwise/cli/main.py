"""The entry point of `flopwise` (console script and `python -m flopwise`): parse, then run the command.

Parsing imports no torch (options.py), so `--help`, `--version` and usage errors answer at once; the command's
own module, and torch with it, is imported only then, under the progress line (terminal.py). Ctrl-C at any
moment, imports included, ends with exit code 130 and one line, never a traceback. While the command's imports
run, Ctrl-C ends the process at once: torch's start-up runs Python code inside C++ that cannot carry a
KeyboardInterrupt (its import of numpy clears any error and runs on; torch.distributed's set-up aborts the
process), and nothing is written yet that an exit could cut short. After them it raises KeyboardInterrupt.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from collections.abc import Callable, Iterator
from types import FrameType

from .errors import INTERRUPTED, USER_ERROR, UsageError
from .options import parse
from .terminal import progress, say


def main(argv: list[str] | None = None) -> int:
    entry_point = argv is None  # the process's own command line: Ctrl-C may end the process (module docstring)
    argv = sys.argv[1:] if argv is None else list(argv)
    prog = "flopwise"
    try:
        with _interrupts(entry_point) as ctrl_c:
            try:
                command, options = parse(argv)
            except UsageError as error:  # flags that do not go together: said before anything is imported
                say(f"{prog}: error: {error}")
                return USER_ERROR
            prog = f"flopwise {command}".strip()
            if not options.quiet:
                forced = getattr(options, "progress", False)  # diff has no --progress
                progress().begin("starting (importing torch and the model's libraries)", forced)
            try:
                ctrl_c.prog = prog
                return _run(command, options, ctrl_c)
            finally:
                progress().end()
    except KeyboardInterrupt:
        _ignore_interrupts()  # a second Ctrl-C while Python shuts down must not print a traceback either
        say(f"{prog}: interrupted")
        return INTERRUPTED


def _run(command: str, options: argparse.Namespace, ctrl_c: _CtrlC) -> int:
    ctrl_c.importing = True
    run = _command(command)  # imports torch and the command's libraries
    ctrl_c.importing = False
    return run(options)


def _command(command: str) -> Callable[[argparse.Namespace], int]:
    if command == "compare":
        from .compare import main as compare_main

        return compare_main
    if command == "diff":
        from .diff import main as diff_main

        return diff_main
    from .model_command import main as model_main

    return model_main


class _CtrlC:
    """The SIGINT handler: KeyboardInterrupt, as Python's own, except while the command's imports run in the
    process's own command line, where it exits at once (module docstring)."""

    def __init__(self, may_exit: bool) -> None:
        self.may_exit, self.importing, self.prog = may_exit, False, "flopwise"

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.may_exit and self.importing:
            say(f"{self.prog}: interrupted")
            os._exit(INTERRUPTED)
        raise KeyboardInterrupt


@contextlib.contextmanager
def _interrupts(may_exit: bool) -> Iterator[_CtrlC]:
    """`_CtrlC` installed for the command, Python's handler put back after it. Left alone where SIGINT is not
    Python's default (ignored in a background job, a handler of the caller's own)."""
    handler = _CtrlC(may_exit)
    installed = False
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        try:
            signal.signal(signal.SIGINT, handler)
            installed = True
        except ValueError:  # not the main thread: no handler can be set
            pass
    try:
        yield handler
    finally:
        if installed and signal.getsignal(signal.SIGINT) is handler:
            signal.signal(signal.SIGINT, signal.default_int_handler)


def _ignore_interrupts() -> None:
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread (main() called from a thread): nothing to protect
        pass
