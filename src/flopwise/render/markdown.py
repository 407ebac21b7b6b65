"""Markdown: a module table ready for a README or a paper, with the exact totals below it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .rows import incomplete_note
from .units import binary_bytes, si

if TYPE_CHECKING:
    from ..report import Report


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(report: Report, depth: int | None = 2, per_operator: bool = False) -> str:
    lines = [
        "| Module | Type | Params | MACs | FLOPs | Bytes moved |",
        "|:--|:--|--:|--:|--:|--:|",
    ]
    for row in report.by_module(depth):
        name = f"`{_escape(row.name)}`" if row.name else f"**{_escape(report.model)}** (total)"
        lines.append(
            f"| {name} | {_escape(row.type)} | {si(row.params)} | {si(row.macs)} | {si(row.flops)} "
            f"| {binary_bytes(row.cost.bytes)} |"
        )
    lines += [
        "",
        f"Inputs {report.inputs or '(none)'}; convention `{report.convention.name}` "
        f"({report.convention.description}).",
        f"Total: {report.macs:,} MACs, {report.flops:,} FLOPs, {report.params:,} parameters, "
        f"{report.bytes_read:,} bytes read, {report.bytes_written:,} bytes written.",
    ]
    if per_operator:
        lines += ["", render_markdown_operators(report)]
    note = incomplete_note(report)
    if note:
        lines += ["", f"> **{note}**"]
    return "\n".join(lines)


def render_markdown_operators(report: Report) -> str:
    calls = report.operator_calls()
    lines = ["| Operator | Calls | MACs | FLOPs | Bytes moved |", "|:--|--:|--:|--:|--:|"]
    for op, cost in report.by_operator().items():
        lines.append(f"| `{op}` | {calls[op]} | {si(cost.macs)} | {si(cost.flops)} | {binary_bytes(cost.bytes)} |")
    return "\n".join(lines)
