"""The hand calculation of a count as text or Markdown, the way the guides teach it.

For each module and each op in it: the formula in symbols, the sizes substituted, the result; then the sums,
the convention the FLOPs follow, what the other conventions would give, and how the count scales with batch.
"""

from __future__ import annotations

import re

from ..core.conventions import PRESETS, Convention
from ..render.rows import incomplete_note
from ..report.report import Report
from .groups import CallLine, Group, build_groups
from .steps import total_flops_step
from .style import Markdown, Text

FORMATS = ("text", "markdown")
MAX_SUM_TERMS = 12  # longer sums are shown per module, then only as a count of terms
MAX_SUM_GROUPS = 16


def _call_text(style: Text, line: CallLine, rules: Convention) -> str:
    if line.unsupported:
        return "no formula: not counted (the totals are a lower bound)"
    pieces = []
    if line.macs is not None:
        pieces.append(style.equation("MACs", line.macs))
    if line.flops is not None:
        pieces.append(style.equation("FLOPs", line.flops))
    text = "; ".join(pieces)
    if line.left_out:
        text += " (not counted under this convention: " + ", ".join(f"{k} {v:,}" for k, v in line.left_out) + ")"
    if line.call.work.note and not (rules.masked and line.call.work.masked_macs is not None):
        text += f" — {line.call.work.note}"  # (the note describes the dense count)
    return f"{line.repeat} identical calls, each: {text}" if line.repeat > 1 else text


def _group_lines(style: Text, group: Group, rules: Convention) -> list[str]:
    if len(group.lines) == 1 and group.name and not group.lines[0].label.startswith("["):
        return [style.item(f"{style.title(group.head, group.rest)}: {_call_text(style, group.lines[0], rules)}")]
    out = [style.item(style.title(group.head, group.rest))]
    out += [style.item(f"{line.label}: {_call_text(style, line, rules)}", 1) for line in group.lines]
    return out


def _sum_line(style: Text, what: str, terms: list[tuple[str, int, int]], total: int) -> str:
    """'Total MACs = MACs(fc1) + MACs(fc2) = 200 + 300 = 500' over (name, value, repeat) terms."""
    terms = [t for t in terms if t[1]]
    if not terms:
        return f"Total {what} = " + style.inline("0")
    if len(terms) > MAX_SUM_GROUPS:
        return f"Total {what} = sum of the {len(terms)} figures above = " + style.inline(f"{total:,}")
    names = " + ".join((f"{r}·" if r > 1 else "") + f"{what}({n})" for n, _, r in terms) or "0"
    values = " + ".join((f"{r}·" if r > 1 else "") + f"{v:,}" for _, v, r in terms) or "0"
    chain = [values] if values == f"{total:,}" else [values, f"{total:,}"]
    return f"Total {what} = {names} " + style.inline(" = ".join(["", *chain]).strip())


def _totals(style: Text, report: Report, groups: list[Group]) -> list[str]:
    lines = [line for g in groups for line in g.lines]
    out = []
    for what, attr in (("MACs", "macs"), ("FLOPs", "flops")):
        terms = [(ln.short, getattr(ln.call.cost, attr), ln.repeat) for ln in lines]
        if len([t for t in terms if t[1]]) > MAX_SUM_TERMS:  # too many calls: sum per module instead
            terms = [(g.name or report.model, getattr(g, attr), 1) for g in groups]
        out.append(style.item(_sum_line(style, what, terms, getattr(report, attr))))
    breakdown = total_flops_step(report)
    if breakdown is not None and breakdown.substituted != f"{breakdown.value:,}":
        out.append(style.item(style.equation("Total FLOPs", breakdown)))
    return out


def _flops_by_kind(report: Report) -> dict[str, int]:
    kinds: dict[str, int] = {}
    for call in report.calls:
        for f in call.work.flops:
            kinds[f.kind] = kinds.get(f.kind, 0) + f.term.value
    return kinds


def _leading_batch(inputs: str) -> int | None:
    """The first dimension of the first tensor input ('1×10×256 float32, …' → 1); None if there is none."""
    match = re.match(r"\s*(\d+)×", inputs)
    return int(match.group(1)) if match else None


def _notes(style: Text, report: Report, groups: list[Group]) -> list[str]:
    rules, kinds = report.convention, _flops_by_kind(report)
    out = []
    left_out = {k: v for k, v in kinds.items() if v and not rules.counts(k)}
    if left_out:
        out.append(
            f"Not counted under '{rules.name}': " + ", ".join(f"{k} {v:,} FLOPs" for k, v in left_out.items()) + "."
        )
    if kinds.get("bias"):
        out.append(f"Bias adds are FLOPs, not MACs: {kinds['bias']:,} here; convention 'no-bias' leaves them out.")
    dots = sum(c.work.dots for c in report.calls)
    if dots and rules.flops_per_mac == 2 and not rules.exact_dots:
        out.append(
            f"2 FLOPs per MAC counts a k-term dot product as 2k; counted as k multiplies and k−1 adds "
            f"(convention 'exact'), each of the {dots:,} dot products is one FLOP less."
        )
    elif dots and rules.exact_dots:
        out.append(
            f"A k-term dot product is counted as 2k−1 FLOPs (k multiplies, k−1 adds); at 2 FLOPs per MAC "
            f"each of the {dots:,} dot products would be one FLOP more."
        )
    if kinds.get("bn_inference"):
        out.append(
            f"Inference batch norm costs {kinds['bn_inference']:,} FLOPs; folded into the preceding "
            "convolution (convention 'fused-bn') it costs none."
        )
    masked = [c.work for c in report.calls if c.work.masked_macs is not None]
    dense, kept = sum(w.mac_count for w in masked), sum(w.masked_macs.value for w in masked if w.masked_macs)
    if masked and rules.masked:
        out.append(
            f"Masked attention counts only the query–key pairs its mask keeps: {kept:,} MACs "
            f"(dense, the full score matrix: {dense:,})."
        )
    elif masked:
        out.append(
            f"Masked attention is counted dense, the full score matrix, as the guides count it: {dense:,} "
            f"MACs; attention='masked' counts only the pairs the mask keeps: {kept:,}."
        )
    elif any("attention" in c.op for c in report.calls) or any("QKᵀ" in ln.short for g in groups for ln in g.lines):
        out.append(
            "Attention is counted dense: every query against every key (the full L×S score matrix), as "
            "the guides count it."
        )
    others = [
        f"{name} {sum(c.flops(call.work) for call in report.calls):,}" for name, c in PRESETS.items() if c != rules
    ]
    if report.calls:
        out.append(f"FLOPs under the other conventions: {', '.join(others)}.")
    batch = _leading_batch(report.inputs)
    if batch and report.macs % batch == 0 and report.flops % batch == 0:
        macs, flops = report.macs // batch, report.flops // batch
        per = "" if batch == 1 else f" ({report.macs:,} MACs / {batch} = {macs:,} per sample)"
        out.append(
            f"Scales linearly with batch (the inputs' first dimension is {batch}){per}: ×32 at batch 32 = "
            f"32·{macs:,} = {32 * macs:,} MACs and 32·{flops:,} = {32 * flops:,} FLOPs."
        )
    if not report.complete:
        out.append(incomplete_note(report))
    return [style.item(n) for n in out]


def render_explanation(report: Report, depth: int | None = None, fmt: str = "text") -> str:
    """The hand calculation of `report`: per module at `depth` (None = innermost) and per op, then the sums."""
    if fmt not in FORMATS:
        raise ValueError(f"render_explanation: fmt must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if depth is not None and depth < 0:
        raise ValueError(f"render_explanation: depth must be None (innermost modules) or ≥ 0, got {depth}")
    style = Markdown() if fmt == "markdown" else Text()
    rules = report.convention
    inputs = f" on {report.inputs}" if report.inputs else ""
    out = [style.heading(f"{report.model}{inputs}"), "", f"Convention '{rules.name}': {rules.description}.", ""]
    groups = build_groups(report, depth)
    for group in groups:
        out += _group_lines(style, group, rules)
    if not groups:
        out.append(style.item("No arithmetic was counted."))
    out += [""] + _totals(style, report, groups) + [""] + _notes(style, report, groups)
    return "\n".join(out)


def explain_by_module(report: Report) -> dict[str, str]:
    """{module: the hand calculation of the ops that ran directly in it}, in the order they ran (the HTML report
    shows each module's under its row; "" holds the ops outside every submodule)."""
    style, out = Text(), dict[str, str]()
    for group in build_groups(report, None):
        text = "\n".join(_group_lines(style, group, report.convention))
        out[group.name] = f"{out[group.name]}\n{text}" if group.name in out else text
    return out
