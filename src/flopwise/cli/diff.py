"""`flopwise diff BEFORE.json AFTER.json`: per-module deltas of two saved counts, and the total change.

The files are what `flopwise MODEL --format json` writes: one `flopwise/1` document, or a list of them (the
guides' three models); lists are paired by model name. Rows are the modules whose params, MACs, FLOPs or bytes
changed (all of them with --all); the totals below are exact. `--fail-if` budgets (budget.py) exit with 4.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..render.grid import left, markdown_table, right, text_table
from ..render.units import binary_bytes, count_text, si
from .budget import BUDGET_BROKEN, check_budgets, totals
from .common import emit, notifier, run_command
from .errors import UsageError

SCHEMA = "flopwise/1-diff"
FORMATS: dict[str, Callable[[int], str]] = {"params": count_text, "macs": si, "flops": si, "bytes": binary_bytes}
METRICS = (("params", "Params"), ("macs", "MACs"), ("flops", "FLOPs"), ("bytes", "Bytes moved"))


def main(options: argparse.Namespace) -> int:
    """`flopwise diff BEFORE.json AFTER.json`, its options parsed (options.diff_parser)."""
    return run_command(_run, options, "flopwise diff")


def _run(options: argparse.Namespace) -> int:
    pairs = pair(load_counts(options.before), load_counts(options.after))
    notify = notifier(options.quiet)
    for name, before, after in pairs:
        if before is None or after is None:
            notify(f"{name} is only in {options.after if before is None else options.before}: not compared")
    compared = [Pair(name, b, a) for name, b, a in pairs if b is not None and a is not None]
    if not compared:
        raise UsageError(f"{options.before} and {options.after} have no model in common")
    for p in compared:
        for key in ("convention", "inputs"):
            if p.before.get(key) != p.after.get(key):
                notify(f"{p.name}: the {key} differ ({p.before.get(key)!r} before, {p.after.get(key)!r} after)")
    emit(render(compared, options), options, notify)
    kept = check_budgets(options.fail_if, [(p.name, totals(p.before), totals(p.after)) for p in compared], notify)
    return 0 if kept else BUDGET_BROKEN


# — reading and pairing —


def load_counts(path: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise UsageError(f"{path}: cannot read ({error.strerror})") from None
    except json.JSONDecodeError as error:
        raise UsageError(
            f"{path}: not JSON ({error.msg} at line {error.lineno}); write it with flopwise MODEL --format json -o FILE"
        ) from None
    docs = data if isinstance(data, list) else [data]
    for doc in docs:
        if not isinstance(doc, dict) or not str(doc.get("schema", "")).startswith("flopwise/1") or "total" not in doc:
            raise UsageError(f"{path}: not a flopwise count (expected the JSON of flopwise MODEL --format json)")
    return docs


def pair(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> list[tuple[str, Any, Any]]:
    """One model each: compared whatever their names. Several: paired by model name, in the after file's order."""
    if len(before) == 1 and len(after) == 1:
        return [(after[0]["model"], before[0], after[0])]
    old = {d["model"]: d for d in before}
    new = {d["model"]: d for d in after}
    return [(m, old.get(m), new[m]) for m in new] + [(m, old[m], None) for m in old if m not in new]


# — the deltas —


@dataclass(frozen=True)
class Pair:
    name: str
    before: dict[str, Any]
    after: dict[str, Any]


def _measures(row: dict[str, Any] | None) -> dict[str, int]:
    if row is None:
        return dict.fromkeys(("params", "macs", "flops", "bytes"), 0)
    return {
        "params": row["params"],
        "macs": row["macs"],
        "flops": row["flops"],
        "bytes": row["bytes_read"] + row["bytes_written"],
    }


def module_deltas(p: Pair, everything: bool = False, depth: int | None = None) -> list[dict[str, Any]]:
    """One record per module (after-file order, then the removed ones): status, before, after, delta."""
    old = {m["name"]: m for m in p.before.get("modules", [])}
    new = {m["name"]: m for m in p.after.get("modules", [])}
    out = []
    for name in [*new, *(n for n in old if n not in new)]:
        b, a = old.get(name), new.get(name)
        before, after = _measures(b), _measures(a)
        delta = {k: after[k] - before[k] for k in after}
        status = "added" if b is None else "removed" if a is None else "changed" if any(delta.values()) else "same"
        shown_depth = name.count(".") + 1 if name else 0
        if (status == "same" and not everything) or (depth is not None and shown_depth > depth):
            continue
        out.append(
            {
                "name": name,
                "type": (a or b or {}).get("type", ""),
                "status": status,
                "before": before,
                "after": after,
                "delta": delta,
            }
        )
    return out


def _change(old: int, new: int, fmt: Callable[[int], str]) -> str:
    delta = new - old
    if delta == 0:
        return "0"
    sign = "+" if delta > 0 else "−"
    share = f" ({100 * delta / old:+.1f}%)" if old else ""
    return f"{sign}{fmt(abs(delta))}{share}"


def render(pairs: list[Pair], options: argparse.Namespace) -> str:
    if options.format == "json":
        return json.dumps(
            {
                "schema": SCHEMA,
                "before": options.before,
                "after": options.after,
                "models": [
                    {
                        "model": p.name,
                        "before": totals(p.before),
                        "after": totals(p.after),
                        "delta": {k: totals(p.after)[k] - totals(p.before)[k] for k in totals(p.after)},
                        "modules": module_deltas(p, options.all, options.depth),
                    }
                    for p in pairs
                ],
            },
            indent=2,
        )
    markdown = options.format == "markdown"
    grid = markdown_table if markdown else text_table
    parts = []
    for p in pairs:
        rows = []
        for m in module_deltas(p, options.all, options.depth):
            name = m["name"] or f"{p.name} (total)"
            label = name + ("" if m["status"] in ("changed", "same") else f" ({m['status']})")
            cells = [_change(m["before"][k], m["after"][k], FORMATS[k]) for k, _ in METRICS]
            rows.append([f"`{label}`" if markdown and m["name"] else label, m["type"], *cells])
        old, new = totals(p.before), totals(p.after)
        summary = [
            [
                title,
                f"{old[k]:,}",
                f"{new[k]:,}",
                f"{new[k] - old[k]:+,}",
                f"{100 * (new[k] - old[k]) / old[k]:+.2f}%" if old[k] else "-",
            ]
            for k, title in METRICS
        ]
        heading = f"## {p.name}" if markdown else f"{p.name}: {options.before} → {options.after}"
        body = grid(left("Module", "Type") + right(*(t for _, t in METRICS)), rows) if rows else ["No module changed."]
        parts.append(
            "\n".join([heading, "", *body, "", *grid(left("Total") + right("Before", "After", "Change", "%"), summary)])
        )
    return "\n\n".join(parts)
