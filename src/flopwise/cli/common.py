"""What `flopwise MODEL` and `flopwise compare` share: options, counting a loaded model, output, exit codes."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from ..conventions import ATTENTION, PRESETS, Convention, resolve, with_attention
from ..count import MODES, count, counting, describe_inputs
from ..report import Report
from .errors import ModelError, UsageError
from .spec import Loaded

FORMATS = ("table", "json", "csv", "markdown", "html")

# Errors fake tensors raise when a model needs real data (nonzero, .item(), data-dependent shapes).
_NEEDS_DATA = {
    "DataDependentOutputException", "DynamicOutputShapeException", "UnsupportedOperatorException",
    "UnsupportedFakeTensorException", "GuardOnDataDependentSymNode", "PendingUnbackedSymbolNotFound",
}


def add_input_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("inputs")
    group.add_argument("--input", action="append", default=[], metavar="SIZES[:DTYPE]",
                       help="one positional input, e.g. 1x3x224x224 or 1x128:int64 (repeat for several)")
    group.add_argument("--tokens", metavar="BxS", help="token ids of batch B and length S, e.g. 1x128")
    group.add_argument("--batch", type=int, metavar="N", help="batch N for the model's default input")
    group.add_argument("--allow-pickle", action="store_true",
                       help="unpickle a whole module from a .pt file (runs code from the file: trusted files only)")


def add_count_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mode", choices=MODES, default="fake",
                        help="fake: shapes only (default; falls back to real when the model needs data); "
                             "real: run the model; meta: the meta device")
    parser.add_argument("--convention", choices=list(PRESETS), default="default",
                        help="how MACs and other work become FLOPs (default: 2 per MAC plus every other op)")
    parser.add_argument("--attention", choices=ATTENTION, default="dense",
                        help="dense: every query–key pair (the guides; default); masked: only the pairs the "
                             "attention masks keep (causal, sliding window, padding, BlockMask)")
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format (default table)")
    parser.add_argument("--output", "-o", metavar="FILE", help="write the output to FILE instead of stdout")
    parser.add_argument("--quiet", "-q", action="store_true", help="no notices or progress on stderr")
    parser.add_argument("--traceback", action="store_true", help="show the full traceback of errors (debugging)")


def chosen_convention(options: argparse.Namespace) -> Convention:
    """--convention with --attention applied."""
    return with_attention(resolve(options.convention), options.attention)


def notifier(quiet: bool) -> Callable[[str], None]:
    def notify(message: str) -> None:
        if not quiet:
            print(f"flopwise: {message}", file=sys.stderr)

    return notify


def count_loaded(loaded: Loaded, mode: str, convention: str | Convention, notify: Callable[[str], None]) -> Report:
    """Count with a fallback: fake mode that meets a data-dependent op counts again for real, with a notice."""
    for note in loaded.notes:
        notify(note)
    if loaded.scripted:
        return _count_scripted(loaded, convention)
    try:
        return _count(loaded, loaded.model, mode, convention)
    except ModelError as error:
        cause = error.__cause__
        if mode != "fake" or cause is None or not _needs_data(cause):
            raise
        what = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
        notify(f"{loaded.spec}: needs real data in fake mode ({what}); counting again in real mode")
        model = loaded.rebuild() if loaded.rebuild is not None else loaded.model
        return _count(loaded, model, "real", convention)


def _count(loaded: Loaded, model: torch.nn.Module, mode: str, convention: str | Convention) -> Report:
    # fake tensors log a full traceback at ERROR level before re-raising; the message below says it in one line
    fake_log = logging.getLogger("torch._subclasses.fake_tensor")
    level = fake_log.level
    fake_log.setLevel(logging.CRITICAL)
    try:
        return count(model, loaded.inputs, mode=mode, convention=convention)
    except Exception as error:
        raise ModelError(_describe_failure(loaded.spec, error)) from error
    finally:
        fake_log.setLevel(level)


def _count_scripted(loaded: Loaded, convention: str | Convention) -> Report:
    """TorchScript runs outside Python's module calls: count its ops for real, without per-module rows."""
    args = loaded.inputs if isinstance(loaded.inputs, tuple) else (loaded.inputs,)
    try:
        with torch.no_grad(), counting(convention, model=loaded.model, inputs=describe_inputs(args, {})) as session:
            loaded.model(*args)
    except Exception as error:
        raise ModelError(_describe_failure(loaded.spec, error)) from error
    return session.report


def _needs_data(error: BaseException) -> bool:
    seen: BaseException | None = error
    while seen is not None:
        if type(seen).__name__ in _NEEDS_DATA:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _describe_failure(spec: str, error: Exception) -> str:
    first = str(error).strip().splitlines()[0] if str(error).strip() else "(no message)"
    notes = [
        n.removeprefix("flopwise: ").replace("mode='real'", "--mode real")
        for n in getattr(error, "__notes__", [])
        if n.startswith("flopwise:")
    ]
    where = "; ".join(notes) if notes else "(no module recorded)"
    return f"{spec}: the model raised {type(error).__name__}: {first}\n  {where}"


def run_reporting_usage_errors(run: Callable[[argparse.Namespace], int], options: argparse.Namespace, prog: str) -> int:
    """Run a command; a UsageError becomes one line on stderr and exit code 2 (unless --traceback)."""
    try:
        return run(options)
    except UsageError as error:
        if options.traceback:
            raise
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2


def emit(text: str, options: argparse.Namespace, notify: Callable[[str], None]) -> None:
    if not options.output:
        print(text)
        return
    try:
        Path(options.output).parent.mkdir(parents=True, exist_ok=True)
        Path(options.output).write_text(text + "\n")
    except OSError as error:
        raise UsageError(f"--output {options.output}: cannot write ({error.strerror})") from None
    notify(f"wrote {options.output}")
