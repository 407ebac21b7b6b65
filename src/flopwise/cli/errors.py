"""What can go wrong on the command line, as exceptions the entry points turn into exit codes.

Exit codes (README, `--help`): 0 complete · 1 counted with unsupported ops (a lower bound) · 2 the user's input or
model failed · 3 flopwise itself failed (a bug) · 130 interrupted.
"""

from __future__ import annotations

COMPLETE, LOWER_BOUND, USER_ERROR, INTERNAL_ERROR, INTERRUPTED = 0, 1, 2, 3, 130


class UsageError(Exception):
    """The user's input failed (bad spec, file, shape or flag): one line on stderr, exit code 2, no traceback."""


class ModelError(UsageError):
    """The user's model raised (while built, imported or counted); the message says where and with what inputs."""


def exit_message(spec: str, error: SystemExit, where: str) -> str:
    """One line for a model that called sys.exit() (or raised SystemExit, or ran argparse on arguments it lacks): the
    model failing, not flopwise ending."""
    code = "" if error.code is None else repr(error.code)
    return (f"{spec}: the model exited {where} (SystemExit({code})): a model file must not end the process; nothing "
            "was counted")
