"""The comparison scatter plot: FLOPs against parameters, log-log, one labelled point per model (matplotlib)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import UsageError
from .spec import parse_spec

if TYPE_CHECKING:
    from ..report.report import Report


def scatter_plot(points: list[tuple[str, Report]], path: str) -> list[tuple[Path, Callable[[Path], object]]]:
    """The plot as PNG and SVG files at `path` (its suffix, if any, is replaced): (file, a function writing it)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise UsageError("--plot needs matplotlib: pip install matplotlib (or flopwise[plot])") from None
    if not points:
        raise UsageError("--plot: no model was counted, so there is nothing to plot")
    figure = Figure(figsize=(8, 6), layout="constrained")  # no pyplot: no global state, no display needed
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    params = [max(report.params, 1) for _, report in points]
    flops = [max(report.flops, 1) for _, report in points]
    complete = ["tab:blue" if report.complete else "tab:orange" for _, report in points]
    axes.scatter(params, flops, c=complete, s=24, zorder=2)
    for (spec, _), x, y in zip(points, params, flops, strict=True):
        axes.annotate(parse_spec(spec).label, (x, y), xytext=(3, 3), textcoords="offset points", fontsize=7)
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("parameters")
    axes.set_ylabel(f"FLOPs per forward ({points[0][1].convention.name} convention)")
    incomplete = any(not report.complete for _, report in points)
    axes.set_title("FLOPs vs parameters" + (" (orange: lower bound, some ops unsupported)" if incomplete else ""))
    axes.grid(True, which="both", alpha=0.3, zorder=0)
    stem = Path(path)
    if stem.suffix.lower() in (".png", ".svg"):
        stem = stem.with_suffix("")
    files = (stem.with_name(stem.name + ".png"), stem.with_name(stem.name + ".svg"))
    return [(file, lambda target: figure.savefig(target, dpi=150)) for file in files]
