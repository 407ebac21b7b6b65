"""What `flopwise MODEL` and `flopwise compare` share: options, counting a loaded model, output, exit codes.

The console script starts without the package root's API (see flopwise/__init__.py), so the renderers, the
explanation and the training step, which register themselves with Report and count() when imported, are imported
here, by every command that counts.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .. import explanation, render, train  # noqa: F401 - register Report's views and step="train" (see above)
from ..core.conventions import Convention, resolve, with_attention
from ..counter import count, counting
from ..engine.prepare import describe_inputs
from ..report.report import Report
from ..shapes_only.values import NeedsData
from .errors import COMPLETE, INTERNAL_ERROR, INTERRUPTED, USER_ERROR, ModelError, UsageError, exit_message, unwritable
from .failures import describe_failure, needs_data, raised_by_flopwise
from .inputs import FLOAT_DTYPES, make_inputs, parse_dtype
from .options import EXIT_CODES as EXIT_CODES
from .spec import Loaded
from .terminal import printable, say, stage
from .weights import REBUILD_LIMIT as REBUILD_LIMIT
from .weights import rebuilt


def dtype_flag(options: argparse.Namespace) -> torch.dtype | None:
    return parse_dtype(options.dtype, "--dtype", FLOAT_DTYPES) if options.dtype else None


def chosen_convention(options: argparse.Namespace) -> Convention:
    """--convention with --attention applied."""
    return with_attention(resolve(options.convention), options.attention)


def notifier(quiet: bool) -> Callable[[str], None]:
    def notify(message: str) -> None:
        if not quiet:
            say(f"flopwise: {message}")

    return notify


# — counting a loaded model —


def count_loaded(
    loaded: Loaded,
    mode: str,
    convention: str | Convention,
    notify: Callable[[str], None],
    step: str = "forward",
    shortcuts: bool = True,
) -> Report:
    """Count with a fallback: a shapes-only count that meets a data-dependent op counts again for real."""
    stage(f"counting {loaded.spec}")
    for note in loaded.notes:
        notify(note)
    if loaded.scripted:
        return _count_scripted(loaded, convention)
    if loaded.counter is not None:  # an .onnx, .pte or .tflite file: counted from its graph, whatever the mode
        if step != "forward":
            raise UsageError(f"{loaded.spec}: --step {step} needs a PyTorch model; this graph file has no backward")
        report = loaded.counter(resolve(convention))
    else:
        report = _count_module(loaded, mode, convention, step, shortcuts)
    for warning in report.warnings:  # in the report too; said on stderr like the notes
        notify(f"{loaded.spec}: {warning}")
    return report


def _count_module(loaded: Loaded, mode: str, convention: str | Convention, step: str, shortcuts: bool) -> Report:
    try:
        return _count_with_weights(loaded, loaded.inputs, mode, convention, step, shortcuts)
    except ModelError as error:  # the default image does not suit a multimodal model: its text path, said so
        if loaded.text_only is None or raised_by_flopwise(error.__cause__ or error) or needs_data(error):
            raise
        try:
            report = _count_with_weights(loaded, loaded.text_only, mode, convention, step, shortcuts)
        except ModelError as text_error:  # the text alone fails too: the default inputs' failure is the one to tell
            error.add_note(f"the inputs without the image failed too: {str(text_error).splitlines()[0]}")
            raise error from error.__cause__
        first = str(error.__cause__ or error).strip().splitlines()[0]
        said = (
            f"the default image input did not suit the model ({first}); counted its text path alone "
            "(the inputs without the image): to count an image, pass the inputs its forward needs with --input"
        )
        return dataclasses.replace(report, warnings=[said, *report.warnings])


def _count_with_weights(
    loaded: Loaded, inputs: Any, mode: str, convention: str | Convention, step: str, shortcuts: bool = True
) -> Report:
    """A count; one that needs data in a shape-only mode counts again in real mode (rebuilt with random weights)."""
    try:
        report = _count(
            loaded, loaded.model, make_inputs(inputs, real=mode == "real"), mode, convention, step, shortcuts
        )
    except ModelError as error:
        cause = error.__cause__
        if mode == "real" or cause is None or not needs_data(cause):
            raise
        what = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
        try:
            model = rebuilt(loaded, "for a real count") if loaded.rebuild is not None else loaded.model
        except UsageError as refused:  # too large: the count that needed data is the failure to tell, then why
            raise ModelError(f"{error}\n  {str(refused).removeprefix(loaded.spec + ': ')}") from cause
        random = " (built again with random weights)" if loaded.rebuild is not None else ""
        report = _count(loaded, model, make_inputs(inputs, real=True), "real", convention, step, shortcuts)
        # in the report (JSON, tables), not only on stderr: the data-dependent path followed these weights
        said = f"needs real data without it ({what}); counting again in real mode{random}"
        report = dataclasses.replace(report, warnings=[said, *report.warnings])
    return report


def _count(
    loaded: Loaded,
    model: torch.nn.Module,
    inputs: Any,
    mode: str,
    convention: str | Convention,
    step: str = "forward",
    shortcuts: bool = True,
) -> Report:
    # fake tensors log a full traceback at ERROR level before re-raising; the message below says it in one line
    fake_log = logging.getLogger("torch._subclasses.fake_tensor")
    level = fake_log.level
    fake_log.setLevel(logging.CRITICAL)
    try:
        if step != "forward":  # a training step counts on copies, with no shortcut
            return count(model, inputs, mode=mode, convention=convention, step=step)
        return count(model, inputs, mode=mode, convention=convention, shortcuts=shortcuts)
    except SystemExit as error:
        raise ModelError(exit_message(loaded.spec, error, "in its forward")) from None
    except Exception as error:
        if raised_by_flopwise(error) and not isinstance(error, NeedsData):  # NeedsData: the model's data path
            raise
        raise ModelError(describe_failure(loaded, error)) from error
    finally:
        fake_log.setLevel(level)


def _count_scripted(loaded: Loaded, convention: str | Convention) -> Report:
    """TorchScript runs outside Python's module calls: count its ops for real, without per-module rows."""
    inputs = make_inputs(loaded.inputs, real=True)
    args = inputs if isinstance(inputs, tuple) else (inputs,)
    try:
        with torch.no_grad(), counting(convention, model=loaded.model, inputs=describe_inputs(args, {})) as session:
            loaded.model(*args)
    except SystemExit as error:
        raise ModelError(exit_message(loaded.spec, error, "in its forward")) from None
    except Exception as error:
        raise ModelError(describe_failure(loaded, error)) from error
    return session.report


# — output and exit codes —


def run_command(run: Callable[[argparse.Namespace], int], options: argparse.Namespace, prog: str) -> int:
    """Run a command; every way it can end becomes the documented exit code (EXIT_CODES), never a stray traceback."""
    try:
        return run(options)
    except UsageError as error:
        if options.traceback:
            traceback.print_exc()
        say(f"{prog}: error: {error}")
        return USER_ERROR
    except SystemExit as error:  # the model's code ended the process (in --measure, --generate, --sweep…)
        say(f"{prog}: error: {exit_message(getattr(options, 'model', None) or 'the model', error, 'while it ran')}")
        return USER_ERROR
    except KeyboardInterrupt:
        say(f"{prog}: interrupted")
        return INTERRUPTED
    except BrokenPipeError:  # the reader went away (`flopwise … | head`): nothing more to say, quietly
        _silence_stdout()
        return COMPLETE
    except Exception as error:
        if options.traceback:
            traceback.print_exc()
        first = str(error).strip().splitlines()[0] if str(error).strip() else "(no message)"
        hint = "" if options.traceback else "; --traceback shows where"
        say(f"{prog}: internal error: {type(error).__name__}: {first} (a bug in flopwise, please report it{hint})")
        return INTERNAL_ERROR


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that Python's flush at exit does not complain about the closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def write_file(path: str, write: Callable[[Path], object], flag: str, notify: Callable[[str], None]) -> None:
    """Write one output file, saying 'replaced' when it existed before."""
    target = Path(path)
    problem = unwritable(path, flag)
    if problem is not None:
        raise UsageError(problem)
    existed = target.exists()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write(target)
    except OSError as error:
        raise UsageError(f"{flag} {path}: cannot write ({error.strerror or error})") from None
    notify(f"{'replaced' if existed else 'wrote'} {path}")


def emit(text: str, options: argparse.Namespace, notify: Callable[[str], None]) -> None:
    """The output: to stdout (degraded to ASCII if it must be; a closed pipe ends quietly) or to --output as UTF-8."""
    if options.output:
        write_file(options.output, lambda p: p.write_text(text + "\n", encoding="utf-8"), "--output", notify)
        return
    try:
        print(printable(text, sys.stdout))
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    except OSError as error:  # a full disk (ENOSPC), a quota: the output is lost, which the user must hear
        _silence_stdout()  # else Python's own flush at exit fails again, with a traceback and exit code 120
        raise UsageError(f"cannot write the output to stdout ({error.strerror or error})") from None
