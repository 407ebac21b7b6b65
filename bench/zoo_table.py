"""docs/zoo.md from the rows bench/zoo.py collects, one JSON line per model."""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from typing import Any

ORDER = (
    "crash",
    "timeout",
    "killed",
    "differs",
    "unsupported",
    "needs data",
    "ok",
    "input",
    "model",
    "no input",
    "build",
)
TITLES = {
    "others": "diffusers, peft, MoE and CLIP (real, fake and meta mode)",
    "timm": "timm: one model of every architecture family (real and fake mode)",
    "transformers": "transformers: every model type from its default config, as `flopwise hf:config.json` counts it",
}


# failures understood by hand: (text in the note, or the start of the model's name; what to say)
KNOWN = (
    (
        "split_with_sizes expects split_sizes to sum exactly",
        "the default config does not run: its rope mrope_section covers half the rotary dimensions",
    ),
    (
        "Module.to() in forward",
        "torch limit: Module.to() inside forward swaps the parameters, which torch refuses "
        "for fake ones; counted for real where the model can be rebuilt with random weights",
    ),
    (
        "gemma4_vit",
        "bytes only, MACs and FLOPs agree: torch limit: on fake tensors `F.one_hot` takes its tracing "
        "form (arange + eq + a cast), where the CPU runs aminmax + zeros + scatter_ (one_hot is decomposed in C++ "
        "before any mode sees it, by the tensor's dispatch keys)",
    ),
    (
        "inkling_mm_model",
        "the default input does not suit it: its vision tower takes channel-last patches, not "
        "a 1×3×224×224 image (read in its forward; too large to confirm with a plain forward)",
    ),
)


def _note(row: dict[str, Any]) -> str:
    parts = []
    if row.get("unsupported"):
        parts.append("unsupported: " + ", ".join(f"{op} ×{n}" for op, n in row["unsupported"].items()))
    if row.get("note"):
        parts.append(row["note"])
    if row.get("where"):
        parts.append(row["where"])
    for warning in row.get("warnings", []):
        if "counted in real mode" in warning or "counting again in real mode" in warning:
            parts.append("fell back to real execution (a value depends on the weights)")
        elif "computed from the real inputs" in warning:
            parts.append("data-dependent values computed from the inputs")
    text = "; ".join(dict.fromkeys(parts))
    known = list(dict.fromkeys(said for pattern, said in KNOWN if pattern in text or row["model"].startswith(pattern)))
    return "; ".join([*known, text]).replace("|", "\\|").replace("\n", " ")


def read_rows(path: str) -> list[dict[str, Any]]:
    """Rows from a sweep's jsonl, or from the table of an earlier docs/zoo.md (status, MACs, seconds, run, note)."""
    with open(path) as file:
        text = file.read()
    if not path.endswith(".md"):
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    rows, suite = [], ""
    for line in text.splitlines():
        suite = next((name for name, said in TITLES.items() if line == f"## {said}"), suite)
        cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) == 6:  # a table from before the run column: the sweep of 2026-11-24
            cells.insert(5, "2026-11-24")
        if len(cells) != 7 or cells[1] not in ORDER:
            continue
        model, status, modes, macs, seconds, run, note = cells
        row: dict[str, Any] = {"suite": suite, "model": model, "status": status, "run": run}
        if macs != "–":
            row["macs"] = int(macs.replace(",", ""))
        if modes:
            row["mode"] = modes
            times = zip(modes.split("+"), seconds.split(" / "), strict=False)
            row.update({f"{m}_s": float(s) for m, s in times if s != "–"})
        for _, said in KNOWN:
            note = note.replace(said + "; ", "").replace(said, "")
        note = re.sub(r"known: [^;]*another helper(; )?", "", note)  # the first table's pointers
        if note:
            row["note"] = note
        rows.append(row)
    return rows


def _modes(row: dict[str, Any]) -> str:
    if "mode" in row:
        return str(row["mode"])
    return "+".join(m for m in ("real", "fake", "meta") if f"{m}_s" in row)


def _seconds(row: dict[str, Any]) -> str:
    return " / ".join(f"{row[f'{m}_s']:.1f}" for m in ("real", "fake", "meta") if f"{m}_s" in row) or "–"


def render(rows: list[dict[str, Any]], wall: float, jobs: int, earlier: list[dict[str, Any]] = ()) -> str:  # type: ignore[assignment]
    """The table of `rows`, with the rows of `earlier` runs (latest first) for the models `rows` did not reach."""
    merged = list({(r["suite"], r["model"]): r for r in reversed([*rows, *earlier])}.values())
    runs = Counter(r.get("run", "?") for r in merged)
    counted = len({(r["suite"], r["model"]) for r in rows})
    out = [
        "# The zoo",
        "",
        "Generated by `make zoo` (`bench/zoo.py`): every model in its own process, with a time limit and a memory "
        f"cap. {len(merged)} models; this run counted {counted} of them in {wall / 60:.0f} minutes with {jobs} "
        "process(es) on a 2-core machine shared with other work."
        + (
            " Rows by the run they come from: " + ", ".join(f"{run}: {n}" for run, n in sorted(runs.items())) + "."
            if len(runs) > 1
            else ""
        ),
        "",
        "Status: **ok** complete count, identical in every mode; **unsupported** counted, with ops that have no "
        "cost (named); **differs** the modes disagree; **crash** the count raised; **needs data** the count "
        "stopped at a value that depends on the weights (or a path torch takes on real tensors only) in a model too "
        "large (over 2 GiB) to rebuild with random weights for a real count: flopwise's documented refusal, with "
        "the reason; **input** the model's own code (a ValueError or TypeError raised in transformers, not in torch "
        "or flopwise) rejected the default input; **model** the count raised and so does a plain forward of the "
        "model with no flopwise, on the same default input, raising the same error type on the same path through "
        "the model's code: on fake tensors (no weights, any size), else for real, rebuilt with random weights or, "
        "too large for that, shrunk to one layer per stack (the input or the default config does not suit the "
        "model: not a counting failure); **no input** flopwise knows "
        "no default input for the model (audio, multimodal), so nothing was counted; **build** the model "
        "cannot be built from its default config. MACs are those of the first mode; seconds per mode.",
        "",
    ]
    for suite in ("others", "timm", "transformers"):
        mine = [r for r in merged if r["suite"] == suite]
        if not mine:
            continue
        tally = Counter(r["status"] for r in mine)
        out += [f"## {TITLES[suite]}", "", ", ".join(f"{tally[s]} {s}" for s in ORDER if tally[s]), ""]
        out += ["| model | status | mode | MACs | seconds | run | note |", "|---|---|---|---:|---:|---|---|"]
        for row in sorted(mine, key=lambda r: (ORDER.index(r["status"]), r["model"])):
            macs = f"{row['macs']:,}" if "macs" in row else "–"
            cells = (row["model"], row["status"], _modes(row), macs, _seconds(row), row.get("run", "?"), _note(row))
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":  # python bench/zoo_table.py MINUTES JOBS rows.jsonl… [earlier.md] > docs/zoo.md
    paths = sys.argv[3:]
    rows = [row for path in paths if not path.endswith(".md") for row in read_rows(path)]
    earlier = [row for path in paths if path.endswith(".md") for row in read_rows(path)]
    print(render(rows, 60 * float(sys.argv[1]), int(sys.argv[2]), earlier))
