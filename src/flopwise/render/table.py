"""The plain-text table printed by `print(report)`: module tree × params, MACs, FLOPs, bytes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .grid import left, right, text_table
from .units import binary_bytes, si

if TYPE_CHECKING:
    from ..report import Report

COLUMNS = left("Module", "Type") + right("Params", "MACs", "FLOPs", "Bytes moved")


def render_table(report: Report, depth: int | None = 2) -> str:
    rows = []
    for row in report.by_module(depth):
        label = "  " * row.depth + (row.name.rpartition(".")[2] if row.name else f"{report.model} (total)")
        rows.append((label, row.type, si(row.params), si(row.macs), si(row.flops), binary_bytes(row.cost.bytes)))
    out = text_table(COLUMNS, rows)
    out.append("")
    out.append(f"inputs: {report.inputs or '(none)'}")
    out.append(f"convention: {report.convention.name} — {report.convention.description}")
    out.append(
        f"total: {report.macs:,} MACs, {report.flops:,} FLOPs, {report.params:,} params "
        f"({report.trainable_params:,} trainable, {report.frozen_params:,} frozen), "
        f"{report.bytes_read:,} bytes read, {report.bytes_written:,} bytes written"
    )
    out.extend(f"warning: {warning}" for warning in report.warnings)
    if report.unsupported:
        out.append("")
        out.append("INCOMPLETE: the totals are a lower bound; ops with no known cost:")
        for op, where in report.unsupported_where.items():
            places = ", ".join(f"{m or '(root)'}" + (f" ×{n}" if n > 1 else "") for m, n in list(where.items())[:3])
            if len(where) > 3:
                places += f" and {len(where) - 3} more modules"
            out.append(f"  {op}: {sum(where.values())} call(s) in {places}")
    return "\n".join(out)
