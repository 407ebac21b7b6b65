"""The per-dtype table (`--by-dtype`): compute dtype × MACs, FLOPs, bytes, weight memory and an energy estimate."""

from __future__ import annotations

import torch

from ..formulas.registry import dtype_name
from ..report.report import Report
from .grid import left, markdown_table, right, text_table
from .units import binary_bytes, si, si_small

COLUMNS = left("Dtype") + right("MACs", "FLOPs", "Bytes moved", "Weight memory", "Energy (estimate)")


def weight_bytes(report: Report) -> dict[str, int]:
    """Weight memory under the names `by_dtype` uses (qint8 weights are 'int8', every float8 'float8')."""
    found: dict[str, int] = {}
    for name, size in report.param_bytes.items():
        dtype = getattr(torch, name, None)
        key = dtype_name(dtype) if isinstance(dtype, torch.dtype) else name
        found[key] = found.get(key, 0) + size
    return found


def _joules(low: float, high: float) -> str:
    return si_small(low, "J") if low == high else f"{si_small(low, 'J')}–{si_small(high, 'J')}"


def dtype_rows(report: Report) -> list[tuple[str, ...]]:
    costs, weights, energy = report.by_dtype(), weight_bytes(report), report.energy()
    rows: list[tuple[str, ...]] = []
    for dtype in [*costs, *(d for d in weights if d not in costs)]:
        cost = costs.get(dtype)
        e = energy.by_dtype.get(dtype)
        joules = "–" if e is None else _joules(*e.total_j) + (" (bytes only)" if dtype in energy.left_out else "")
        rows.append(
            (
                dtype,
                si(cost.macs) if cost else "0",
                si(cost.flops) if cost else "0",
                binary_bytes(cost.bytes) if cost else "0 B",
                binary_bytes(weights[dtype]) if dtype in weights else "–",
                joules,
            )
        )
    rows.append(
        (
            "total",
            si(report.macs),
            si(report.flops),
            binary_bytes(report.total.bytes),
            binary_bytes(report.param_memory),
            _joules(*energy.total_j),
        )
    )
    return rows


def footer(report: Report) -> list[str]:
    """What the energy column is: an estimate, its source and process node, and what it left out."""
    energy = report.energy()
    lines = [
        f"energy: an ESTIMATE from the counts, not a measurement — {energy.source}; arithmetic per MAC and "
        "FLOP of each dtype, every byte moved as one DRAM byte (a low–high range)"
    ]
    lines += [f"  {note}" for note in energy.notes]
    lines += [f"  {reason}" for reason in energy.left_out.values()]
    return lines


def render_dtype_table(report: Report, markdown: bool = False) -> str:
    rows = dtype_rows(report)
    if markdown:
        return "\n".join([*markdown_table(COLUMNS, rows), "", *(f"{line.strip()}." for line in footer(report))])
    return "\n".join([*text_table(COLUMNS, rows), "", *footer(report)])
