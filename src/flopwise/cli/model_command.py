"""`flopwise [MODEL] [options]`, its options parsed by options.py (main.py is the entry point).

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
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..examples import guide_examples
from ..explanation import render_explanation
from ..hardware import measure
from ..render.csv import render_csv
from ..render.dtypes import render_dtype_table
from ..render.html_report import render_html_report
from ..render.operators import render_operator_table
from ..report.report import Report
from .budget import gate
from .common import (
    chosen_convention,
    count_loaded,
    dtype_flag,
    emit,
    notifier,
    run_command,
)
from .errors import UsageError
from .generate import generate_main
from .inputs import make_inputs
from .load import load
from .load_hf import position_limits
from .options import UNSET
from .parallel_plans import plans_main
from .spec import InputFlags, Loaded
from .sweep import parse_sweep, sweep_main
from .terminal import stage
from .weights import limit_bytes, rebuilt, seeded

# — one model or the guides' three —


@dataclass
class Counted:
    title: str
    report: Report
    extra: dict[str, str]  # rendered additions: explanation, measurement
    measurement: Any = None


def main(options: argparse.Namespace) -> int:
    """`flopwise [MODEL] [options]`, its options parsed (options.build_parser)."""
    return run_command(_run, options, "flopwise")


def _run(options: argparse.Namespace) -> int:
    notify = notifier(options.quiet)
    flags = InputFlags(
        tuple(options.input),
        options.tokens,
        options.batch,
        options.allow_pickle,
        dtype_flag(options),
        limit_bytes(options.rebuild_limit),
    )
    counted: list[Counted] = []
    if options.model is not None:
        stage(f"loading {options.model}")
    if options.sweep:
        loaded = _torch_model(load(options.model, flags), "--sweep") if options.model else None
        if loaded is not None and loaded.spec.startswith("hf:"):
            _sweep_within_positions(loaded, options.sweep)
        return sweep_main(options, loaded, notify)
    if options.model is None:
        with seeded():  # the examples' random weights: the same tables every run
            examples = guide_examples()
        for example in examples:
            loaded = Loaded(f"guides:{example.name}", example.model, example.inputs)
            report = count_loaded(
                loaded, options.mode, chosen_convention(options), notify, options.step, options.shortcuts
            )
            title = f"{example.name} — the guide counts {example.macs:,} MACs by hand"
            counted.append(_extras(Counted(title, report, {}), loaded, options, notify))
    else:
        loaded = load(options.model, flags, weights=options.mode == "real")
        if options.generate is not None or options.measure:
            _torch_model(loaded, "--generate" if options.generate is not None else "--measure")
        if options.generate is not None:
            return generate_main(loaded, options, notify)
        if options.parallel:
            return plans_main(_torch_model(loaded, "--parallel"), options, notify)
        report = count_loaded(loaded, options.mode, chosen_convention(options), notify, options.step, options.shortcuts)
        counted.append(_extras(Counted("", report, {}), loaded, options, notify))
    stage("writing the output")
    emit(_render(counted, options), options, notify)
    return gate(
        options.fail_if, [c.report for c in counted], 0 if all(c.report.complete for c in counted) else 1, notify
    )


def _sweep_within_positions(loaded: Loaded, sweeps: list[str]) -> None:
    """A seq sweep goes no further than a direct count would: the model's positions (max_position_embeddings)."""
    lengths = [size for text in sweeps for name, sizes in [parse_sweep(text)] if name == "seq" for size in sizes]
    for positions, key in position_limits(loaded.model) if lengths else []:
        if max(lengths) > positions:
            raise UsageError(
                f"{loaded.spec}: --sweep seq reaches {max(lengths):,} tokens, past the model's "
                f"{positions:,} positions ({key} in the config), which a direct count refuses too; "
                f"sweep to at most {positions:,}, or raise {key} to count longer sequences"
            )


def _torch_model(loaded: Loaded, flag: str) -> Loaded:
    """`loaded`, when it is a PyTorch model that `flag` can run; an .onnx, .pte or .tflite file is a graph only."""
    if loaded.counter is not None:
        raise UsageError(f"{loaded.spec}: {flag} needs a PyTorch model; this file is counted from its graph only")
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
            model = rebuilt(loaded, "to measure it")
            notify(
                f"{loaded.spec}: built again with random weights to measure it (times do not depend on the "
                "values of the weights)"
            )
        inputs = make_inputs(loaded.inputs, real=True)
        stage(f"measuring {loaded.spec}")
        try:
            with _library_stderr(options.verbose, notify):
                item.measurement = measure(
                    model,
                    inputs,
                    device=options.device,
                    peak_tflops=options.peak_tflops,
                    recalibrate=options.recalibrate,
                )
        except (ValueError, RuntimeError) as error:
            raise UsageError(f"{loaded.spec}: --measure failed: {error}") from None
        item.extra["measurement"] = item.measurement.table(depth=2 if options.depth == UNSET else options.depth)
    return item


@contextlib.contextmanager
def _library_stderr(verbose: bool, notify: Callable[[str], None]) -> Iterator[None]:
    """Unless --verbose, what libraries print on stderr while a model is measured is left out: the profiler's C++
    side writes to file descriptor 2 directly ('ERROR … gpuGetDeviceCount failed' and its start and stop lines on a
    CPU-only machine), so fd 2 points at /dev/null for the block, while Python's sys.stderr (notices, the progress
    line) keeps the real one; Python warnings are said as notices after it."""
    if verbose:
        yield
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    python_stderr = sys.stderr
    os.dup2(devnull, 2)
    sys.stderr = os.fdopen(saved, "w", encoding=python_stderr.encoding, errors="replace", closefd=False)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            yield
    finally:
        sys.stderr.flush()
        sys.stderr = python_stderr
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    for warning in dict.fromkeys(str(w.message) for w in caught):
        notify(f"warning while measuring: {warning}")


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
        return render_html_report(
            [c.report for c in counted], [c.measurement for c in counted], [c.title or c.report.model for c in counted]
        )
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
