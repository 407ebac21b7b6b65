"""stderr as the command line uses it, without torch: lines in whatever encoding stderr has, and the progress line.

The progress line: a command that runs past two seconds says on stderr what it is doing (importing torch, loading
MODEL, counting MODEL, measuring it…), redrawn in place when stderr is a terminal; `--progress` shows it elsewhere
too (one line per stage, for CI logs), `--quiet` never. Stages are set with `stage()` from wherever the work is;
the line is drawn by a daemon thread.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

# text that stdout cannot encode (a C locale, PYTHONIOENCODING=ascii) degrades to this
_ASCII = str.maketrans(
    {
        "×": "x",
        "·": ".",
        "─": "-",
        "—": "-",
        "–": "-",
        "…": "...",
        "█": "#",
        "→": "->",
        "≈": "~",
        "≤": "<=",
        "≥": ">=",
        "µ": "u",
        "±": "+/-",
        "−": "-",
        "ᵀ": "T",
    }
)
AFTER_S = 2.0  # a run shorter than this shows no progress
REPEAT_S = 30.0  # off a terminal, a stage that lasts is said again this often


def printable(text: str, stream: TextIO) -> str:
    """`text` as `stream` can encode it: unchanged on UTF-8, × · ─ as x . - (and the rest as ?) on ASCII."""
    encoding = getattr(stream, "encoding", None) or "utf-8"
    try:
        text.encode(encoding)
        return text
    except (UnicodeEncodeError, LookupError):
        return text.translate(_ASCII).encode(encoding, "replace").decode(encoding)


def say(message: str) -> None:
    """A line on stderr, in whatever encoding stderr has (a progress line drawn on a terminal is cleared first)."""
    with _LOCK:
        _PROGRESS.clear()
        print(printable(message, sys.stderr), file=sys.stderr)


def stage(text: str) -> None:
    """What the command is doing now, for the progress line ('counting torchvision:resnet50')."""
    _PROGRESS.stage = text


class Progress:
    """The progress line of one command: started by the entry point, silent for its first AFTER_S seconds."""

    def __init__(self) -> None:
        self.stage = ""
        self.start = time.monotonic()
        self.drawn = False  # a line is on the terminal, to be cleared before anything else is written
        self.said: tuple[str, float] = ("", 0.0)  # off a terminal: the last stage said, and when
        self.paused = False  # another display owns stderr (compare's bar)
        self.shown = False  # drawn at all: stderr is a terminal, or --progress
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def begin(self, text: str, force: bool = False) -> None:
        """Start timing; the line shows after AFTER_S seconds when stderr is a terminal, or anywhere with `force`."""
        self.stage, self.start, self.paused, self.said = text, time.monotonic(), False, ("", 0.0)
        self.shown = force or sys.stderr.isatty()
        if not self.shown:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="flopwise-progress", daemon=True)
        self._thread.start()

    def end(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1)
            self._thread = None
        with _LOCK:
            self.clear()

    def pause(self) -> None:
        """Another display takes stderr over (compare's bar): the line is cleared and no longer drawn."""
        with _LOCK:
            self.clear()
            self.paused = True

    def clear(self) -> None:
        if self.drawn:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
            self.drawn = False

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            elapsed = time.monotonic() - self.start
            if elapsed < AFTER_S or self.paused or not self.stage:
                continue
            with _LOCK:
                try:
                    self._draw(elapsed)
                except (OSError, ValueError):  # stderr closed under us: nothing more to show
                    return

    def _draw(self, elapsed: float) -> None:
        line = printable(f"flopwise: {self.stage}… ({elapsed:.0f} s)", sys.stderr)
        if sys.stderr.isatty():
            sys.stderr.write(f"\r{line}\x1b[K")
            self.drawn = True
        elif self.said[0] != self.stage or elapsed - self.said[1] >= REPEAT_S:
            sys.stderr.write(line + "\n")
            self.said = (self.stage, elapsed)
        sys.stderr.flush()


_LOCK = threading.RLock()
_PROGRESS = Progress()


def progress() -> Progress:
    return _PROGRESS
