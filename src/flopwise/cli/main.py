"""`flopwise [MODEL] [options]`, and the entry point that hands `flopwise compare SPEC …` to compare.py.

With no model it counts the guides' three worked examples. Exit codes: 0 complete, 1 counted with
unsupported ops (the totals are a lower bound), 2 usage errors (bad spec, file, shape, flag, or a model that
raised). User mistakes get one line on stderr naming the fix, never a traceback (`--traceback` shows it).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..core.version import __version__
from ..examples import guide_examples
from ..explanation import render_explanation
from ..hardware import measure
from ..render.csv import render_csv
from ..render.dtypes import render_dtype_table
from ..render.html_report import render_html_report
from ..render.operators import render_operator_table
from ..report.report import Report
from .budget import add_budget_option, gate
from .common import (
    EXIT_CODES,
    add_count_options,
    add_input_options,
    chosen_convention,
    count_loaded,
    dtype_flag,
    emit,
    notifier,
    run_command,
)
from .compare import main as compare_main
from .diff import main as diff_main
from .errors import UsageError
from .generate import add_generate_option, generate_main
from .inputs import make_inputs
from .load import load
from .spec import FORMS, InputFlags, Loaded
from .sweep import add_sweep_options, sweep_main

UNSET = -1  # --depth not given: 2 in tables, every module in CSV, the innermost modules in explanations
EXAMPLES = """examples:
  flopwise                                      the guides' three worked examples
  flopwise torchvision:resnet50                 default input of the family (1x3x224x224)
  flopwise torchvision:inception_v3 --batch 8   8x3x299x299
  flopwise timm:convnext_tiny                   timm by name, random weights, its config's input (1x3x224x224)
  flopwise hf:path/to/config.json --tokens 1x128
  flopwise hf:meta-llama/Llama-3.1-8B --tokens 1x4096   a config already in the local Hugging Face cache
  flopwise diffusers:unet/config.json           a diffusers model from its config (UNet, DiT, AutoencoderKL)
  flopwise path/to/file.py:build --input 1x3x32x32 --input 1x10:int64
  flopwise model.pt2 --format json --output counts.json
  flopwise torchvision:resnet50 --format html -o report.html   one page to share: icicle, tables, hand calculation
  flopwise diff before.json after.json --fail-if "macs>+2%"    the change per module; exit 4 past the budget
  flopwise hf:config.json --tokens 1x128 --sweep seq=128:32768:x2 --plot seq.png   costs against length
  flopwise torchvision:vit_b_16 --depth 3 --per-operator --convention contractions
  flopwise hf:llama/config.json --dtype bf16 --by-dtype    MACs, bytes, weights and energy per dtype
  flopwise compare torchvision:resnet18 torchvision:resnet50 --plot zoo
  flopwise compare 'torchvision:*' --format markdown     every torchvision classification model
  flopwise hf:clip/config.json --input pixel_values=2x3x224x224 --tokens 2x16
  flopwise hf:llama/config.json --dtype bf16 --tokens 1x4096

""" + EXIT_CODES

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flopwise",
        description="Count the MACs, FLOPs, parameters and bytes moved of a PyTorch model, per module and "
                    "per operator. `flopwise compare --help` compares several models.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", nargs="?", metavar="MODEL",
                        help=f"{FORMS} (default: the guides' three examples)")
    parser.add_argument("--version", action="version", version=f"flopwise {__version__}")
    add_input_options(parser)
    add_count_options(parser)
    parser.add_argument("--depth", type=parse_depth, metavar="N|all", default=UNSET,
                        help="module tree depth shown (default 2 in tables; every module in CSV)")
    parser.add_argument("--per-operator", action="store_true", help="also show the per-aten-operator table")
    parser.add_argument("--shapes", action="store_true",
                        help="add each module's input and output shapes (of its first call) to the table")
    parser.add_argument("--explain", action="store_true", help="show the hand calculation of each count")
    parser.add_argument("--by-dtype", action="store_true",
                        help="also show MACs, FLOPs, bytes, weight memory and an energy estimate per compute dtype "
                             "(JSON always has them)")
    add_budget_option(parser, changes=False)
    parser.add_argument("--step", choices=("forward", "train"), default="forward",
                        help="count one forward (default) or a training step split by phase: forward, backward "
                             "(loss: the model's .loss, else the sum of its output), no optimizer")
    add_sweep_options(parser)
    add_generate_option(parser)
    measure = parser.add_argument_group("measuring (runs the model for real)")
    measure.add_argument("--measure", action="store_true", help="time the model and join times to the counts")
    measure.add_argument("--device", help="where to measure: cpu, cuda, cuda:1 (default: the model's device)")
    measure.add_argument("--peak-tflops", type=float, metavar="T", help="the device's peak TFLOP/s if unknown")
    measure.add_argument("--recalibrate", action="store_true",
                         help="measure this CPU's peaks again instead of using the cached calibration")
    return parser


def parse_depth(text: str) -> int | None:
    if text == "all":
        return None
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expects a depth like 2 (0 = the total only) or 'all', got {text!r}")
    return int(text)


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
        return compare_main(argv[1:])
    if argv[:1] == ["diff"]:
        return diff_main(argv[1:])
    return run_command(_run, build_parser().parse_args(argv), "flopwise")


def _run(options: argparse.Namespace) -> int:
    notify = notifier(options.quiet)
    if options.explain and options.format == "csv":
        raise UsageError("--explain goes with --format table, markdown or json, not csv")
    if options.shapes and options.format not in ("table", "markdown"):
        raise UsageError(f"--shapes adds columns to --format table or markdown, not {options.format} (JSON always "
                         "has each module's input_shapes and output_shapes)")
    if options.by_dtype and options.format in ("csv", "html"):
        raise UsageError(f"--by-dtype goes with --format table or markdown (json always has by_dtype), "
                         f"not {options.format}")
    flags = InputFlags(tuple(options.input), options.tokens, options.batch, options.allow_pickle, dtype_flag(options))
    counted: list[Counted] = []
    if options.plot and not options.sweep:
        raise UsageError("--plot goes with --sweep (flopwise compare --plot FILE plots several models)")
    if options.sweep:
        return sweep_main(options, _torch_model(load(options.model, flags), "--sweep") if options.model else None,
                          notify)
    if options.model is None:
        if flags != InputFlags():
            raise UsageError("--input, --tokens, --batch and --dtype need a MODEL (the guides' examples have theirs)")
        for example in guide_examples():
            loaded = Loaded(f"guides:{example.name}", example.model, example.inputs)
            report = count_loaded(loaded, options.mode, chosen_convention(options), notify, options.step,
                                  options.shortcuts)
            title = f"{example.name} — the guide counts {example.macs:,} MACs by hand"
            counted.append(_extras(Counted(title, report, {}), loaded, options, notify))
    else:
        loaded = load(options.model, flags)
        if options.generate is not None or options.measure:
            _torch_model(loaded, "--generate" if options.generate is not None else "--measure")
        if options.generate is not None:
            return generate_main(loaded, options, notify)
        report = count_loaded(loaded, options.mode, chosen_convention(options), notify, options.step,
                                  options.shortcuts)
        counted.append(_extras(Counted("", report, {}), loaded, options, notify))
    emit(_render(counted, options), options, notify)
    return gate(options.fail_if, [c.report for c in counted], 0 if all(c.report.complete for c in counted) else 1,
                notify)


def _torch_model(loaded: Loaded, flag: str) -> Loaded:
    """`loaded`, when it is a PyTorch model that `flag` can run; an .onnx file is counted from its graph only."""
    if loaded.counter is not None:
        raise UsageError(f"{loaded.spec}: {flag} needs a PyTorch model; an .onnx file is counted from its graph only")
    return loaded


def _extras(item: Counted, loaded: Loaded, options: argparse.Namespace, notify: Callable[[str], None]) -> Counted:
    if options.explain:
        fmt = "markdown" if options.format == "markdown" else "text"
        item.extra["explanation"] = render_explanation(
            item.report, depth=None if options.depth == UNSET else options.depth, fmt=fmt
        )
    if options.measure:
        model = loaded.model
        if any(p.is_meta for p in model.parameters()):
            if loaded.rebuild is None:
                raise UsageError(f"{loaded.spec}: --measure needs real weights; this model is on the meta device")
            notify(f"{loaded.spec}: built again with random weights to measure it (times do not depend on the "
                   "values of the weights)")
            model = loaded.rebuild()
        inputs = make_inputs(loaded.inputs, real=True)
        try:
            with _quiet_stderr(options.quiet):  # the profiler's C++ side prints to fd 2 (e.g. on CPU-only runs)
                item.measurement = measure(model, inputs, device=options.device, peak_tflops=options.peak_tflops,
                                           recalibrate=options.recalibrate)
        except (ValueError, RuntimeError) as error:
            raise UsageError(f"{loaded.spec}: --measure failed: {error}") from None
        item.extra["measurement"] = item.measurement.table()
    return item


@contextlib.contextmanager
def _quiet_stderr(quiet: bool) -> Iterator[None]:
    """With --quiet, file descriptor 2 points at /dev/null for the block: C++ libraries write there directly."""
    if not quiet:
        yield
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _with_times(text: str, counted: list[Counted], per_operator: bool) -> str:
    """CSV rows joined to the measured times: seconds, share and FLOP/s per module (or per operator)."""
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows:
        return text
    times: dict[tuple[str, str], Any] = {}
    for item in counted:
        if item.measurement is not None:
            measured = item.measurement.operators() if per_operator else item.measurement.modules(depth=None)
            times.update({(item.report.model, r.name): r for r in measured})
    key = "operator" if per_operator else "module"
    out = io.StringIO()
    writer = csv.DictWriter(out, [*rows[0], "seconds", "share", "flops_per_s"], lineterminator="\n")
    writer.writeheader()
    for row in rows:
        timed = times.get((row.get("model", ""), row.get(key, "")))
        extra = {"seconds": timed.seconds, "share": timed.share, "flops_per_s": timed.flops_per_s} if timed else {}
        writer.writerow({**row, **extra})
    return out.getvalue()


def _render(counted: list[Counted], options: argparse.Namespace) -> str:
    table_depth = 2 if options.depth == UNSET else options.depth
    data_depth = None if options.depth == UNSET else options.depth
    if options.format == "json":
        docs = []
        for item in counted:
            doc = item.report.to_dict()
            if item.measurement is not None:
                doc["measurement"] = item.measurement.to_dict()
            if "explanation" in item.extra:
                doc["explanation"] = item.extra["explanation"]
            docs.append(doc)
        return json.dumps(docs[0] if len(docs) == 1 else docs, indent=2)
    if options.format == "html":  # one page, a section per model, the hand calculation always included
        return render_html_report([c.report for c in counted], [c.measurement for c in counted],
                                  [c.title or c.report.model for c in counted])
    if options.format == "csv":
        text = render_csv([c.report for c in counted], depth=data_depth, per_operator=options.per_operator)
        return _with_times(text, counted, options.per_operator) if options.measure else text
    parts = []
    for item in counted:
        if options.format == "markdown":
            heading = [f"## {item.title}", ""] if item.title else []
            body = item.report.to_markdown(depth=table_depth, per_operator=options.per_operator, shapes=options.shapes)
            if options.by_dtype:
                body += "\n\n" + render_dtype_table(item.report, markdown=True)
        else:
            heading = [f"# {item.title}"] if item.title else []
            body = item.report.table(depth=table_depth, shapes=options.shapes)
            if options.per_operator:
                body += "\n\n" + render_operator_table(item.report)
            if options.by_dtype:
                body += "\n\n" + render_dtype_table(item.report)
        parts.append("\n".join([*heading, "\n\n".join([body, *item.extra.values()])]))
    return "\n\n".join(parts)

