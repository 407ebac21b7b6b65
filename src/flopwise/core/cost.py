"""The values a count is made of.

A formula describes the work of one op call as a `Work`: its MACs and its non-contraction FLOPs, each a
`Term` that keeps the symbols it multiplied so `explain` can show the hand calculation. The engine turns
a `Work` into a `Cost` (plain integers) through a convention; costs add up into reports.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import NamedTuple

_SYMBOL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@cache
def _compile(expr: str):  # type: ignore[no-untyped-def]
    # Formulas are written with the symbols people use by hand (·, −, /); Python evaluates them.
    python = expr.replace("·", "*").replace("×", "*").replace("−", "-").replace("/", "//")
    return compile(python, expr, "eval")


@dataclass(frozen=True)
class Term:
    """One quantity as a formula in symbols, the sizes substituted into it, and its value.

    `Term("M·N·K", M=4, N=6, K=5).value == 120`. The value is computed from the expression itself, so the
    explanation of a count and the count cannot disagree.
    """

    expr: str
    sizes: tuple[tuple[str, int], ...]
    value: int

    def __init__(self, expr: str, **sizes: int) -> None:
        names = set(_SYMBOL.findall(expr))
        missing = names - sizes.keys()
        if missing:
            raise ValueError(f"Term {expr!r} has no size for {sorted(missing)}")
        value = eval(_compile(expr), {"__builtins__": {}}, sizes)  # noqa: S307 - our own formula strings
        object.__setattr__(self, "expr", expr)
        object.__setattr__(self, "sizes", tuple((k, int(v)) for k, v in sizes.items()))
        object.__setattr__(self, "value", int(value))

    def substituted(self) -> str:
        """The expression with each symbol replaced by its size: `4·6·5`."""
        sizes = dict(self.sizes)
        return _SYMBOL.sub(lambda m: str(sizes[m.group(0)]), self.expr)


@dataclass(frozen=True)
class Flops:
    """Non-contraction FLOPs of one kind ("bias", "elementwise", "softmax", "norm", …)."""

    kind: str
    term: Term


@dataclass(frozen=True)
class Work:
    """What a formula returns for one op call."""

    macs: Term | None = None
    dots: int = 0  # dot products computed (outputs of the contraction); exact counting uses 2k−1 each
    flops: tuple[Flops, ...] = ()
    note: str = ""  # a convention or assumption the count depends on, shown by explain
    masked_macs: Term | None = None  # attention under a mask: the MACs of the query–key pairs it keeps
    bytes_read: int | None = None  # when an op reads only part of an input (a gather's rows); else all inputs
    bytes_written: int | None = None  # when an op writes less than its outputs (an allocation writes nothing)
    dtype: str | None = None  # the dtype the products are computed in, when not the one its tensors say (see
    # registry.compute_dtype): a dynamically quantized layer multiplies int8 copies of its float input
    other_dtype: str | None = None  # the dtype of its non-contraction FLOPs when not `dtype`: an int8 LSTM's
    # gate arithmetic runs in float on the dequantized products (report.by_dtype splits the call)

    @property
    def mac_count(self) -> int:
        return self.macs.value if self.macs is not None else 0


ZERO_WORK = Work()


@dataclass(frozen=True)
class Cost:
    """Plain counts; frozen and addable. Reads and writes are kept apart."""

    macs: int = 0
    flops: int = 0
    bytes_read: int = 0
    bytes_written: int = 0

    def __add__(self, other: Cost) -> Cost:
        return Cost(
            self.macs + other.macs,
            self.flops + other.flops,
            self.bytes_read + other.bytes_read,
            self.bytes_written + other.bytes_written,
        )

    @property
    def bytes(self) -> int:
        return self.bytes_read + self.bytes_written

    @property
    def intensity(self) -> float | None:
        """FLOPs per byte moved; None when nothing moved."""
        return self.flops / self.bytes if self.bytes else None


ZERO = Cost()


def summed(costs: Iterable[Cost]) -> Cost:
    """The sum of many costs, added as plain integers (a long generate() makes hundreds of thousands of calls)."""
    return totals_by(("", cost, 1) for cost in costs).get("", ZERO)


def totals_by(parts: Iterable[tuple[str, Cost, int]]) -> dict[str, Cost]:
    """{name: the sum of n × cost} over (name, cost, n), added as plain integers, names in first-seen order."""
    sums: dict[str, list[int]] = {}
    for name, cost, n in parts:
        total = sums.get(name)
        if total is None:
            total = sums[name] = [0, 0, 0, 0]
        total[0] += n * cost.macs
        total[1] += n * cost.flops
        total[2] += n * cost.bytes_read
        total[3] += n * cost.bytes_written
    return {name: Cost(*total) for name, total in sums.items()}


class OpCall(NamedTuple):
    """One aten op call seen during a count (a named tuple: a large model makes tens of thousands)."""

    op: str
    module: str  # qualified name of the innermost module it ran in ("" for the root / outside)
    cost: Cost
    work: Work = ZERO_WORK
    shapes: tuple[tuple[int, ...], ...] = ()
    dtype: str = ""  # the dtype it computed in (registry.compute_dtype): report.by_dtype() groups by it


def with_uses(calls: Sequence[OpCall]) -> Iterable[tuple[OpCall, int]]:
    """Each distinct call record once, with how often it appears: a generate() report repeats one decode step's
    records hundreds of times, and sums over them add each record once, times its uses."""
    distinct = {id(call): call for call in calls}
    if len(distinct) == len(calls):
        return ((call, 1) for call in calls)
    uses = Counter(map(id, calls))
    return ((call, uses[key]) for key, call in distinct.items())
