"""The plain-text measurement table: header figures, then modules and operators with time, FLOP/s, roofline."""

from __future__ import annotations

from ..core import energy
from ..render.grid import left, right, text_table
from ..render.rows import incomplete_note
from ..render.units import si
from .result import Measurement, Row

COLUMNS = left("Name", "Type") + right("Time", "Share", "FLOPs", "FLOP/s", "Bytes/s", "FLOP/B", "Bound", "Roofline")


def _seconds(value: float) -> str:
    return si(value * 1e3, "ms") if value < 1 else f"{value:.3g} s"


def _pct(value: float | None) -> str:
    if value is None:
        return "unknown"
    return f"{100 * value:.1f}%" if value == 0 or abs(value) >= 0.001 else f"{100 * value:.2g}%"  # 0.0043%


def _cells(row: Row, label: str) -> tuple[str, ...]:
    intensity = row.intensity
    return (
        label,
        row.kind,
        _seconds(row.seconds),
        _pct(row.share),
        si(row.cost.flops),
        si(row.flops_per_s or 0, "FLOP/s"),
        si(row.bytes_per_s or 0, "B/s"),
        "-" if intensity is None else f"{intensity:.3g}",
        row.bound,
        _pct(row.roofline_fraction),
    )


def render_measurement(m: Measurement, depth: int | None = 2, top: int = 12) -> str:
    r, p, t = m.report, m.peaks, m.total
    out = [
        f"measured: {r.model} {m.step} on {m.device} ({p.device}), {m.dtype}, inputs {r.inputs}",
        f"time: median {_seconds(t.median)} over {len(t.samples)} runs (min {_seconds(t.min)}, "
        f"max {_seconds(t.max)}, spread {100 * t.spread:.1f}%)",
        f"work: {si(r.flops)}FLOPs ({si(m.model_flops)}FLOPs model), {si(r.bytes_read + r.bytes_written)}B moved → "
        f"{si(m.flops_per_s, 'FLOP/s')}, {si(m.bytes_per_s, 'B/s')}",
    ]
    if p.flops_per_s is not None:
        bandwidth = "unknown" if p.bytes_per_s is None else si(p.bytes_per_s, "B/s")
        out.append(f"peak: {si(p.flops_per_s, 'FLOP/s')}, {bandwidth} — {p.source}")
        note = f" — {m.utilisation_note}" if m.utilisation_note else ""
        out.append(f"MFU {_pct(m.mfu)}, HFU {_pct(m.hfu)}{note}")
    else:
        out.append(f"peak: unknown — {p.unknown}; MFU and HFU unknown")
    e = m.energy
    if e is None:
        out.append(f"energy: {energy.unsupported_reason(m.dtype)}")
    else:
        low, high = e.total_j
        out.append(
            f"energy ESTIMATE: {si(low, 'J')}–{si(high, 'J')} per {m.step} "
            f"(arithmetic {si(e.compute_j, 'J')}; {energy.SOURCE})"
        )
    part = " — forward part of the step only" if m.step == "train" else ""
    out += ["", f"by module (inclusive time from module hooks{part}):"]
    out += text_table(
        COLUMNS,
        [
            _cells(
                row,
                "  " * row.name.count(".") + (row.name.rpartition(".")[2] or "(total)")
                if row.name
                else f"{r.model} (total)",
            )
            for row in m.modules(depth)
        ],
    )
    ops = m.operators()
    out += ["", f"by operator (profiler; top {min(top, len(ops))} of {len(ops)} by time):"]
    out += text_table(COLUMNS, [_cells(row, row.name) for row in ops[:top]])
    o = m.op_times
    attributed = sum(o.seconds.values())
    out += [
        "",
        f"profiled run: {_seconds(o.wall_s)} wall, {o.events} events; ops {_seconds(attributed)}, other aten "
        f"{_seconds(o.other_s)}; profiler overhead {si(m.profiler_overhead_per_event_s * 1e6, 'µs')}/event, "
        f"≤ {_seconds(m.profiler_overhead_bound_s)} of the op times",
        f"module hooks: {_seconds(m.hook_overhead_s)} per run (hooked − plain median); modules at depth 1 cover "
        f"{_pct(m.coverage(1))} of the root module's time",
    ]
    if o.by_residual:
        out.append(
            "timed by their module's unmatched profiler time (eager and counting name them differently): "
            + ", ".join(f"{op} in {mod or '(root)'}" for mod, op in sorted(o.by_residual))
        )
    rows = m.modules(depth) + ops
    if any((row.roofline_fraction or 0) > 1.0 for row in rows):
        out.append(
            "some rows exceed 100% of the roofline: their data stayed in cache (the roof is DRAM bandwidth), "
            "the byte count over-states what a gather reads, or the peaks were calibrated under load"
        )
    opless = m.opless_modules()
    if opless:
        out.append(
            "ran no aten op yet took time (work outside the dispatcher — numpy, a raw C++ or Triton kernel — "
            "is not counted): " + ", ".join(f"{n or '(root)'} {_seconds(s)}" for n, s in opless.items())
        )
    if not r.complete:
        out.append(f"{incomplete_note(r)} (FLOP/s are lower bounds too)")
    return "\n".join(out)
