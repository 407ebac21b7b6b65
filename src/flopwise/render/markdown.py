"""Markdown: a module table ready for a README or a paper, with the exact totals below it."""

from __future__ import annotations

from ..report.report import Report
from .grid import left, markdown_table, right
from .rows import incomplete_note, memory_lines
from .table import module_grid
from .tree import SELF, TreeRow
from .units import binary_bytes, si

OPERATOR_COLUMNS = left("Operator") + right("Calls", "MACs", "FLOPs", "Bytes moved")


def render_markdown(report: Report, depth: int | None = 2, per_operator: bool = False, shapes: bool = False) -> str:
    lines = markdown_table(*module_grid(report, depth, shapes, lambda row: _name(report, row)))
    lines += [
        "",
        f"Inputs {report.inputs or '(none)'}; convention `{report.convention.name}` ({report.convention.description}).",
        f"Total: {report.macs:,} MACs, {report.flops:,} FLOPs, {report.params:,} parameters, "
        f"{report.bytes_read:,} bytes read, {report.bytes_written:,} bytes written.",
        "",
        *(f"{line[0].upper()}{line[1:]}." for line in memory_lines(report)),
    ]
    if per_operator:
        lines += ["", render_markdown_operators(report)]
    note = incomplete_note(report)
    if note:
        lines += ["", f"> **{note}**"]
    return "\n".join(lines)


def _name(report: Report, row: TreeRow) -> str:
    if row.is_self:
        return f"`{row.name}` {SELF}" if row.name else f"{report.model} {SELF}"
    return f"`{row.name}`" if row.name else f"**{report.model}** (total)"


def render_markdown_operators(report: Report) -> str:
    calls = report.operator_calls()
    rows = [
        (f"`{op}`", str(calls[op]), si(cost.macs), si(cost.flops), binary_bytes(cost.bytes))
        for op, cost in report.by_operator().items()
    ]
    return "\n".join(markdown_table(OPERATOR_COLUMNS, rows))
