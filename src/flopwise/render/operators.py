"""The plain-text per-operator table (`--per-operator`): aten op × calls, MACs, FLOPs, bytes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .units import binary_bytes, si

if TYPE_CHECKING:
    from ..report import Report

HEADERS = ("Operator", "Calls", "MACs", "FLOPs", "Bytes moved", "Share of FLOPs")


def render_operator_table(report: Report) -> str:
    calls = report.operator_calls()
    total = report.flops or 1
    unknown = report.unsupported
    rows = [
        (op, str(calls[op]), si(cost.macs), si(cost.flops), binary_bytes(cost.bytes),
         "no known cost" if op in unknown else f"{cost.flops / total:.1%}")
        for op, cost in report.by_operator().items()
    ]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(HEADERS)]

    def line(cells: tuple[str, ...]) -> str:
        right = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join([cells[0].ljust(widths[0]), *right]).rstrip()

    return "\n".join([line(HEADERS), line(tuple("─" * w for w in widths))] + [line(r) for r in rows])
