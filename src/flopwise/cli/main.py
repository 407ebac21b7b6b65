"""The entry point of `flopwise` (console script and `python -m flopwise`): parse, then run the command.

Parsing imports no torch (options.py), so `--help`, `--version` and usage errors answer at once; the command's
own module, and torch with it, is imported only then, under the progress line (terminal.py). Ctrl-C at any
moment, imports included, ends with exit code 130 and one line, never a traceback.
"""

from __future__ import annotations

import argparse
import signal
import sys

from .errors import INTERRUPTED, USER_ERROR, UsageError
from .options import parse
from .terminal import progress, say


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    prog = "flopwise"
    try:
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
            return _run(command, options)
        finally:
            progress().end()
    except KeyboardInterrupt:
        _ignore_interrupts()  # a second Ctrl-C while Python shuts down must not print a traceback either
        say(f"{prog}: interrupted")
        return INTERRUPTED


def _run(command: str, options: argparse.Namespace) -> int:
    if command == "compare":
        from .compare import main as compare_main

        return compare_main(options)
    if command == "diff":
        from .diff import main as diff_main

        return diff_main(options)
    from .model_command import main as model_main

    return model_main(options)


def _ignore_interrupts() -> None:
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread (main() called from a thread): nothing to protect
        pass
