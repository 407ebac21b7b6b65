"""A rich console table (colour, tree guides); needs `rich`."""

from __future__ import annotations

from typing import Any

from ..report.report import Report
from .tree import share, tree_rows
from .units import binary_bytes, count_text, si


def rich_table(report: Report, depth: int | None = 2) -> Any:
    """A `rich.table.Table` of the module tree; raises ImportError naming the fix when rich is missing."""
    try:
        from rich.table import Table
    except ImportError:
        raise ImportError("the console table needs rich: pip install rich (or use print(report))") from None
    table = Table(
        title=f"{report.model} on {report.inputs or '(no inputs)'}",
        caption=f"convention: {report.convention.name}; {report.macs:,} MACs, {report.flops:,} FLOPs",
    )
    table.add_column("Module")
    table.add_column("Type", style="dim")
    for header in ("Params", "MACs", "FLOPs", "% FLOPs", "Bytes moved"):
        table.add_column(header, justify="right")
    for row in tree_rows(report, depth):
        table.add_row(
            "  " * row.depth + row.label,
            row.type,
            count_text(row.params),
            si(row.macs),
            si(row.flops),
            share(row.flops, report.flops),
            binary_bytes(row.cost.bytes),
            style="bold" if not row.name and not row.is_self else "dim" if row.is_self else None,
        )
    return table
