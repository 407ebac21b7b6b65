"""The structure of an explanation: the costed calls of a report in groups per module, in the order they ran.

The two products around a softmax are named as the guides name them (QKᵀ before it, AV after it).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.cost import OpCall
from ..report.report import Report
from .steps import Step, flops_step, term_step, uncounted

_CONTRACTIONS = {"aten.mm", "aten.bmm", "aten.baddbmm", "aten.addmm", "aten.matmul"}
_SOFTMAX = {"aten._softmax", "aten.softmax", "aten._safe_softmax"}
_SCORE_ADJUSTMENTS = {"elementwise", "mask", "scale"}  # ops allowed between QKᵀ, softmax and AV


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
    shown = [i for i, c in enumerate(report.calls) if c.cost.macs or c.cost.flops or c.op in report.unsupported_where]
    hints = _attention_hints(report, shown)
    raw: list[tuple[str, list[tuple[int, int]]]] = []  # (group, [(call index, repeat)])
    for i in shown:
        call, name = report.calls[i], _group_of(report.calls[i].module, depth)
        if not raw or raw[-1][0] != name:
            raw.append((name, []))
        entries = raw[-1][1]
        if entries:
            last = report.calls[entries[-1][0]]
            if (last.op, last.module, last.work, last.cost) == (
                call.op,
                call.module,
                call.work,
                call.cost,
            ) and hints.get(i) == hints.get(entries[-1][0]):
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
            macs = report.convention.macs_term(call.work)
            where = call.module[len(name) :].lstrip(".") if name else call.module
            hint = hints.get(i, "")
            label = (f"[{where}] " if where else "") + call.op + (f" ({hint})" if hint else "")
            alone = call.module and len(ops_in[call.module]) == 1
            short = hint or (call.module if alone else f"{call.module} {call.op}".strip())
            lines.append(
                CallLine(
                    call,
                    label,
                    short,
                    repeat,
                    term_step(macs) if macs is not None else None,
                    flops_step(call.work, report.convention),
                    call.op in report.unsupported_where,
                    tuple(uncounted(call.work, report.convention)),
                )
            )
        groups.append(Group(name, *_title(report, name), tuple(lines)))
    return groups
