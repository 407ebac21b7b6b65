"""What can go wrong on the command line, as exceptions the entry points turn into exit codes.

Exit codes (README, `--help`): 0 complete · 1 counted with unsupported ops (a lower bound) · 2 the user's input or
model failed · 3 flopwise itself failed (a bug) · 130 interrupted.
"""

from __future__ import annotations

import stat
from pathlib import Path

COMPLETE, LOWER_BOUND, USER_ERROR, INTERNAL_ERROR, INTERRUPTED = 0, 1, 2, 3, 130


class UsageError(Exception):
    """The user's input failed (bad spec, file, shape or flag): one line on stderr, exit code 2, no traceback."""


class ModelError(UsageError):
    """The user's model raised (while built, imported or counted); the message says where and with what inputs."""


def exit_message(spec: str, error: SystemExit, where: str) -> str:
    """One line for a model that called sys.exit() (or raised SystemExit, or ran argparse on arguments it lacks): the
    model failing, not flopwise ending."""
    code = "" if error.code is None else repr(error.code)
    return (
        f"{spec}: the model exited {where} (SystemExit({code})): a model file must not end the process; nothing "
        "was counted"
    )


def not_a_file(path: Path) -> str:
    """What a path the user gave as a file is instead: 'no such file', 'is a directory', 'is a named pipe (FIFO)'…"""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "no such file"
    except OSError as error:
        return f"cannot be read ({error.strerror or error})"
    kinds = (
        (stat.S_ISDIR, "is a directory, not a file"),
        (stat.S_ISFIFO, "is a named pipe (FIFO), not a file"),
        (stat.S_ISSOCK, "is a socket, not a file"),
        (stat.S_ISCHR, "is a character device, not a file"),
        (stat.S_ISBLK, "is a block device, not a file"),
    )
    return next((said for test, said in kinds if test(mode)), "is not a regular file")


def unwritable(path: str, flag: str) -> str | None:
    """Why an output file cannot be written where it is asked for, said plainly (mkdir would say 'File exists'); None
    when nothing is in the way."""
    target = Path(path)
    blocking = next((p for p in target.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        return f"{flag} {path}: cannot write it, {str(blocking)!r} is a file, not a folder"
    if target.is_dir() and flag != "--plot":  # --plot FILE writes FILE.png and FILE.svg beside a folder FILE
        return f"{flag} {path}: is a directory; give a file name (e.g. {target / 'report.txt'})"
    return None


def first_line(error: BaseException, limit: int = 300) -> str:
    """The first line of an error's message, whole; past `limit` characters it ends at its last full sentence
    within them (never mid-sentence), marked […]."""
    text = next((line.strip() for line in str(error).splitlines() if line.strip()), "(no message)")
    if len(text) <= limit:
        return text
    end = max(text.rfind(". ", 0, limit), text.rfind("; ", 0, limit))
    return text if end <= 0 else text[: end + 1] + " […]"
