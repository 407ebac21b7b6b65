"""A rich console table (colour, tree guides); needs `rich`."""

from __future__ import annotations

from typing import Any

from ..report import Report
from .units import binary_bytes, si


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
    for header in ("Params", "MACs", "FLOPs", "Bytes moved"):
        table.add_column(header, justify="right")
    for row in report.by_module(depth):
        label = "  " * row.depth + (row.name.rpartition(".")[2] if row.name else f"{report.model} (total)")
        table.add_row(
            label, row.type, si(row.params), si(row.macs), si(row.flops), binary_bytes(row.cost.bytes),
            style="bold" if not row.name else None,
        )
    return table
