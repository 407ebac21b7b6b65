"""The HTML report: one self-contained page per run, for sharing (`report.to_html()`, `--format html`).

Python writes each report's numbers as JSON into the page; html_report.js (package data, inlined) draws the
zoomable icicle of the module tree and the sortable, filterable tables from them, and html_report.css styles
it. Nothing is fetched when the page is viewed: no CDN, no font, no image outside the file.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from html import escape
from importlib.resources import files
from typing import Any

from ..report.report import Report
from .rows import incomplete_lines
from .svg import roofline_svg
from .tree import tree_rows


def _asset(name: str) -> str:
    return files(__package__).joinpath(name).read_text(encoding="utf-8")


def report_data(report: Report) -> dict[str, Any]:
    """The numbers the page shows, as plain JSON-able data (exact integers; the page formats them)."""
    calls = report.operator_calls()
    unknown = report.unsupported
    explained: dict[str, str] = report._view("explain_by_module")
    return {
        "model": report.model,
        "inputs": report.inputs,
        "convention": {"name": report.convention.name, "description": report.convention.description},
        "total": {
            "macs": report.macs,
            "flops": report.flops,
            "params": report.params,
            "trainable_params": report.trainable_params,
            "bytes_read": report.bytes_read,
            "bytes_written": report.bytes_written,
        },
        "memory": {
            "weights": report.param_memory,
            "by_dtype": report.param_bytes,
            "peak_activations": report.peak_activation_bytes,
        },
        "incomplete": incomplete_lines(report),
        "warnings": list(getattr(report, "warnings", ())),
        "modules": [
            {
                "name": row.name,
                "label": row.label,
                "type": row.type,
                "depth": row.depth,
                "self": row.is_self,
                "describe": "" if row.is_self else report.describe.get(row.name, ""),
                "params": row.params,
                "macs": row.macs,
                "flops": row.flops,
                "bytes_read": row.cost.bytes_read,
                "bytes_written": row.cost.bytes_written,
            }
            for row in tree_rows(report, depth=None)
        ],
        "operators": [
            {
                "op": op,
                "calls": calls[op],
                "macs": cost.macs,
                "flops": cost.flops,
                "unknown": op in unknown,
                "bytes_read": cost.bytes_read,
                "bytes_written": cost.bytes_written,
            }
            for op, cost in report.by_operator().items()
        ],
        "explain": explained,
        "explanation": report.explain(),
    }


def _json_script(data: Any) -> str:
    # "<" escaped so that no string in the data (a module named "</script>") can end the script element
    text = json.dumps(data, ensure_ascii=False).replace("<", "\\u003c")
    return f'<script type="application/json" class="flopwise-data">{text}</script>'


def _measurement_html(measurement: Any) -> str:
    """The measured time and the roofline of a `flopwise.measure` result (read through its to_dict and table)."""
    doc = measurement.to_dict()
    svg = roofline_svg(doc)
    plot = svg or f'<p class="note">No roofline: {escape(doc["peaks"]["unknown"] or "the peaks are unknown")}.</p>'
    return (
        f'<div class="measurement"><h3>Measured on {escape(doc["device_name"])} ({escape(doc["dtype"])}, '
        f"{escape(doc['step'])})</h3>{plot}<pre>{escape(measurement.table())}</pre></div>"
    )


def render_html_report(
    reports: Sequence[Report],
    measurements: Sequence[Any] | None = None,
    titles: Sequence[str] | None = None,
    comparison: dict[str, Any] | None = None,
) -> str:
    """One page with a section per report; `measurements[i]` (or None) and `titles[i]` go with `reports[i]`.
    `comparison` (`flopwise compare --format html`): {"baseline", "convention", "models": a record per model given,
    with its ratios to the baseline and "section", the index of its report or None} drawn first as one sortable
    table, each model linked to its report below."""
    measurements = list(measurements) if measurements is not None else [None] * len(reports)
    titles = list(titles) if titles is not None else [r.model for r in reports]
    sections = []
    if comparison is not None:
        data = json.dumps(comparison, ensure_ascii=False).replace("<", "\\u003c")
        sections.append(
            '<section class="comparison" id="comparison">'
            f'<script type="application/json" class="flopwise-comparison">{data}</script></section>'
        )
    for i, (report, measurement, title) in enumerate(zip(reports, measurements, titles, strict=True)):
        extra = _measurement_html(measurement) if measurement is not None else ""
        sections.append(
            f'<section class="report" id="report-{i}" data-title="{escape(title)}">'
            f"{_json_script(report_data(report))}{extra}</section>"
        )
    nav = "".join(f'<a href="#report-{i}">{escape(t)}</a>' for i, t in enumerate(titles)) if len(titles) > 1 else ""
    if comparison is not None:  # the table links every model; a nav of 80 names would only repeat it
        nav = f'<a href="#comparison">the comparison</a> ({len(reports)} reports below it)'
    names = ", ".join(r.model for r in reports)
    page_title = "flopwise: " + (f"{len(comparison['models'])} models compared" if comparison is not None else names)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">'
        f"<title>{escape(page_title)}</title><style>{_asset('html_report.css')}</style></head>"
        f'<body><header class="page"><h1>{escape(page_title)}</h1><nav>{nav}</nav></header>'
        f"<main>{''.join(sections)}</main>"
        '<footer class="page">Counted by flopwise at the aten dispatch level. MACs are multiply–adds inside '
        "contractions; FLOPs follow the convention stated in each section.</footer>"
        f"<script>{_asset('html_report.js')}</script></body></html>\n"
    )


def report_html(report: Report, measurement: Any = None) -> str:
    """The `html_report` view of Report: `report.to_html(measurement=None)`."""
    return render_html_report([report], [measurement])
