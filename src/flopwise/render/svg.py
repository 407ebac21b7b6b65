"""The roofline plot as inline SVG, drawn from a measurement's plain data (no matplotlib, nothing fetched).

x = arithmetic intensity (FLOPs per byte moved), y = achieved FLOP/s, both logarithmic; the roof is
min(peak FLOP/s, x × bandwidth). Each aten operator is a dot whose area is its share of the measured time.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any

from .units import si

WIDTH, HEIGHT = 640, 380
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 30, 50
LABELLED = 6  # the operators that took the most time get a label beside their dot


def roofline_svg(measurement: dict[str, Any]) -> str:
    """SVG text for a `Measurement.to_dict()`; '' when a peak is unknown (there is no roof to draw)."""
    peak, bandwidth = measurement["peaks"]["flops_per_s"], measurement["peaks"]["bytes_per_s"]
    if not peak or not bandwidth:
        return ""
    points = [
        (r["name"], r["intensity"], r["flops_per_s"], r["share"])
        for r in measurement["operators"]
        if r["intensity"] and r["flops_per_s"]
    ]
    ridge = peak / bandwidth
    xs = [p[1] for p in points] + [ridge / 100, ridge * 100]
    ys = [p[2] for p in points] + [peak * 2]
    x_lo, x_hi = math.floor(math.log10(min(xs))), math.ceil(math.log10(max(xs)))
    y_lo, y_hi = math.floor(math.log10(min(ys + [ridge / 100 * bandwidth]))), math.ceil(math.log10(max(ys)))

    def px(x: float) -> float:
        return LEFT + (math.log10(x) - x_lo) / (x_hi - x_lo) * (WIDTH - LEFT - RIGHT)

    def py(y: float) -> float:
        return HEIGHT - BOTTOM - (math.log10(y) - y_lo) / (y_hi - y_lo) * (HEIGHT - TOP - BOTTOM)

    out = [
        f'<svg class="roofline" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="roofline plot">'
    ]
    for e in range(x_lo, x_hi + 1):
        x = px(10.0**e)
        out.append(
            f'<line class="grid" x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{HEIGHT - BOTTOM}"/>'
            f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">{si(10.0**e)}</text>'
        )
    for e in range(y_lo, y_hi + 1):
        y = py(10.0**e)
        out.append(
            f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{si(10.0**e)}</text>'
        )
    roof = [(10.0**x_lo, min(peak, 10.0**x_lo * bandwidth)), (ridge, peak), (10.0**x_hi, peak)]
    path = " ".join(f"{px(x):.1f},{py(max(y, 10.0**y_lo)):.1f}" for x, y in roof)
    out.append(
        f'<polyline class="roof" points="{path}"><title>roof: {si(peak, "FLOP/s")}, '
        f"{si(bandwidth, 'B/s')}; ridge at {ridge:.3g} FLOPs/byte</title></polyline>"
    )
    ranked = sorted(points, key=lambda p: -p[3])
    for i, (name, intensity, achieved, time_share) in enumerate(ranked):
        x, y, r = px(intensity), py(achieved), 3 + 14 * math.sqrt(time_share)
        tip = f"{name}: {intensity:.3g} FLOPs/byte, {si(achieved, 'FLOP/s')}, {time_share:.1%} of the time"
        out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}"><title>{escape(tip)}</title></circle>')
        if i < LABELLED:
            out.append(f'<text class="label" x="{x + r + 3:.1f}" y="{y + 4:.1f}">{escape(name)}</text>')
    out.append(
        f'<text x="{(WIDTH + LEFT) / 2}" y="{HEIGHT - 8}" text-anchor="middle">'
        "arithmetic intensity (FLOPs / byte moved)</text>"
        f'<text transform="rotate(-90)" x="{-(HEIGHT - BOTTOM + TOP) / 2}" y="16" text-anchor="middle">'
        "achieved FLOP/s</text></svg>"
    )
    return "".join(out)
