"""HTML for Jupyter (`Report._repr_html_`): the module table with exact numbers on hover."""

from __future__ import annotations

from html import escape

from ..report.report import Report
from .rows import incomplete_note
from .tree import tree_rows
from .units import binary_bytes, count_text, si


def _cell(value: int, text: str) -> str:
    return f'<td style="text-align:right" title="{value:,}">{escape(text)}</td>'


def render_html(report: Report, depth: int | None = 2) -> str:
    head = "".join(
        f'<th style="text-align:{"left" if h in ("Module", "Type") else "right"}">{h}</th>'
        for h in ("Module", "Type", "Params", "MACs", "FLOPs", "Bytes moved")
    )
    body = []
    for row in tree_rows(report, depth):
        indent = f"padding-left:{1.2 * row.depth:.1f}em"
        body.append(
            f'<tr><td style="text-align:left;{indent}" title="{escape(row.name)}">{escape(row.label)}</td>'
            f'<td style="text-align:left">{escape(row.type)}</td>'
            + _cell(row.params, count_text(row.params))
            + _cell(row.macs, si(row.macs))
            + _cell(row.flops, si(row.flops))
            + _cell(row.cost.bytes, binary_bytes(row.cost.bytes))
            + "</tr>"
        )
    caption = (
        f"{escape(report.model)} on {escape(report.inputs or '(no inputs)')}: {report.macs:,} MACs, "
        f"{report.flops:,} FLOPs ({escape(report.convention.name)}), {report.params:,} params"
    )
    note = incomplete_note(report)
    warning = f'<p style="color:#b00"><b>{escape(note)}</b></p>' if note else ""
    return (
        f'<div class="flopwise"><table><caption style="text-align:left">{caption}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{warning}</div>"
    )
