"""The plain-text per-operator table (`--per-operator`): aten op × calls, MACs, FLOPs, bytes."""

from __future__ import annotations

from ..report.report import Report
from .grid import left, right, text_table
from .units import binary_bytes, si

COLUMNS = left("Operator") + right("Calls", "MACs", "FLOPs", "Bytes moved", "Share of FLOPs")


def render_operator_table(report: Report) -> str:
    calls = report.operator_calls()
    total = report.flops or 1
    unknown = report.unsupported
    rows = [
        (
            op,
            str(calls[op]),
            si(cost.macs),
            si(cost.flops),
            binary_bytes(cost.bytes),
            "no known cost" if op in unknown else f"{cost.flops / total:.1%}",
        )
        for op, cost in report.by_operator().items()
    ]
    return "\n".join(text_table(COLUMNS, rows))
