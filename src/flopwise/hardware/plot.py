"""The roofline plot: compute and memory roofs of the device, with each (module, op) group placed on it."""

from __future__ import annotations

from pathlib import Path

from ..render.units import si
from .result import Measurement


def roofline_plot(m: Measurement, path: str | Path, legend: int = 8) -> Path:
    """Write the roofline plot to `path` (PNG, SVG or PDF by suffix) and return it.

    Points are (module, op) groups with FLOPs and a measured time: x = FLOPs per byte moved, y = achieved
    FLOP/s, area ∝ share of time. Needs both peaks; raises with the fix when one is unknown.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    p = m.peaks
    if p.flops_per_s is None or p.bytes_per_s is None:
        raise ValueError(
            f"roofline_plot needs the device's peak FLOP/s and bandwidth; {p.unknown or 'unknown'}. "
            "Pass peak_tflops= and peak_gbs= to measure()"
        )
    path = Path(path)
    points = [g for g in m.op_groups() if g.cost.flops > 0 and g.cost.bytes > 0 and g.seconds > 0]
    by_op: dict[str, list[tuple[float, float, float]]] = {}
    for g in points:
        op = g.name.rpartition(":")[2]
        by_op.setdefault(op, []).append((g.cost.flops / g.cost.bytes, g.cost.flops / g.seconds, g.share))
    ridge = p.flops_per_s / p.bytes_per_s
    lowest = min([x for pts in by_op.values() for x, _, _ in pts] + [ridge / 100])
    highest = max([x for pts in by_op.values() for x, _, _ in pts] + [ridge * 100])
    fig, ax = plt.subplots(figsize=(8, 5.5))
    xs = [lowest / 2, ridge, highest * 2]
    roof = f"roofline: {si(p.flops_per_s, 'FLOP/s')}, {si(p.bytes_per_s, 'B/s')}"
    ax.plot(xs, [min(p.flops_per_s, x * p.bytes_per_s) for x in xs], color="black", linewidth=2, label=roof)
    ax.axvline(ridge, color="grey", linestyle=":", linewidth=1)
    ranked = sorted(by_op, key=lambda op: -sum(s for _, _, s in by_op[op]))
    for i, op in enumerate(ranked):
        x, y, share = zip(*by_op[op], strict=True)
        ax.scatter(x, y, s=[20 + 600 * s for s in share], alpha=0.6, label=op if i < legend else None)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOPs / byte moved)")
    ax.set_ylabel("achieved FLOP/s")
    ax.set_title(f"{m.report.model} {m.step} on {p.device} ({m.dtype})")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(True, which="major", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
