"""Plain data for JSON and other formats: the `flopwise/1` schema (its keys are extended, never renamed)."""

from __future__ import annotations

from typing import Any

from ..core.cost import Cost
from ..report.report import Report

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
        "memory": {  # bytes: the parameters as stored, and the activation peak estimated from tensor lifetimes
            "weights": report.param_memory,
            "weights_by_dtype": dict(report.param_bytes),
            "peak_activations": report.peak_activation_bytes,
        },
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
                "input_shapes": [list(shape) for shape in row.input_shapes],  # of the first call
                "output_shapes": [list(shape) for shape in row.output_shapes],
                **({"phases": {phase: cost_dict(c) for phase, c in row.phases.items()}} if row.phases else {}),
            }
            for row in report.by_module()
        ],
        "operators": {op: {"calls": calls[op], **cost_dict(cost)} for op, cost in report.by_operator().items()},
        "unsupported": {
            op: {"calls": sum(where.values()), "modules": where} for op, where in report.unsupported_where.items()
        },
        "complete": report.complete,
        "uncalled_modules": report.uncalled_modules(),  # modules whose forward never ran during the count
        "warnings": list(report.warnings),
        "attention": report.convention.attention,  # "dense" (every query–key pair) or "masked" (pairs kept)
        "by_dtype": {dtype: cost_dict(cost) for dtype, cost in report.by_dtype().items()},
        "param_bytes": dict(report.param_bytes),  # weight memory by dtype
        "energy_estimate": _energy(report),
        **_training(report),
        **({"moe": [_moe(layer) for layer in report.moe]} if report.moe else {}),
    }


def _training(report: Report) -> dict[str, Any]:
    """A training step's keys: the total per phase and what frozen parameters saved (absent otherwise)."""
    if not report.phases:
        return {}
    saved = report.frozen_savings
    return {
        "phases": {phase: cost_dict(cost) for phase, cost in report.phases.items()},
        "frozen_savings": cost_dict(saved) if saved is not None else None,
    }


def _energy(report: Report) -> dict[str, Any]:
    e = report.energy()
    return {
        "joules": list(e.total_j),
        "compute_j": e.compute_j,
        "memory_j": list(e.memory_j),
        "source": e.source,
        "process_node": e.process_node,
        "notes": list(e.notes),
        "left_out": dict(e.left_out),
        "note": "estimate from counts, not a power measurement",
    }


def _moe(layer: Any) -> dict[str, Any]:
    return {
        "name": layer.name,
        "experts": layer.experts,
        "top_k": layer.top_k,
        "tokens": layer.tokens,
        "tokens_per_expert": list(layer.tokens_per_expert),
        "params_per_expert": layer.params_per_expert,
        "shared_params": layer.shared_params,
        "active_params_per_token": layer.active_params_per_token,
        "total_params": layer.total_params,
        "estimate": layer.estimate,
        "assumption": layer.assumption,
    }
