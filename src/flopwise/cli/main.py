"""`flopwise [MODEL] [options]`, and the entry point that hands `flopwise compare SPEC …` to compare.py.

With no model it counts the guides' three worked examples. Exit codes: 0 complete, 1 counted with
unsupported ops (the totals are a lower bound), 2 usage errors (bad spec, file, shape, flag, or a model that
raised). User mistakes get one line on stderr naming the fix, never a traceback (`--traceback` shows it).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from typing import Any

from ..examples import guide_examples
from ..explain import render_explanation
from ..measure import measure
from ..render.csv import render_csv
from ..render.html_report import render_html_report
from ..render.operators import render_operator_table
from ..report import Report
from ..version import __version__
from .budget import add_budget_option, gate
from .common import (
    add_count_options,
    add_input_options,
    chosen_convention,
    count_loaded,
    emit,
    notifier,
    run_reporting_usage_errors,
)
from .compare import main as compare_main
from .diff import main as diff_main
from .errors import UsageError
from .generate import add_generate_option, generate_main
from .load import load
from .spec import InputFlags, Loaded

UNSET = -1  # --depth not given: 2 in tables, every module in CSV, the innermost modules in explanations
EXAMPLES = """examples:
  flopwise                                      the guides' three worked examples
  flopwise torchvision:resnet50                 default input of the family (1x3x224x224)
  flopwise torchvision:inception_v3 --batch 8   8x3x299x299
  flopwise hf:path/to/config.json --tokens 1x128
  flopwise path/to/file.py:build --input 1x3x32x32 --input 1x10:int64
  flopwise model.pt2 --format json --output counts.json
  flopwise torchvision:resnet50 --format html -o report.html   one page to share: icicle, tables, hand calculation
  flopwise diff before.json after.json --fail-if "macs>+2%"    the change per module; exit 4 past the budget
  flopwise torchvision:vit_b_16 --depth 3 --per-operator --convention contractions
  flopwise compare torchvision:resnet18 torchvision:resnet50 --plot zoo
  flopwise compare 'torchvision:*' --format markdown     every torchvision classification model

exit codes: 0 complete count, 1 counted but some ops have no known cost (a lower bound), 2 usage error
  4    a --fail-if budget is broken (before 1: the gate fails whether or not the count is complete)
"""

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
    add_budget_option(parser, changes=False)
    add_generate_option(parser)
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
        for example in guide_examples():
            loaded = Loaded(f"guides:{example.name}", example.model, example.inputs)
            report = count_loaded(loaded, options.mode, chosen_convention(options), notify)
            title = f"{example.name} — the guide counts {example.macs:,} MACs by hand"
            counted.append(_extras(Counted(title, report, {}), loaded, options))
    else:
        loaded = load(options.model, flags)
        if options.generate is not None:
            return generate_main(loaded, options, notify)
        report = count_loaded(loaded, options.mode, chosen_convention(options), notify)
        counted.append(_extras(Counted("", report, {}), loaded, options))
    emit(_render(counted, options), options, notify)
    return gate(options.fail_if, [c.report for c in counted], 0 if all(c.report.complete for c in counted) else 1,
                notify)


def _extras(item: Counted, loaded: Loaded, options: argparse.Namespace) -> Counted:
    if options.explain:
        fmt = "markdown" if options.format == "markdown" else "text"
        item.extra["explanation"] = render_explanation(
            item.report, depth=None if options.depth == UNSET else options.depth, fmt=fmt
        )
    if options.measure:
        if any(p.is_meta for p in loaded.model.parameters()):
            raise UsageError(f"{loaded.spec}: --measure needs real weights; this model is built on the meta device")
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
                body += "\n\n" + render_operator_table(item.report)
        parts.append("\n".join([*heading, "\n\n".join([body, *item.extra.values()])]))
    return "\n\n".join(parts)

