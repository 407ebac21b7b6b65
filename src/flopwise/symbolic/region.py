"""Which sizes a symbolic count answers from its run with symbolic sizes, and which it counts.

A run with symbolic sizes (trace.py) stands for the sizes where its guards hold (`Trace.holds_at`): there the same
ops run, and each formula evaluated at those sizes is what a count there records. Every other size is counted
directly, never extrapolated (DESIGN.md, principle 6): `Costs` answers any sizes so, and keeps what it counted.
A fit made by counting alone stands for no size it did not count; the sizes it is checked at go far beyond its grid
and past every breakpoint the model shows (`past`): its guards as far as a run with symbolic sizes got, its
config's window, chunk and position limits, and a size that is a multiple of no power of two (padding).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from .trace import Trace

Values = tuple[int, ...]  # one count's metrics: macs, flops, bytes_read, bytes_written, params
TRACED, COUNTED = "traced", "counted"  # where the costs at a size came from (`Evaluated.source`)

CONFIG_LIMITS = (
    "sliding_window",
    "attention_window",
    "attention_chunk_size",
    "chunk_size_feed_forward",
    "max_position_embeddings",
    "n_positions",
)  # sizes in tokens where a transformers model may change
PADDING = 4097  # a multiple of no power of two: padding to a multiple of up to 4,096 shows there
CHECK_LIMIT = 8192  # a check past this size is left out (formulas() names it): a count there may be too large


class SymbolicError(ValueError):
    """The counts are not one polynomial in a named size (or the size was named wrongly)."""


class Costs:
    """The costs at any sizes: evaluated from the trace where its guards hold, else counted (once, then kept).
    It holds the counting closure (the model and the example inputs) for as long as the report lives."""

    def __init__(
        self, names: Sequence[str], count: Callable[[dict[str, int]], Values], trace: Trace | None, params: int
    ) -> None:
        self.names = tuple(names)
        self.trace = trace
        self.params = params
        self.counted: dict[tuple[int, ...], Values] = {}
        self.traced: dict[tuple[int, ...], Values] = {}
        self._count = count

    def key(self, sizes: dict[str, int]) -> tuple[int, ...]:
        return tuple(sizes[n] for n in self.names)

    def holds(self, sizes: dict[str, int]) -> bool:
        """Whether the trace stands for these sizes (False without one)."""
        return self.trace is not None and self.trace.holds_at(sizes)

    def at(self, sizes: dict[str, int]) -> tuple[Values, str]:
        """(values, TRACED or COUNTED): a size counted already is not counted again."""
        key = self.key(sizes)
        if key in self.counted:
            return self.counted[key], COUNTED
        if key in self.traced:
            return self.traced[key], TRACED
        if self.trace is not None and self.trace.holds_at(sizes):
            self.traced[key] = (*self.trace.totals(sizes), self.params)
            return self.traced[key], TRACED
        self.counted[key] = self._count(sizes)
        return self.counted[key], COUNTED

    def __deepcopy__(self, memo: dict[int, Any]) -> Costs:
        return self  # a report copied shares it (the model is not copied)


def conditions(trace: Trace) -> list[Any]:
    """The trace's guards as sympy conditions in the sizes' names: the region it stands for (with sizes ≥ 2)."""
    import sympy

    names = {symbol: sympy.Symbol(name, integer=True, positive=True) for name, symbol in trace.symbols.items()}
    return [guard.expr.xreplace(names) for guard in trace.env.guards]


def config_limits(model: Any) -> dict[str, int]:
    """The sizes where a model's config says its costs may change: {field: size} (a transformers config)."""
    config = getattr(model, "config", None)
    found: dict[str, int] = {}
    for name in CONFIG_LIMITS:
        value = getattr(config, name, None) if config is not None else None
        if isinstance(value, int) and not isinstance(value, bool) and value > 1:
            found[name] = value
    return found


class Check(NamedTuple):
    """A size (in steps) to check a fit at, and why."""

    steps: int
    why: str


def past(
    name: str, multiple: int, beyond: int, conditions: Sequence[Any], limits: dict[str, int], sequence: bool
) -> tuple[list[Check], list[str]]:
    """Sizes (in steps) past every breakpoint of one named size, each past the fitted steps (`beyond`), and the
    checks left out as too large. Breakpoints: the integers in the guards that name it (a branch on the size), and
    for a sequence-like size (one labelling a dimension past the batch) the config's limits and padding."""
    import sympy

    marks: dict[int, str] = {}
    for condition in conditions:
        if name in {str(s) for s in condition.free_symbols}:
            for number in condition.atoms(sympy.Integer):
                marks.setdefault(abs(int(number)), f"past the guard {condition}")
    if sequence:
        for field, value in limits.items():
            marks.setdefault(value, f"past {field} = {value:,}")
        marks.setdefault(PADDING - 1, "a size that is a multiple of no power of two")
    checks: dict[int, str] = {}
    skipped: list[str] = []
    for mark, why in sorted(marks.items()):
        steps = mark // multiple + 1  # the first whole step past the mark
        while mark == PADDING - 1 and steps * multiple % 64 == 0:
            steps += 1
        if steps <= beyond:
            continue
        if steps * multiple > CHECK_LIMIT:
            skipped.append(f"{name} = {steps * multiple:,} ({why})")
            continue
        checks.setdefault(steps, why)
    return [Check(k, why) for k, why in sorted(checks.items())], skipped


def start(
    trace: Trace, names: Sequence[str], steps: dict[str, int], hints: dict[str, int], first: int
) -> dict[str, int]:
    """The smallest whole steps (from `first`) where the trace holds, each size with the others at the trace's own
    sizes; the trace's own sizes when those together fall outside."""
    found: dict[str, int] = {}
    for n in names:
        for k in range(first, max(first, hints[n] // steps[n]) + 1):
            if trace.holds_at({**hints, n: k * steps[n]}):
                found[n] = k
                break
        else:
            found[n] = max(first, hints[n] // steps[n])
    if trace.holds_at({n: found[n] * steps[n] for n in names}):
        return found
    return {n: max(first, hints[n] // steps[n]) for n in names}
