"""The hand calculation of a count, shown the way the guides teach it.

For each module and each op in it: the formula in symbols, the sizes substituted, the result; then the
sums, the convention the FLOPs follow, what other conventions would give, and how the count scales with
batch. The steps come from `derivation.py`, read off the formulas' own terms, so the explanation cannot
disagree with the count.
"""

from __future__ import annotations

import re
from typing import Any

from torch import nn

from .conventions import PRESETS, Convention
from .derivation import (  # noqa: F401 - build_groups, describe_module, … are part of this module's API
    FORMATS,
    MAX_SUM_GROUPS,
    MAX_SUM_TERMS,
    CallLine,
    Group,
    Step,
    build_groups,
    describe_module,
    flops_step,
    macs_term,
    term_step,
)
from .report import Report

# — rendering ——————————————————————————————————————————————————————————————————————————————————————————————

_SYMBOL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class _Text:
    """Plain text for the console."""

    def math(self, s: str) -> str:
        return s

    def equation(self, name: str, step: Step) -> str:
        chain = [step.expr]
        if step.substituted != step.expr:
            chain.append(step.substituted)
        if step.parts:
            chain.append(" + ".join(f"{p:,}" for p in step.parts))
        if chain[-1] != f"{step.value:,}":
            chain.append(f"{step.value:,}")
        return f"{name} = " + " = ".join(chain)

    def inline(self, s: str) -> str:
        return s

    def heading(self, s: str) -> str:
        return s

    def title(self, name: str, rest: str) -> str:
        return name + rest

    def item(self, s: str, level: int = 0) -> str:
        return "  " * level + s


class _Markdown(_Text):
    """Markdown with the formulas in inline math, for notebooks and docs."""

    def math(self, s: str) -> str:
        def symbol(m: re.Match[str]) -> str:
            name = m.group(0)
            head, _, sub = name.partition("_")
            if len(name) == 1:
                return name
            if len(head) == 1 and sub:
                return f"{head}_{{{sub}}}" if len(sub) == 1 else f"{head}_{{\\mathrm{{{sub}}}}}"
            return r"\mathrm{" + name.replace("_", r"\_") + "}"

        s = _SYMBOL.sub(symbol, s)
        s = re.sub(r"(?<=\d),(?=\d{3})", "{,}", s)
        s = re.sub(r"(\\mathrm\{[^}]*\}) (?=[A-Za-z\\(\d])", r"\1\\;", s)  # 'bias N·C' keeps its space
        return s.replace("·", r" \cdot ").replace("−", "-").replace("×", r" \times ").replace("ᵀ", "^T")

    def equation(self, name: str, step: Step) -> str:
        chain = super().equation("", step).removeprefix(" = ")
        return f"{name} $= {self.math(chain)}$"

    def inline(self, s: str) -> str:
        return f"${self.math(s)}$"

    def heading(self, s: str) -> str:
        return f"### {s}"

    def title(self, name: str, rest: str) -> str:
        return f"**{name}**{rest}"

    def item(self, s: str, level: int = 0) -> str:
        return "  " * level + "- " + s


def _call_text(style: _Text, line: CallLine, rules: Convention) -> str:
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
    if line.call.work.note and not (rules.causal and line.call.work.causal_macs is not None):
        text += f" — {line.call.work.note}"  # (the note describes the dense count)
    return f"{line.repeat} identical calls, each: {text}" if line.repeat > 1 else text


def _group_lines(style: _Text, group: Group, rules: Convention) -> list[str]:
    if len(group.lines) == 1 and group.name and not group.lines[0].label.startswith("["):
        return [style.item(f"{style.title(group.head, group.rest)}: {_call_text(style, group.lines[0], rules)}")]
    out = [style.item(style.title(group.head, group.rest))]
    out += [style.item(f"{line.label}: {_call_text(style, line, rules)}", 1) for line in group.lines]
    return out


def _sum_line(style: _Text, what: str, terms: list[tuple[str, int, int]], total: int) -> str:
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


def _totals(style: _Text, report: Report, groups: list[Group]) -> list[str]:
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


def total_flops_step(report: Report, convention: Convention | None = None) -> Step | None:
    """The total FLOPs from the total MACs and the non-contraction FLOPs by kind: '2·Total MACs + bias = …'."""
    rules = convention or report.convention
    per_mac = rules.flops_per_mac
    exprs, subs = [], []
    if report.macs and per_mac:
        exprs.append("Total MACs" if per_mac == 1 else f"{per_mac}·Total MACs")
        subs.append(f"{report.macs:,}" if per_mac == 1 else f"{per_mac}·{report.macs:,}")
        dots = sum(c.work.dots for c in report.calls)
        if rules.exact_dots and dots:
            exprs.append("− dot products")
            subs.append(f"− {dots:,}")
    if rules.other_ops:
        for kind, value in _flops_by_kind(report).items():
            if kind not in rules.skip and value:
                exprs.append(f"+ {kind}")
                subs.append(f"+ {value:,}")
    if not exprs:
        return None
    value = sum(rules.flops(c.work) for c in report.calls)
    return Step(" ".join(exprs).removeprefix("+ "), " ".join(subs).removeprefix("+ "), value)


def _leading_batch(inputs: str) -> int | None:
    """The first dimension of the first tensor input ('1×10×256 float32, …' → 1); None if there is none."""
    match = re.match(r"\s*(\d+)×", inputs)
    return int(match.group(1)) if match else None


def _notes(style: _Text, report: Report, groups: list[Group]) -> list[str]:
    rules, kinds = report.convention, _flops_by_kind(report)
    out = []
    left_out = {k: v for k, v in kinds.items() if v and (not rules.other_ops or k in rules.skip)}
    if left_out:
        out.append(f"Not counted under '{rules.name}': " + ", ".join(f"{k} {v:,} FLOPs" for k, v in left_out.items())
                   + ".")
    if kinds.get("bias"):
        out.append(f"Bias adds are FLOPs, not MACs: {kinds['bias']:,} here; convention 'no-bias' leaves them out.")
    dots = sum(c.work.dots for c in report.calls)
    if dots and rules.flops_per_mac == 2 and not rules.exact_dots:
        out.append(f"2 FLOPs per MAC counts a k-term dot product as 2k; counted as k multiplies and k−1 adds "
                   f"(convention 'exact'), each of the {dots:,} dot products is one FLOP less.")
    elif dots and rules.exact_dots:
        out.append(f"A k-term dot product is counted as 2k−1 FLOPs (k multiplies, k−1 adds); at 2 FLOPs per MAC "
                   f"each of the {dots:,} dot products would be one FLOP more.")
    if kinds.get("bn_inference"):
        out.append(f"Inference batch norm costs {kinds['bn_inference']:,} FLOPs; folded into the preceding "
                   "convolution (convention 'fused-bn') it costs none.")
    causal = [c.work for c in report.calls if c.work.causal_macs is not None]
    dense, kept = sum(w.mac_count for w in causal), sum(w.causal_macs.value for w in causal if w.causal_macs)
    if causal and rules.causal:
        out.append(f"Causal attention counts only the query–key pairs its mask keeps: {kept:,} MACs "
                   f"(dense, the full score matrix: {dense:,}).")
    elif causal:
        out.append(f"Causal attention is counted dense, the full score matrix, as the guides count it: {dense:,} "
                   f"MACs; convention 'causal' counts only the pairs the mask keeps: {kept:,}.")
    elif any("attention" in c.op for c in report.calls) or any("QKᵀ" in ln.short for g in groups for ln in g.lines):
        out.append("Attention is counted dense: every query against every key (the full L×S score matrix), as "
                   "the guides count it.")
    others = [f"{name} {sum(c.flops(call.work) for call in report.calls):,}" for name, c in PRESETS.items()
              if c != rules]
    if report.calls:
        out.append(f"FLOPs under the other conventions: {', '.join(others)}.")
    batch = _leading_batch(report.inputs)
    if batch and report.macs % batch == 0 and report.flops % batch == 0:
        macs, flops = report.macs // batch, report.flops // batch
        per = "" if batch == 1 else f" ({report.macs:,} MACs / {batch} = {macs:,} per sample)"
        out.append(f"Scales linearly with batch (the inputs' first dimension is {batch}){per}: ×32 at batch 32 = "
                   f"32·{macs:,} = {32 * macs:,} MACs and 32·{flops:,} = {32 * flops:,} FLOPs.")
    if report.unsupported_where:
        ops = ", ".join(f"{op} ×{n}" for op, n in report.unsupported.items())
        out.append(f"INCOMPLETE: no formula for {ops}; the totals are a lower bound.")
    return [style.item(n) for n in out]


def render_explanation(report: Report, depth: int | None = None, fmt: str = "text") -> str:
    """The hand calculation of `report`: per module at `depth` (None = innermost) and per op, then the sums."""
    if fmt not in FORMATS:
        raise ValueError(f"render_explanation: fmt must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if depth is not None and depth < 0:
        raise ValueError(f"render_explanation: depth must be None (innermost modules) or ≥ 0, got {depth}")
    style = _Markdown() if fmt == "markdown" else _Text()
    rules = report.convention
    inputs = f" on {report.inputs}" if report.inputs else ""
    out = [style.heading(f"{report.model}{inputs}"), "",
           f"Convention '{rules.name}': {rules.description}.", ""]
    groups = build_groups(report, depth)
    for group in groups:
        out += _group_lines(style, group, rules)
    if not groups:
        out.append(style.item("No arithmetic was counted."))
    out += [""] + _totals(style, report, groups) + [""] + _notes(style, report, groups)
    return "\n".join(out)


def explain(model: nn.Module, inputs: Any = (), *, depth: int | None = None, fmt: str = "text",
            **count_kwargs: Any) -> str:
    """Count `model` on `inputs` (as `flopwise.count`, same keyword arguments) and explain the count."""
    from .count import count  # here, not at the top: count builds reports that describe modules with this file

    return render_explanation(count(model, inputs, **count_kwargs), depth=depth, fmt=fmt)
