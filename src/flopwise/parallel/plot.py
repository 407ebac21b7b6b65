"""A plan's step estimate drawn as inline SVG (no matplotlib, nothing fetched): per distinct rank, bars of its
compute and communication per step; below, when pipelined, the timeline of its schedule, one row per stage,
each forward (light) and backward (dark) of a micro-batch where the replay put it, the gaps being the bubbles."""

from __future__ import annotations

from html import escape
from typing import Any

from ..render.units import si_small

WIDTH, LEFT, RIGHT, ROW, GAP = 760, 150, 20, 18, 6
COLOURS = {"compute": "#4e79a7", "comm": "#f28e2b", "exposed": "#e15759", "F": "#a0cbe8", "B": "#4e79a7"}


def _rect(x: float, y: float, w: float, h: float, fill: str, title: str) -> str:
    return (
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0.5):.1f}" height="{h:.1f}" fill="{fill}">'
        f"<title>{escape(title)}</title></rect>"
    )


def _text(x: float, y: float, text: str, anchor: str = "end") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" font-size="11" text-anchor="{anchor}">{escape(text)}</text>'


def estimate_svg(e: Any) -> str:
    """SVG text for a `StepEstimate`: the bars, and the pipeline timeline when it has one."""
    span = WIDTH - LEFT - RIGHT
    out: list[str] = []
    y = 20.0
    out.append(
        _text(
            LEFT,
            y - 6,
            f"per step: compute (blue), communication (orange), of it exposed (red); step {si_small(e.step_s, 's')}",
            "start",
        )
    )
    longest = max([max(r.compute_s, sum(r.comm_s.values())) for r in e.ranks] + [e.step_s, 1e-12])
    for r in e.ranks:
        label = f"rank {r.rank}" + (f" (stage {r.stage})" if r.stage is not None else "") + f" ×{len(r.ranks)}"
        comm = sum(r.comm_s.values())
        out.append(_text(LEFT - 6, y + ROW / 2 + 4, label))
        out.append(
            _rect(
                LEFT,
                y,
                r.compute_s / longest * span,
                ROW / 2,
                COLOURS["compute"],
                f"compute {si_small(r.compute_s, 's')}",
            )
        )
        out.append(
            _rect(
                LEFT,
                y + ROW / 2,
                comm / longest * span,
                ROW / 2,
                COLOURS["comm"],
                "communication " + ", ".join(f"{d} {si_small(t, 's')}" for d, t in r.comm_s.items()),
            )
        )
        exposed = max(0.0, r.step_s - r.compute_s)
        out.append(
            _rect(
                LEFT,
                y + ROW / 2,
                exposed / longest * span,
                ROW / 2,
                COLOURS["exposed"],
                f"exposed {si_small(exposed, 's')}",
            )
        )
        y += ROW + GAP
    if e.timeline:
        y += 14
        end = max(stop for _, _, _, stop in e.timeline) or 1e-12
        out.append(
            _text(
                LEFT,
                y - 6,
                f"pipeline timeline: forward (light), backward (dark), bubbles {e.bubble_fraction:.1%}",
                "start",
            )
        )
        stages = sorted({stage for stage, _, _, _ in e.timeline})
        for stage in stages:
            out.append(_text(LEFT - 6, y + ROW / 2 + 4, f"stage {stage}"))
            for s, action, start, stop in e.timeline:
                if s == stage:
                    kind = "B" if "B" in action.lstrip("0123456789")[:1] else "F"
                    out.append(
                        _rect(
                            LEFT + start / end * span,
                            y,
                            (stop - start) / end * span,
                            ROW,
                            COLOURS[kind],
                            f"{action}: {si_small(start, 's')} – {si_small(stop, 's')}",
                        )
                    )
            y += ROW + 2
    height = int(y + 10)
    head = (
        f'<svg class="parallel-plan" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" role="img" aria-label="parallel plan step estimate">'
    )
    return "\n".join([head, *out, "</svg>"])
