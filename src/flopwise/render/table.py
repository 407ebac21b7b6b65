"""The plain-text table printed by `print(report)`: module tree × params, MACs, FLOPs, share, bytes."""

from __future__ import annotations

from ..report import Report
from .grid import left, right, text_table
from .rows import incomplete_lines, memory_lines
from .tree import DENSITY_HEADERS, density_cells, share, tree_rows
from .units import binary_bytes, count_text, si

COLUMNS = left("Module", "Type") + right("Params", "MACs", "FLOPs", "% FLOPs", "Bytes moved")


def render_table(report: Report, depth: int | None = 2) -> str:
    sparse = report.sparse_weights  # a density column only when some weight holds zeros
    rows = [
        ("  " * row.depth + row.label, row.type, count_text(row.params), si(row.macs), si(row.flops),
         share(row.flops, report.flops), binary_bytes(row.cost.bytes), *(density_cells(row) if sparse else ()))
        for row in tree_rows(report, depth)
    ]
    out = text_table(COLUMNS + (right(*DENSITY_HEADERS) if sparse else []), rows)
    out.append("")
    out.append(f"inputs: {report.inputs or '(none)'}")
    out.append(f"convention: {report.convention.name} — {report.convention.description}")
    out.append(
        f"total: {report.macs:,} MACs, {report.flops:,} FLOPs, {report.params:,} params "
        f"({report.trainable_params:,} trainable, {report.frozen_params:,} frozen), "
        f"{report.bytes_read:,} bytes read, {report.bytes_written:,} bytes written"
    )
    if sparse and report.effective_macs is not None and report.macs:
        out.append(f"effective: {report.effective_macs:,} MACs once multiplications by zero weights are skipped "
                   f"({report.effective_macs / report.macs:.1%} of the dense count)")
    out += memory_lines(report)
    out += phase_lines(report)
    if not report.complete:
        out += ["", *incomplete_lines(report)]
    if report.warnings:
        out.append("")
        out.append("warnings:")
        out.extend(f"  {warning}" for warning in report.warnings)
    return "\n".join(out)


def phase_lines(report: Report) -> list[str]:
    """A training step: its total per phase, and what frozen parameters saved backward."""
    if not report.phases:
        return []
    parts = [f"{phase} {cost.macs:,} MACs / {cost.flops:,} FLOPs" for phase, cost in report.phases.items()]
    lines = ["phases: " + "; ".join(parts)]
    saved = report.frozen_savings
    if saved is not None:
        lines.append(
            f"frozen parameters: backward skipped {saved.macs:,} MACs / {saved.flops:,} FLOPs "
            f"(their weight gradients, and input gradients only they needed): {report.frozen_params:,} "
            "frozen parameters"
        )
    return lines
