"""The derivation behind a count: per module and op, the formula's terms, substituted, and their values.

Every figure is read from the `Work` the op's formula returned while counting (its `Term`s keep the symbols
they multiplied) and FLOPs are derived with the report's own convention, so an explanation built from these
steps cannot disagree with the count. `explain.py` renders them as text or Markdown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from torch import nn

from .conventions import Convention
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
    # convolutions of any rank; a custom module with only some of these attributes (MimiConv1d) is described
    # by its extra_repr instead
    if all(hasattr(module, a) for a in ("in_channels", "out_channels", "kernel_size", "stride", "padding")):
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
