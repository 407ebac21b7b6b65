"""Plain data for JSON and other formats: the `flopwise/1` schema of DESIGN.md."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..cost import Cost

if TYPE_CHECKING:
    from ..report import Report

SCHEMA = "flopwise/1"


def cost_dict(cost: Cost) -> dict[str, Any]:
    return {
        "macs": cost.macs,
        "flops": cost.flops,
        "bytes_read": cost.bytes_read,
        "bytes_written": cost.bytes_written,
    }


def report_to_dict(report: Report) -> dict[str, Any]:
    calls = report.operator_calls()
    return {
        "schema": SCHEMA,
        "model": report.model,
        "inputs": report.inputs,
        "convention": report.convention.name,
        "total": {**cost_dict(report.total), "params": report.params, "trainable_params": report.trainable_params},
        "modules": [
            {
                "name": row.name,
                "type": row.type,
                "depth": row.depth,
                "calls": row.calls,
                "params": row.params,
                "trainable_params": row.trainable_params,
                **cost_dict(row.cost),
                "self": cost_dict(row.self_cost),
            }
            for row in report.by_module()
        ],
        "operators": {op: {"calls": calls[op], **cost_dict(cost)} for op, cost in report.by_operator().items()},
        "unsupported": {
            op: {"calls": sum(where.values()), "modules": where} for op, where in report.unsupported_where.items()
        },
        "complete": report.complete,
        "warnings": list(report.warnings),
    }
