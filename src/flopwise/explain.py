"""The hand calculation of a count, shown the way the guides teach it.

For each module and each op in it: the formula in symbols, the sizes substituted, the result; then the
sums, the convention the FLOPs follow, what other conventions would give, and how the count scales with
batch. Every figure is read from the `Work` the op's formula returned while counting (its `Term`s keep the
symbols they multiplied) and the FLOPs are derived with the report's own convention, so the explanation
cannot disagree with the count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from torch import nn

from .conventions import PRESETS, Convention
from .cost import OpCall, Term, Work
from .report import Report

FORMATS = ("text", "markdown")
MAX_SUM_TERMS = 12  # longer sums are shown per module, then only as a count of terms
MAX_SUM_GROUPS = 16
_CONTRACTIONS = {"aten.mm", "aten.bmm", "aten.baddbmm", "aten.addmm", "aten.matmul"}
_SOFTMAX = {"aten._softmax", "aten.softmax", "aten._safe_softmax"}
_SCORE_ADJUSTMENTS = {"elementwise", "mask", "scale"}  # ops allowed between QKᵀ, softmax and AV
_DIVIDED_BY = re.compile(r"\((\w+)/(\w+)\)")


# — module headers ————————————————————————————————————————————————————————————————————————————————————————


def _sizes(value: Any) -> str:
    """(3, 3) → '3'; (3, 5) → '3×5'; 'same' → 'same'."""
    if isinstance(value, (tuple, list)):
        return str(value[0]) if len(set(value)) == 1 else "×".join(str(v) for v in value)
    return str(value)


def describe_module(module: nn.Module) -> str:
    """A short description of a module's hyper-parameters: 'Conv2d 1→16, k3, s1, p1', 'Linear 10→20, no bias'."""
    kind = type(module).__name__
    no_bias = getattr(module, "bias", True) is None
    if hasattr(module, "in_channels") and hasattr(module, "kernel_size"):  # convolutions of any rank
        parts = [f"{kind} {module.in_channels}→{module.out_channels}", f"k{_sizes(module.kernel_size)}"]
        parts += [f"s{_sizes(module.stride)}", f"p{_sizes(module.padding)}"]
        if any(d != 1 for d in getattr(module, "dilation", (1,))):
            parts.append(f"d{_sizes(module.dilation)}")
        if getattr(module, "groups", 1) != 1:
            parts.append(f"groups {module.groups}")
    elif hasattr(module, "in_features") and hasattr(module, "out_features"):  # Linear and its subclasses
        parts = [f"{kind} {module.in_features}→{module.out_features}"]
    elif hasattr(module, "nx") and hasattr(module, "nf"):  # transformers' Conv1D (GPT-2 projections)
        parts = [f"{kind} {module.nx}→{module.nf}"]
    else:
        try:
            extra = module.extra_repr()
        except Exception:  # a custom extra_repr that fails must not stop the explanation
            extra = ""
        extra = extra if len(extra) <= 60 else extra[:59] + "…"
        return f"{kind} {extra}" if extra and "\n" not in extra else kind
    if no_bias:
        parts.append("no bias")
    return ", ".join(parts)


# — derivations ———————————————————————————————————————————————————————————————————————————————————————————


@dataclass(frozen=True)
class Step:
    """One line of a hand calculation: `expr = substituted [= parts] = value`."""

    expr: str  # in symbols: "H_out·W_out·K_h·K_w·(C_in/groups)·C_out·N"
    substituted: str  # the sizes put in: "28·28·3·3·1·16·1"
    value: int
    parts: tuple[int, ...] = ()  # the values of the top-level summands, when the expression is a sum


def _summands(expr: str) -> list[str]:
    """Split an expression at its top-level '+' signs: 'a·b + (c + d)' → ['a·b', '(c + d)']."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(expr):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "+" and depth == 0:
            parts.append(expr[start:i].strip())
            start = i + 1
    parts.append(expr[start:].strip())
    return parts


def _wrapped(expr: str) -> str:
    return f"({expr})" if len(_summands(expr)) > 1 or "−" in expr.replace("(", " ").split(")")[-1] else expr


def term_step(term: Term) -> Step:
    """The derivation of one `Term`; a sum also shows the value of each summand."""
    summands = _summands(term.expr)
    sizes = dict(term.sizes)
    parts = tuple(Term(s, **sizes).value for s in summands) if len(summands) > 1 else ()
    return Step(term.expr, _substituted(term), term.value, parts)


def _substituted(term: Term) -> str:
    """`Term.substituted()` with a division by one left out, as the guides write it: (C_in/groups) → 1."""
    sizes = dict(term.sizes)

    def simplify(m: re.Match[str]) -> str:
        top, bottom = m.group(1), m.group(2)
        return str(sizes[top]) if sizes.get(bottom) == 1 and top in sizes else m.group(0)

    return Term(_DIVIDED_BY.sub(simplify, term.expr), **sizes).substituted()


def macs_term(work: Work, convention: Convention) -> Term | None:
    """The MACs the convention counts: the unmasked pairs of causal attention under 'causal', else all."""
    return work.causal_macs if convention.causal and work.causal_macs is not None else work.macs


def flops_step(work: Work, convention: Convention) -> Step | None:
    """FLOPs of one call as the convention derives them: '2·MACs + bias N·C_out·P_out = 2·112,896 + 1·16·784'."""
    exprs: list[str] = []
    subs: list[str] = []
    shown = 0
    macs = macs_term(work, convention)
    if macs is not None and convention.flops_per_mac:
        per_mac = convention.flops_per_mac
        exprs.append("MACs" if per_mac == 1 else f"{per_mac}·MACs")
        subs.append(f"{macs.value:,}" if per_mac == 1 else f"{per_mac}·{macs.value:,}")
        shown += per_mac * macs.value
        if convention.exact_dots and work.dots:  # a k-term dot product is k multiplies and k−1 adds
            exprs.append("− dot products")
            subs.append(f"− {work.dots:,}")
            shown -= work.dots
    if convention.other_ops:
        for part in work.flops:
            if part.kind not in convention.skip:
                exprs.append(f"+ {part.kind} {_wrapped(part.term.expr)}")
                subs.append(f"+ {_wrapped(part.term.substituted())}")
                shown += part.term.value
    value = convention.flops(work)
    if shown != value:  # a convention rule this renderer does not know: show it rather than hide it
        exprs.append("+ convention adjustment")
        subs.append(f"+ {value - shown:,}".replace("+ -", "− "))
    if not exprs:
        return None
    return Step(" ".join(exprs).removeprefix("+ "), " ".join(subs).removeprefix("+ "), value)


def uncounted(work: Work, convention: Convention) -> list[tuple[str, int]]:
    """Non-contraction FLOPs of a call that the convention leaves out, as (kind, FLOPs)."""
    return [(f.kind, f.term.value) for f in work.flops if not convention.other_ops or f.kind in convention.skip]


# — structure: groups of calls, in the order they ran ————————————————————————————————————————————————————


@dataclass(frozen=True)
class CallLine:
    call: OpCall
    label: str  # "aten.bmm (QKᵀ)", "[0.conv1] aten.convolution"
    short: str  # the name used in the sums: "fc1", "QKᵀ"
    repeat: int  # identical consecutive calls shown once
    macs: Step | None
    flops: Step | None
    unsupported: bool
    left_out: tuple[tuple[str, int], ...]  # non-contraction FLOPs the convention does not count


@dataclass(frozen=True)
class Group:
    name: str  # module qualified name; "" for ops outside every submodule
    head: str  # "conv1"
    rest: str  # " (Conv2d 1→16, k3, s1, p1)"
    lines: tuple[CallLine, ...]

    @property
    def macs(self) -> int:
        return sum(line.call.cost.macs * line.repeat for line in self.lines)

    @property
    def flops(self) -> int:
        return sum(line.call.cost.flops * line.repeat for line in self.lines)


def _group_of(module: str, depth: int | None) -> str:
    return module if depth is None else ".".join(module.split(".")[:depth]) if module else ""


def _attention_hints(report: Report, shown: list[int]) -> dict[int, str]:
    """Name the two products around a softmax as the guides do: QKᵀ before it, AV after it."""
    calls = report.calls
    arithmetic = [i for i, c in enumerate(calls) if c.work.macs is not None or c.work.flops]

    def neighbour(position: int, step: int) -> OpCall | None:
        j = position + step
        while 0 <= j < len(arithmetic):
            work = calls[arithmetic[j]].work
            if work.macs is not None or {f.kind for f in work.flops} - _SCORE_ADJUSTMENTS:
                return calls[arithmetic[j]]
            j += step
        return None

    hints: dict[int, str] = {}
    where = {index: position for position, index in enumerate(arithmetic)}
    for i in shown:
        if calls[i].op not in _CONTRACTIONS or i not in where:
            continue
        after, before = neighbour(where[i], 1), neighbour(where[i], -1)
        if after is not None and after.op in _SOFTMAX:
            hints[i] = "QKᵀ"
        elif before is not None and before.op in _SOFTMAX:
            hints[i] = "AV"
    return hints


def _title(report: Report, name: str) -> tuple[str, str]:
    if not name:
        if report.model == "code":  # counting() over arbitrary code: no root module
            return "ops outside any module", ""
        return (report.model, ", ops outside submodules") if len(report.modules) > 1 else (report.model, "")
    kind = report.describe.get(name) or (report.modules[name].type if name in report.modules else "")
    return name, f" ({kind})" if kind else ""


def build_groups(report: Report, depth: int | None = None) -> list[Group]:
    """Consecutive costed calls of the same module (at `depth`) form a group, in the order they ran."""
    shown = [
        i for i, c in enumerate(report.calls)
        if c.cost.macs or c.cost.flops or c.op in report.unsupported_where
    ]
    hints = _attention_hints(report, shown)
    raw: list[tuple[str, list[tuple[int, int]]]] = []  # (group, [(call index, repeat)])
    for i in shown:
        call, name = report.calls[i], _group_of(report.calls[i].module, depth)
        if not raw or raw[-1][0] != name:
            raw.append((name, []))
        entries = raw[-1][1]
        if entries:
            last = report.calls[entries[-1][0]]
            if (last.op, last.module, last.work, last.cost) == (call.op, call.module, call.work, call.cost) and \
                    hints.get(i) == hints.get(entries[-1][0]):
                entries[-1] = (entries[-1][0], entries[-1][1] + 1)
                continue
        entries.append((i, 1))
    ops_in: dict[str, set[str]] = {}  # module → the ops shown in it, to name a call by its module alone
    for i in shown:
        ops_in.setdefault(report.calls[i].module, set()).add(report.calls[i].op)
    groups = []
    for name, entries in raw:
        lines = []
        for i, repeat in entries:
            call = report.calls[i]
            macs = macs_term(call.work, report.convention)
            where = call.module[len(name):].lstrip(".") if name else call.module
            hint = hints.get(i, "")
            label = (f"[{where}] " if where else "") + call.op + (f" ({hint})" if hint else "")
            alone = call.module and len(ops_in[call.module]) == 1
            short = hint or (call.module if alone else f"{call.module} {call.op}".strip())
            lines.append(CallLine(
                call, label, short, repeat,
                term_step(macs) if macs is not None else None,
                flops_step(call.work, report.convention),
                call.op in report.unsupported_where,
                tuple(uncounted(call.work, report.convention)),
            ))
        groups.append(Group(name, *_title(report, name), tuple(lines)))
    return groups


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
