"""The comparison scatter plot: FLOPs against parameters, log-log (matplotlib).

Every model is a point; with more than LABELLED models, only LABELLED of them carry their name (the largest and the
smallest by FLOPs in turn, skipping a point whose label would land on one already placed) so that
`compare 'torchvision:*'` stays readable, and the title says which are named.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import UsageError
from .spec import parse_spec

if TYPE_CHECKING:
    from ..report.report import Report

LABELLED = 15  # names drawn at most; every model is still a point


def scatter_plot(points: list[tuple[str, Report]], path: str) -> list[tuple[Path, Callable[[Path], object]]]:
    """The plot as PNG and SVG files at `path` (its suffix, if any, is replaced): (file, a function writing it)."""
    figure = scatter_figure(points)
    stem = Path(path)
    if stem.suffix.lower() in (".png", ".svg"):
        stem = stem.with_suffix("")
    files = (stem.with_name(stem.name + ".png"), stem.with_name(stem.name + ".svg"))
    return [(file, lambda target: figure.savefig(target, dpi=150)) for file in files]


def scatter_figure(points: list[tuple[str, Report]]) -> Any:
    """The matplotlib Figure (no pyplot: no global state, no display needed)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise UsageError("--plot needs matplotlib: pip install matplotlib (or flopwise[plot])") from None
    if not points:
        raise UsageError("--plot: no model was counted, so there is nothing to plot")
    many = len(points) > LABELLED
    figure = Figure(figsize=(10, 7.5) if many else (8, 6), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    params = [max(report.params, 1) for _, report in points]
    flops = [max(report.flops, 1) for _, report in points]
    complete = ["tab:blue" if report.complete else "tab:orange" for _, report in points]
    axes.scatter(params, flops, c=complete, s=14 if many else 24, alpha=0.7 if many else 1.0, zorder=2)
    named = labelled(params, flops) if many else range(len(points))
    for i in named:
        axes.annotate(
            parse_spec(points[i][0]).label,
            (params[i], flops[i]),
            xytext=(3, 3),
            textcoords="offset points",
            fontsize=7,
            zorder=3,
        )
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("parameters")
    axes.set_ylabel(f"FLOPs per forward ({points[0][1].convention.name} convention)")
    incomplete = any(not report.complete for _, report in points)
    title = f"FLOPs vs parameters, {len(points)} models"
    if many:
        title += f" ({len(named)} named: the largest and smallest by FLOPs, where a name has room)"
    axes.set_title(title + ("\norange: lower bound, some ops unsupported" if incomplete else ""), fontsize=10)
    axes.grid(True, which="both", alpha=0.3, zorder=0)
    return figure


def labelled(params: list[int], flops: list[int], most: int = LABELLED) -> list[int]:
    """Which points get a name: the largest and the smallest by FLOPs in turn, each at least a label's size (in log
    space: 8 % of the x span across, 4 % of the y span up) from every point already named; at most `most`."""
    x = [math.log10(p) for p in params]
    y = [math.log10(f) for f in flops]
    width, height = max(max(x) - min(x), 1.0) * 0.08, max(max(y) - min(y), 1.0) * 0.04
    chosen: list[int] = []
    by_flops = sorted(range(len(x)), key=lambda i: -flops[i])
    ends = [i for pair in zip(by_flops, reversed(by_flops), strict=True) for i in pair]  # largest, smallest, …
    for i in dict.fromkeys(ends):
        if all(abs(x[i] - x[j]) > width or abs(y[i] - y[j]) > height for j in chosen):
            chosen.append(i)
        if len(chosen) == most:
            break
    return chosen
