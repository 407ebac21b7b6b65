"""`flopwise MODEL --sweep seq=128:32768:x2 [--sweep batch=1:8:+1] [--plot FILE]`.

One symbolic count (count(..., symbolic=...): in fake and meta mode one run with the sizes symbolic, else a few
small counts; an exact polynomial fit, checks at sizes never used to fit), then every swept size from `report.at`:
where the run's guards hold, its ops costed at that size (a 64-point sweep is not 64 counts); anywhere else, a
count at that size (marked "counted"), never the polynomial extrapolated.
`batch` is dimension 0 of every input tensor; `seq` is dimension 1 of every integer input (token ids).
"""

from __future__ import annotations

import argparse
import json
import logging
from itertools import product
from pathlib import Path
from typing import Any

import torch

from ..counter import count, split_inputs
from ..render.grid import left, markdown_table, right, text_table
from ..render.units import binary_bytes, si
from ..symbolic.region import TRACED, SymbolicError
from ..symbolic.report import Evaluated, SymbolicReport
from .errors import ModelError, UsageError
from .inputs import make_inputs
from .spec import Loaded

NAMES = ("batch", "seq")
MAX_POINTS = 10_000


def add_sweep_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("sweeps (one run with symbolic sizes where it holds, counts elsewhere)")
    group.add_argument(
        "--sweep",
        action="append",
        default=[],
        metavar="NAME=START:STOP:xF|+S",
        help="batch or seq over a range: seq=128:32768:x2 (doubling), batch=1:8:+1, or seq=1,64,512",
    )
    group.add_argument("--plot", metavar="FILE", help="with --sweep: plot MACs, FLOPs and bytes to FILE (.png, .svg)")


def parse_sweep(text: str) -> tuple[str, list[int]]:
    """'seq=128:1024:x2' → ('seq', [128, 256, 512, 1024]); 'batch=1:7:+3' → ('batch', [1, 4, 7])."""
    name, sep, spec = text.partition("=")
    name = name.strip()
    usage = f"--sweep expects NAME=START:STOP:xFACTOR, NAME=START:STOP:+STEP or NAME=A,B,C, got {text!r}"
    if not sep or name not in NAMES:
        raise UsageError(f"{usage}; NAME is one of {', '.join(NAMES)}")
    parts = spec.split(":")
    try:
        if len(parts) == 1:
            values = [int(v) for v in spec.split(",")]
        elif len(parts) == 3 and parts[2][:1] in ("x", "+"):
            start, stop, step = int(parts[0]), int(parts[1]), int(parts[2][1:])
            if step < (2 if parts[2][0] == "x" else 1) or stop < start or start < 1:
                raise UsageError(f"{usage} (START ≥ 1, STOP ≥ START, a factor ≥ 2 or a step ≥ 1)")
            values = [start]
            while len(values) <= MAX_POINTS:
                following = values[-1] * step if parts[2][0] == "x" else values[-1] + step
                if following > stop:
                    break
                values.append(following)
        else:
            raise UsageError(usage)
    except ValueError:
        raise UsageError(usage) from None
    if not values or min(values) < 1 or len(values) > MAX_POINTS:
        raise UsageError(f"{usage} (sizes ≥ 1, at most {MAX_POINTS:,} of them)")
    return name, values


def symbolic_spec(inputs: Any, names: list[str]) -> dict[str, list[tuple[str | int, int]]]:
    """Where batch and seq are in the model's inputs: (keyword or position, dimension) pairs."""
    args, kwargs = split_inputs(inputs)
    tensors: list[tuple[str | int, torch.Tensor]] = [(i, a) for i, a in enumerate(args) if isinstance(a, torch.Tensor)]
    tensors += [(k, v) for k, v in kwargs.items() if isinstance(v, torch.Tensor)]
    spec: dict[str, list[tuple[str | int, int]]] = {}
    for name in names:
        if name == "batch":
            spec[name] = [(key, 0) for key, t in tensors if t.dim() >= 1]
        else:
            spec[name] = [(key, 1) for key, t in tensors if t.dim() >= 2 and not t.is_floating_point()]
        if not spec[name]:
            what = "tensor input" if name == "batch" else "integer input of 2 or more dimensions (token ids)"
            raise UsageError(f"--sweep {name}: the model's inputs have no {what}; inputs: {type(inputs).__name__}")
    return spec


def run_sweep(loaded: Loaded, options: argparse.Namespace) -> tuple[str, SymbolicReport, list[Evaluated]]:
    """The rendered sweep, the symbolic report and the points (each traced or counted)."""
    if options.format not in ("table", "markdown", "json"):
        raise UsageError(f"--sweep writes a table, markdown or json, not {options.format}")
    sweeps = dict(parse_sweep(text) for text in options.sweep)
    report = _fit(loaded, options, list(sweeps))
    points: list[Evaluated] = []
    for sizes in product(*sweeps.values()):
        chosen = dict(zip(sweeps, sizes, strict=True))
        try:
            points.append(report.at(**chosen))
        except ValueError as error:
            raise UsageError(f"--sweep: {error}") from None
        except Exception as error:  # a size counted directly, outside what the trace stands for
            where = ", ".join(f"{n}={v:,}" for n, v in chosen.items())
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ModelError(
                f"{loaded.spec}: the model raised {type(error).__name__} counted at {where}: {first}"
            ) from error
    note = _note(report, points, list(sweeps))
    if options.format == "json":
        rows = [
            {
                **p.sizes,
                "macs": p.macs,
                "flops": p.flops,
                "bytes_read": p.bytes_read,
                "bytes_written": p.bytes_written,
                "source": p.source,
            }
            for p in points
        ]
        metrics = ("macs", "flops", "bytes_read", "bytes_written", "params")
        formulas = {m: str(report.formula(m)) for m in metrics} if report.fit is not None else None
        doc = {
            "model": loaded.spec,
            "formulas": formulas,
            "region": list(report.guards),
            "refused": report.refused or None,
            "note": note,
            "points": rows,
        }
        return json.dumps(doc, indent=2), report, points
    columns = [*left(*sweeps), *right("MACs", "FLOPs", "bytes read", "bytes written", "MACs (exact)"), *left("from")]
    cells = [
        [
            *(f"{p.sizes[n]:,}" for n in sweeps),
            si(p.macs),
            si(p.flops),
            binary_bytes(p.bytes_read),
            binary_bytes(p.bytes_written),
            f"{p.macs:,}",
            p.source,
        ]
        for p in points
    ]
    table = markdown_table(columns, cells) if options.format == "markdown" else text_table(columns, cells)
    return "\n\n".join([report.formulas(), "\n".join(table), note]), report, points


def _note(report: SymbolicReport, points: list[Evaluated], names: list[str]) -> str:
    """Where the points came from, and the fit beside them."""
    traced = sum(p.source == TRACED for p in points)
    held = f" (where {', '.join(report.guards)})" if report.guards else ""
    parts = [f"{traced} size(s) costed op by op from one run with the sizes symbolic{held}"] if traced else []
    parts.append(f'{len(points) - traced} counted directly ("counted": sizes that run does not stand for)')
    how = (
        f"{report.counts} count(s) and {report.traced} traced size(s)" if report.traced else f"{report.counts} count(s)"
    )
    fit = (
        f"the exact polynomial fit in {', '.join(names)} above took {how}, {report.verified} check(s) at sizes not "
        "used to fit"
        if report.fit is not None
        else "no single polynomial holds (above)"
    )
    return f"{'; '.join(parts)}; {fit}; convention {report.convention.name!r}."


def _fit(loaded: Loaded, options: argparse.Namespace, names: list[str]) -> SymbolicReport:
    inputs = make_inputs(loaded.inputs, real=True)  # the fit resizes real example inputs (token ids are zeros)
    spec = symbolic_spec(inputs, names)
    fake_log = logging.getLogger("torch._subclasses.fake_tensor")  # it logs a traceback before re-raising
    level = fake_log.level
    fake_log.setLevel(logging.CRITICAL)
    try:
        report = count(loaded.model, inputs, mode=options.mode, convention=options.convention, symbolic=dict(spec))
    except SymbolicError as error:
        raise UsageError(f"--sweep {loaded.spec}: {error}") from None
    except Exception as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelError(f"{loaded.spec}: the model raised {type(error).__name__} while sweeping: {first}") from error
    finally:
        fake_log.setLevel(level)
    assert isinstance(report, SymbolicReport)
    return report


def sweep_plot(points: list[Evaluated], names: list[str], path: str, title: str) -> Path:
    """MACs, FLOPs and bytes against the first swept size, one line per value of any other; log-log."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise UsageError("--plot needs matplotlib: pip install matplotlib (or flopwise[plot])") from None
    figure = Figure(figsize=(8, 5.5), layout="constrained")  # no pyplot: no global state, no display needed
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    x_name, others = names[0], names[1:]
    series: dict[tuple[int, ...], list[Evaluated]] = {}
    for p in points:
        series.setdefault(tuple(p.sizes[n] for n in others), []).append(p)
    for key, line in series.items():
        suffix = "".join(f", {n}={v:,}" for n, v in zip(others, key, strict=True))
        xs = [p.sizes[x_name] for p in line]
        for metric, style in (("macs", "-o"), ("flops", "-s"), ("bytes", "-^")):
            label = {"macs": "MACs", "flops": "FLOPs", "bytes": "bytes read + written"}[metric] + suffix
            ys = [max(getattr(p, metric), 1) for p in line]
            drawn = axes.plot(xs, ys, style, markersize=3, label=label)[0]
            counted = [(x, y) for x, y, p in zip(xs, ys, line, strict=True) if p.source != TRACED]
            if counted:  # sizes the trace does not stand for: counted, drawn as open markers
                axes.plot(
                    *zip(*counted, strict=True), style[1:], markersize=7, fillstyle="none", color=drawn.get_color()
                )
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel(x_name)
    axes.set_ylabel("per forward")
    axes.set_title(f"{title}: each size traced, or counted (open markers)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=7)
    target = Path(path) if Path(path).suffix.lower() in (".png", ".svg", ".pdf") else Path(path + ".png")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(target, dpi=150)
    except OSError as error:
        raise UsageError(f"--plot {path}: cannot write ({error.strerror})") from None
    return target


def sweep_main(options: argparse.Namespace, loaded: Loaded | None, notify: Any) -> int:
    """`flopwise MODEL --sweep …`: the table (or JSON), the plot if asked; exit 0, or 1 with unsupported ops."""
    if loaded is None:
        raise UsageError("--sweep needs a MODEL (e.g. flopwise hf:config.json --tokens 1x128 --sweep seq=128:4096:x2)")
    for flag, given in (
        ("--explain", options.explain),
        ("--measure", options.measure),
        ("--per-operator", options.per_operator),
        ("--fail-if", options.fail_if),
    ):
        if given:
            raise UsageError(f"{flag} does not go with --sweep; count one size without --sweep for it")
    text, report, points = run_sweep(loaded, options)
    if options.plot:
        notify(f"wrote {sweep_plot(points, [parse_sweep(t)[0] for t in options.sweep], options.plot, loaded.spec)}")
    print(text) if not options.output else _write(text, options.output, notify)
    return 0 if report.complete else 1


def _write(text: str, path: str, notify: Any) -> None:
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text + "\n")
    except OSError as error:
        raise UsageError(f"--output {path}: cannot write ({error.strerror})") from None
    notify(f"wrote {path}")
