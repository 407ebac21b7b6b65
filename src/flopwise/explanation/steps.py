"""The steps of a hand calculation: a formula's terms, the sizes substituted, and their values.

Every figure is read from the `Work` the op's formula returned while counting (its `Term`s keep the symbols
they multiplied), and FLOPs from the convention's own `breakdown`, so an explanation built from these steps
cannot disagree with the count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..core.conventions import DOTS_PART, MAC_PART, Convention
from ..core.cost import Term, Work
from ..report.report import Report

_DIVIDED_BY = re.compile(r"\((\w+)/(\w+)\)")


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


def flops_step(work: Work, convention: Convention) -> Step | None:
    """FLOPs of one call, read off the convention's breakdown: '2·MACs + bias N·C_out·P_out = 2·112,896 + 16·784'."""
    exprs, subs = [], []
    for part in convention.breakdown(work):
        if part.label == MAC_PART:
            per_mac = convention.flops_per_mac
            exprs.append("MACs" if per_mac == 1 else f"{per_mac}·MACs")
            subs.append(f"{part.value:,}" if per_mac == 1 else f"{per_mac}·{part.value // per_mac:,}")
        elif part.label == DOTS_PART:
            exprs.append("− dot products")
            subs.append(f"− {-part.value:,}")
        elif part.term is not None:
            exprs.append(f"+ {part.label} {_wrapped(part.term.expr)}")
            subs.append(f"+ {_wrapped(part.term.substituted())}")
    if not exprs:
        return None
    return Step(" ".join(exprs).removeprefix("+ "), " ".join(subs).removeprefix("+ "), convention.flops(work))


def uncounted(work: Work, convention: Convention) -> list[tuple[str, int]]:
    """Non-contraction FLOPs of a call that the convention leaves out, as (kind, FLOPs)."""
    return [(f.kind, f.term.value) for f in work.flops if not convention.counts(f.kind)]


def total_flops_step(report: Report, convention: Convention | None = None) -> Step | None:
    """The total FLOPs from the total MACs and the non-contraction FLOPs by kind: '2·Total MACs + bias = …'."""
    rules = convention or report.convention
    sums: dict[str, int] = {}  # part label → FLOPs over every call, in the order the labels first appear
    for call in report.calls:
        for part in rules.breakdown(call.work):
            sums[part.label] = sums.get(part.label, 0) + part.value
    per_mac = rules.flops_per_mac
    exprs, subs = [], []
    first = [label for label in (MAC_PART, DOTS_PART) if label in sums]  # the contraction parts lead, as per call
    for label, value in [(label, sums[label]) for label in first + [k for k in sums if k not in first]]:
        if label == MAC_PART and value:
            exprs.append("Total MACs" if per_mac == 1 else f"{per_mac}·Total MACs")
            subs.append(f"{value:,}" if per_mac == 1 else f"{per_mac}·{value // per_mac:,}")
        elif label == DOTS_PART and value:
            exprs.append("− dot products")
            subs.append(f"− {-value:,}")
        elif value:
            exprs.append(f"+ {label}")
            subs.append(f"+ {value:,}")
    if not exprs:
        return None
    return Step(" ".join(exprs).removeprefix("+ "), " ".join(subs).removeprefix("+ "), sum(sums.values()))
