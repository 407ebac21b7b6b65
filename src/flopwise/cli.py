"""Command line: `flopwise [MODEL] [options]` and `flopwise compare SPEC …`.

With no model it counts the guides' three worked examples. Exit codes: 0 complete, 1 counted with
unsupported ops (the totals are a lower bound), 2 usage errors (bad spec, file, shape, flag, or a model that
raised). User mistakes get one line on stderr naming the fix, never a traceback (`--traceback` shows it).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from . import __version__
from .conventions import PRESETS
from .count import MODES, count, counting, describe_inputs
from .inputs import UsageError, run_reporting_usage_errors
from .load import InputFlags, Loaded, load
from .report import Report
from .shadow import NeedsData

FORMATS = ("table", "json", "csv", "markdown")
UNSET = -1  # --depth not given: 2 in tables, every module in CSV, the innermost modules in explanations
EXAMPLES = """examples:
  flopwise                                      the guides' three worked examples
  flopwise torchvision:resnet50                 default input of the family (1x3x224x224)
  flopwise torchvision:inception_v3 --batch 8   8x3x299x299
  flopwise hf:path/to/config.json --tokens 1x128
  flopwise path/to/file.py:build --input 1x3x32x32 --input 1x10:int64
  flopwise model.pt2 --format json --output counts.json
  flopwise torchvision:vit_b_16 --depth 3 --per-operator --convention contractions
  flopwise compare torchvision:resnet18 torchvision:resnet50 --plot zoo
  flopwise compare 'torchvision:*' --format markdown     every torchvision classification model

exit codes: 0 complete count, 1 counted but some ops have no known cost (a lower bound), 2 usage error
"""

# Errors fake tensors raise when a model needs real data (nonzero, .item(), data-dependent shapes).
_NEEDS_DATA = {
    "DataDependentOutputException", "DynamicOutputShapeException", "UnsupportedOperatorException",
    "UnsupportedFakeTensorException", "GuardOnDataDependentSymNode", "PendingUnbackedSymbolNotFound", "NeedsData",
}


class ModelError(UsageError):
    """The model raised while being counted; the message names the module and the input shapes."""


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
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format (default table)")
    parser.add_argument("--output", "-o", metavar="FILE", help="write the output to FILE instead of stdout")
    parser.add_argument("--quiet", "-q", action="store_true", help="no notices or progress on stderr")
    parser.add_argument("--traceback", action="store_true", help="show the full traceback of errors (debugging)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flopwise",
        description="Count the MACs, FLOPs, parameters and bytes moved of a PyTorch model, per module and "
                    "per operator. `flopwise compare --help` compares several models.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", nargs="?", metavar="MODEL",
                        help="torchvision:NAME, hf:config.json, file.py:NAME, file.pt2, file.pt or guides:NAME "
                             "(default: the guides' three examples)")
    parser.add_argument("--version", action="version", version=f"flopwise {__version__}")
    add_input_options(parser)
    add_count_options(parser)
    parser.add_argument("--depth", type=parse_depth, metavar="N|all", default=UNSET,
                        help="module tree depth shown (default 2 in tables; every module in CSV)")
    parser.add_argument("--per-operator", action="store_true", help="also show the per-aten-operator table")
    parser.add_argument("--explain", action="store_true", help="show the hand calculation of each count")
    measure = parser.add_argument_group("measuring (runs the model for real)")
    measure.add_argument("--measure", action="store_true", help="time the model and join times to the counts")
    measure.add_argument("--device", help="where to measure: cpu, cuda, cuda:1 (default: the model's device)")
    measure.add_argument("--peak-tflops", type=float, metavar="T", help="the device's peak TFLOP/s if unknown")
    return parser


def parse_depth(text: str) -> int | None:
    if text == "all":
        return None
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expects a depth like 2 (0 = the total only) or 'all', got {text!r}")
    return int(text)


def notifier(quiet: bool) -> Callable[[str], None]:
    def notify(message: str) -> None:
        if not quiet:
            print(f"flopwise: {message}", file=sys.stderr)

    return notify


# — counting a loaded model —


def count_loaded(loaded: Loaded, mode: str, convention: str, notify: Callable[[str], None]) -> Report:
    """Count with a fallback: fake mode that meets a data-dependent op counts again for real, with a notice."""
    for note in loaded.notes:
        notify(note)
    if loaded.scripted:
        return _count_scripted(loaded, convention)
    try:
        report = _count(loaded, loaded.model, mode, convention)
        for warning in report.warnings:  # also in the report; said on stderr like the notes
            notify(f"{loaded.spec}: {warning}")
        return report
    except ModelError as error:
        cause = error.__cause__
        if mode == "real" or cause is None or not _needs_data(cause):
            raise
        if loaded.rebuild is None and any(p.is_meta for p in loaded.model.parameters()):
            raise  # no weights to run with: the message says why in one line
        what = _what_needed(cause)
        notify(f"{loaded.spec}: needs real data in {mode} mode ({what}); counting again in real mode")
        model = loaded.rebuild() if loaded.rebuild is not None else loaded.model
        report = _count(loaded, model, "real", convention)
        said = f"counted in real mode: the shape-only count met a value that depends on the data ({what})"
        if loaded.rebuild_note:
            said += f"; {loaded.rebuild_note}"
        return dataclasses.replace(report, warnings=(said, *report.warnings))


def _count(loaded: Loaded, model: torch.nn.Module, mode: str, convention: str) -> Report:
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


def _count_scripted(loaded: Loaded, convention: str) -> Report:
    """TorchScript runs outside Python's module calls: count its ops for real, without per-module rows."""
    args = loaded.inputs if isinstance(loaded.inputs, tuple) else (loaded.inputs,)
    try:
        with torch.no_grad(), counting(convention, model=loaded.model, inputs=describe_inputs(args, {})) as session:
            loaded.model(*args)
    except Exception as error:
        raise ModelError(_describe_failure(loaded.spec, error)) from error
    return session.report


def _what_needed(error: BaseException) -> str:
    if isinstance(error, NeedsData):
        return f"{error.op} in module {error.module or '(root)'!r}"
    return str(error).splitlines()[0] if str(error) else type(error).__name__


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


# — one model or the guides' three —


@dataclass
class Counted:
    title: str
    report: Report
    extra: dict[str, str]  # rendered additions: explanation, measurement
    measurement: Any = None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["compare"]:
        from .compare import main as compare_main

        return compare_main(argv[1:])
    return run_reporting_usage_errors(_run, build_parser().parse_args(argv), "flopwise")


def _run(options: argparse.Namespace) -> int:
    notify = notifier(options.quiet)
    if options.explain and options.format == "csv":
        raise UsageError("--explain goes with --format table, markdown or json, not csv")
    flags = InputFlags(tuple(options.input), options.tokens, options.batch, options.allow_pickle)
    counted: list[Counted] = []
    if options.model is None:
        if flags != InputFlags():
            raise UsageError("--input, --tokens and --batch need a MODEL (the guides' examples have their own)")
        from .examples import guide_examples

        for example in guide_examples():
            loaded = Loaded(f"guides:{example.name}", example.model, example.inputs)
            report = count_loaded(loaded, options.mode, options.convention, notify)
            title = f"{example.name} — the guide counts {example.macs:,} MACs by hand"
            counted.append(_extras(Counted(title, report, {}), loaded, options))
    else:
        loaded = load(options.model, flags)
        report = count_loaded(loaded, options.mode, options.convention, notify)
        counted.append(_extras(Counted("", report, {}), loaded, options))
    emit(_render(counted, options), options, notify)
    return 0 if all(c.report.complete for c in counted) else 1


def _extras(item: Counted, loaded: Loaded, options: argparse.Namespace) -> Counted:
    if options.explain:
        try:
            from .explain import render_explanation
        except ImportError:
            raise UsageError("--explain is not available in this version of flopwise") from None
        fmt = "markdown" if options.format == "markdown" else "text"
        item.extra["explanation"] = render_explanation(
            item.report, depth=None if options.depth == UNSET else options.depth, fmt=fmt
        )
    if options.measure:
        if any(p.is_meta for p in loaded.model.parameters()):
            raise UsageError(f"{loaded.spec}: --measure needs real weights; this model is built on the meta device")
        try:
            from .measure import measure
        except ImportError:
            raise UsageError("--measure is not available in this version of flopwise") from None
        try:
            item.measurement = measure(loaded.model, loaded.inputs, device=options.device,
                                       peak_tflops=options.peak_tflops)
        except (ValueError, RuntimeError) as error:
            raise UsageError(f"{loaded.spec}: --measure failed: {error}") from None
        item.extra["measurement"] = item.measurement.table()
    return item


def _render(counted: list[Counted], options: argparse.Namespace) -> str:
    table_depth = 2 if options.depth == UNSET else options.depth
    data_depth = None if options.depth == UNSET else options.depth
    if options.format == "json":
        import json

        docs = []
        for item in counted:
            doc = item.report.to_dict()
            if item.measurement is not None:
                doc["measurement"] = item.measurement.to_dict()
            if "explanation" in item.extra:
                doc["explanation"] = item.extra["explanation"]
            docs.append(doc)
        return json.dumps(docs[0] if len(docs) == 1 else docs, indent=2)
    if options.format == "csv":
        from .render.csv import render_csv

        return render_csv([c.report for c in counted], depth=data_depth, per_operator=options.per_operator)
    parts = []
    for item in counted:
        if options.format == "markdown":
            heading = [f"## {item.title}", ""] if item.title else []
            body = item.report.to_markdown(depth=table_depth, per_operator=options.per_operator)
        else:
            heading = [f"# {item.title}"] if item.title else []
            body = item.report.table(depth=table_depth)
            if options.per_operator:
                from .render.operators import render_operator_table

                body += "\n\n" + render_operator_table(item.report)
        parts.append("\n".join([*heading, "\n\n".join([body, *item.extra.values()])]))
    return "\n\n".join(parts)


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


if __name__ == "__main__":
    sys.exit(main())
