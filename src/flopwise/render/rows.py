"""Flat records of a report, shared by the CSV and DataFrame renderers, and the incomplete-count message of all."""

from __future__ import annotations

from typing import Any

from ..report.report import Report
from .units import binary_bytes

MODULE_COLUMNS = (
    "model",
    "module",
    "type",
    "depth",
    "calls",
    "params",
    "trainable_params",
    "macs",
    "flops",
    "bytes_read",
    "bytes_written",
    "self_macs",
    "self_flops",
)
OPERATOR_COLUMNS = ("model", "operator", "calls", "macs", "flops", "bytes_read", "bytes_written")


def module_records(report: Report, depth: int | None = None) -> list[dict[str, Any]]:
    """One record per module in tree order (the root's name is ''), down to `depth` (None = all)."""
    return [
        {
            "model": report.model,
            "module": row.name,
            "type": row.type,
            "depth": row.depth,
            "calls": row.calls,
            "params": row.params,
            "trainable_params": row.trainable_params,
            "macs": row.macs,
            "flops": row.flops,
            "bytes_read": row.bytes_read,
            "bytes_written": row.bytes_written,
            "self_macs": row.self_cost.macs,
            "self_flops": row.self_cost.flops,
        }
        for row in report.by_module(depth)
    ]


def operator_records(report: Report) -> list[dict[str, Any]]:
    """One record per aten operator, most FLOPs first."""
    calls = report.operator_calls()
    return [
        {
            "model": report.model,
            "operator": op,
            "calls": calls[op],
            "macs": cost.macs,
            "flops": cost.flops,
            "bytes_read": cost.bytes_read,
            "bytes_written": cost.bytes_written,
        }
        for op, cost in report.by_operator().items()
    ]


INCOMPLETE = "INCOMPLETE: the totals are a lower bound; ops with no known cost"


def incomplete_note(report: Report) -> str:
    """'' for a complete count, else the one sentence every renderer uses, naming the ops with no known cost."""
    if report.complete:
        return ""
    ops = ", ".join(f"{op} ×{n}" for op, n in report.unsupported.items())
    return f"{INCOMPLETE}: {ops}"


def incomplete_lines(report: Report, places: int = 3) -> list[str]:
    """The same, one line per op with the modules it ran in (the first `places` of them)."""
    if report.complete:
        return []
    lines = [f"{INCOMPLETE}:"]
    for op, where in report.unsupported_where.items():
        shown = ", ".join(f"{m or '(root)'}" + (f" ×{n}" if n > 1 else "") for m, n in list(where.items())[:places])
        more = f" and {len(where) - places} more modules" if len(where) > places else ""
        lines.append(f"  {op}: {sum(where.values())} call(s) in {shown}{more}")
    return lines


def memory_lines(report: Report) -> list[str]:
    """Weight memory (by dtype when there are several) and the activation peak, as the table footers print them."""
    weights = report.param_memory
    if len(report.param_bytes) > 1:
        dtypes = "; " + ", ".join(f"{dtype} {binary_bytes(n)}" for dtype, n in report.param_bytes.items())
    else:
        dtypes = "".join(f", {dtype}" for dtype in report.param_bytes)
    lines = [f"weight memory: {weights:,} bytes ({binary_bytes(weights)}{dtypes})"]
    if report.peak_activation_bytes is not None:
        peak = report.peak_activation_bytes
        lines.append(
            f"activation memory: {peak:,} bytes at the peak ({binary_bytes(peak)}, estimated from tensor lifetimes)"
        )
    return lines
