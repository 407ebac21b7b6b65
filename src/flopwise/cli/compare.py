"""`flopwise compare SPEC …`: several models in one table, with an optional scatter plot.

Models keep the order of the command line (a glob expands in place, in torchvision's order); ratios are
relative to the first model that was counted, named below the table. Specs may be globs (`torchvision:*` =
every classification model, `torchvision:resnet*`, `torchvision:detection/*`, `timm:resnet*`) or come from a list file
(`--list FILE`, one spec a line). A model that fails is reported in its row and the others go on.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from ..render.grid import left, markdown_table, right, text_table
from ..render.html_report import render_html_report
from ..render.tree import shows_density
from ..render.units import binary_bytes, count_text, si, si_small
from ..report.report import Report
from .common import chosen_convention, count_loaded, dtype_flag, emit, notifier, run_command, write_file
from .errors import INTERRUPTED, UsageError, exit_message
from .load import load, torchvision_families
from .load_timm import timm_names
from .plot import scatter_plot
from .spec import InputFlags, parse_spec
from .terminal import printable, progress, say, stage
from .weights import limit_bytes

COLUMNS = (
    left("Model") + right("Params", "MACs", "FLOPs", "Bytes moved", "FLOP/B", "Params ×", "FLOPs ×") + left("Note")
)
# Shown when the models differ in compression (a pruned or quantized version beside its original)
COMPRESSION_COLUMNS = right("Effective MACs", "Weight memory", "Energy (estimate)")


def compressed(reports: list[Report]) -> bool:
    """Whether some model is visibly pruned (render.tree.shows_density), or the models' weights differ in dtype (int8
    beside float32)."""
    return any(shows_density(r) for r in reports) or len({tuple(sorted(r.param_bytes)) for r in reports}) > 1


def compression_cells(r: Report) -> tuple[str, str, str]:
    """Effective MACs (zero weights skipped), weight memory and the energy estimate's low–high joules."""
    low, high = r.energy().total_j
    effective = si(r.effective_macs) if r.effective_macs is not None else "–"
    return effective, binary_bytes(r.param_memory), f"{si_small(low, 'J')}–{si_small(high, 'J')}"


@dataclass
class Outcome:
    spec: str
    report: Report | None
    error: str  # '' when counted
    seconds: float

    @property
    def note(self) -> str:
        if self.error:
            return "FAILED"
        if self.report is not None and not self.report.complete:
            return f"lower bound ({len(self.report.unsupported)} unsupported ops)"
        return ""


def main(options: argparse.Namespace) -> int:
    """`flopwise compare SPEC …`, its options parsed (options.compare_parser)."""
    return run_command(_run, options, "flopwise compare")


def _run(options: argparse.Namespace) -> int:
    specs = expand_specs(options.specs + (read_list(options.list) if options.list else []))
    if not specs:
        raise UsageError("nothing to compare: give model specs (torchvision:resnet18 …), a glob, or --list FILE")
    flags = InputFlags(
        tuple(options.input),
        options.tokens,
        options.batch,
        options.allow_pickle,
        dtype_flag(options),
        limit_bytes(options.rebuild_limit),
    )
    notices: list[str] = []  # said after the progress bar is done, so that they do not break it
    show = (options.progress or sys.stderr.isatty()) and not options.quiet
    bar = Progress(len(specs), sys.stderr if show else None)
    if show:
        progress().pause()
    outcomes: list[Outcome] = []
    interrupted = False
    for spec in specs:
        bar.update(spec)
        stage(f"counting {spec} ({len(outcomes) + 1} of {len(specs)})")
        start = time.perf_counter()
        try:
            loaded = load(spec, flags, weights=options.mode == "real")
            report = count_loaded(
                loaded, options.mode, chosen_convention(options), notices.append, shortcuts=options.shortcuts
            )
            outcomes.append(Outcome(spec, report, "", time.perf_counter() - start))
        except UsageError as error:
            outcomes.append(Outcome(spec, None, str(error), time.perf_counter() - start))
        except SystemExit as error:  # the model's code ended the process: that model failed, the others go on
            outcomes.append(Outcome(spec, None, exit_message(spec, error, "while it ran"), time.perf_counter() - start))
        except KeyboardInterrupt:  # Ctrl-C: keep the models already counted, print them, exit 130
            interrupted = True
            break
        except Exception as error:  # a bug on one model must not lose the whole zoo
            message = f"{spec}: {type(error).__name__}: {str(error).strip().splitlines()[0] if str(error) else ''}"
            outcomes.append(Outcome(spec, None, message, time.perf_counter() - start))
    bar.done(interrupted)
    notify = notifier(options.quiet)
    for notice in notices:
        notify(notice)
    failed = sum(1 for o in outcomes if o.error)
    if failed:
        say(f"flopwise compare: {failed} of {len(outcomes)} models failed (listed below the table)")
    if interrupted:
        say(f"flopwise compare: interrupted after {len(outcomes)} of {len(specs)} models; these are the finished ones")
        if not outcomes:
            return INTERRUPTED
    emit(render(outcomes, options.format), options, notify)
    if options.plot and not interrupted:
        points = [(o.spec, o.report) for o in outcomes if o.report is not None]
        for path, write in scatter_plot(points, options.plot):
            write_file(str(path), write, "--plot", notify)
    if interrupted:
        return INTERRUPTED
    return 0 if all(o.report is not None and o.report.complete for o in outcomes) else 1


def read_list(path: str) -> list[str]:
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise UsageError(f"--list {path}: cannot read ({error.strerror})") from None
    return [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]


def expand_specs(specs: list[str]) -> list[str]:
    """Expand globs: `timm:resnet*`; `torchvision:*` is the classification models, `FAMILY/PATTERN` another family."""
    expanded: list[str] = []
    for spec in specs:
        parsed = parse_spec(spec)
        if not parsed.is_glob:
            expanded.append(spec)
            continue
        if parsed.kind == "timm":
            expanded += timm_names(spec, parsed.target)
            continue
        families = torchvision_families()
        family, _, names = parsed.target.rpartition("/")
        family = family or "classification"
        if family not in families and family != "all":
            raise UsageError(f"{spec}: no torchvision family {family!r}; expected {', '.join(families)} or all")
        pool = [n for f, ns in families.items() if family in (f, "all") for n in ns]
        matches = fnmatch.filter(pool, names)
        if not matches:
            raise UsageError(f"{spec}: matches no torchvision {family} model")
        expanded += [f"torchvision:{name}" for name in matches]
    return list(dict.fromkeys(expanded))  # in order, without repeats


class Progress:
    """A one-line progress bar on a terminal (stderr), redrawn in place; silent when `stream` is None."""

    def __init__(self, total: int, stream: TextIO | None, width: int = 24) -> None:
        self.total, self.stream, self.width, self.done_count = total, stream, width, 0

    def update(self, label: str) -> None:
        if self.stream is None:
            return
        filled = self.width * self.done_count // max(self.total, 1)
        bar = "█" * filled + "·" * (self.width - filled)
        self.stream.write(printable(f"\r[{bar}] {self.done_count}/{self.total} {label[:40]:<40}", self.stream))
        self.stream.flush()
        self.done_count += 1

    def done(self, interrupted: bool = False) -> None:
        if self.stream is not None and interrupted:
            self.stream.write("\n")
        elif self.stream is not None:
            line = f"\r[{'█' * self.width}] {self.total}/{self.total} {'done':<40}\n"
            self.stream.write(printable(line, self.stream))
            self.stream.flush()


def _ratio(value: int, first: int) -> str:
    return f"{value / first:.3g}×" if first else "–"


def baseline(outcomes: list[Outcome]) -> Outcome | None:
    """The model the ratios are relative to: the first that was counted (the first given may have failed)."""
    return next((o for o in outcomes if o.report is not None), None)


def rows(outcomes: list[Outcome]) -> list[dict[str, Any]]:
    """Plain records, one per model, with ratios to the first model that was counted."""
    base = baseline(outcomes)
    first = base.report if base else None
    records = []
    for o in outcomes:
        r = o.report
        record: dict[str, Any] = {"spec": o.spec, "error": o.error, "seconds": round(o.seconds, 3)}
        if r is not None and first is not None:
            record.update(
                model=r.model,
                inputs=r.inputs,
                params=r.params,
                macs=r.macs,
                flops=r.flops,
                bytes_read=r.bytes_read,
                bytes_written=r.bytes_written,
                intensity=r.total.intensity,
                params_ratio=r.params / first.params if first.params else None,
                macs_ratio=r.macs / first.macs if first.macs else None,
                flops_ratio=r.flops / first.flops if first.flops else None,
                complete=r.complete,
                unsupported=r.unsupported,
                effective_macs=r.effective_macs,
                param_memory=r.param_memory,
                energy_j=list(r.energy().total_j),
            )
        records.append(record)
    return records


def render(outcomes: list[Outcome], fmt: str) -> str:
    if fmt == "json":
        convention = next((o.report.convention.name for o in outcomes if o.report is not None), None)
        base = baseline(outcomes)
        return json.dumps(
            {
                "schema": "flopwise/1-compare",
                "convention": convention,
                "baseline": base.spec if base else None,
                "models": rows(outcomes),
            },
            indent=2,
        )
    if fmt == "csv":
        import csv
        import io

        out = io.StringIO()
        columns = [
            "spec",
            "model",
            "inputs",
            "params",
            "macs",
            "flops",
            "bytes_read",
            "bytes_written",
            "intensity",
            "params_ratio",
            "flops_ratio",
            "effective_macs",
            "param_memory",
            "complete",
            "error",
            "seconds",
        ]
        writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows(outcomes))
        return out.getvalue()
    if fmt == "html":  # the comparison table, then a section per model that counted
        done = [o for o in outcomes if o.report is not None]
        section = {id(o): i for i, o in enumerate(done)}
        models = [
            {
                **record,
                "bytes": record.get("bytes_read", 0) + record.get("bytes_written", 0) if o.report else None,
                "section": section.get(id(o)),
            }
            for o, record in zip(outcomes, rows(outcomes), strict=True)
        ]
        base = baseline(outcomes)
        comparison = {
            "baseline": base.spec if base else None,
            "models": models,
            "convention": base.report.convention.name if base and base.report else None,
        }
        return render_html_report(
            [o.report for o in done if o.report], titles=[o.spec for o in done], comparison=comparison
        )
    return _table(outcomes, markdown=fmt == "markdown")


def _table(outcomes: list[Outcome], markdown: bool) -> str:
    base = baseline(outcomes)
    first = base.report if base else None
    extra = compressed([o.report for o in outcomes if o.report is not None])
    columns = COLUMNS[:-1] + (COMPRESSION_COLUMNS if extra else []) + COLUMNS[-1:]
    cells = []
    for o in outcomes:
        r = o.report
        if r is None or first is None:
            cells.append((o.spec, *[""] * (len(columns) - 2), o.note))
            continue
        intensity = r.total.intensity
        cells.append(
            (
                o.spec,
                count_text(r.params),
                si(r.macs),
                si(r.flops),
                binary_bytes(r.total.bytes),
                f"{intensity:.1f}" if intensity is not None else "–",
                _ratio(r.params, first.params),
                _ratio(r.flops, first.flops),
                *(compression_cells(r) if extra else ()),
                o.note,
            )
        )
    failures = [f"- {o.error.replace(chr(10) + '  ', ' — ')}" for o in outcomes if o.error]
    if base is None or first is None:
        footer = "no model was counted, so there are no ratios"
    else:
        which = "the first model" if base is outcomes[0] else "the first model that counted"
        footer = (
            f"convention: {first.convention.name}; ratios are relative to {base.spec} ({which}); "
            "FLOP/B = FLOPs per byte moved"
        )
    if markdown:
        lines = markdown_table(columns, cells)
        return "\n".join(lines + ["", footer] + (["", "Failures:", *failures] if failures else []))
    out = [*text_table(columns, cells), "", footer]
    return "\n".join(out + (["", "failures:", *failures] if failures else []))
