"""Profiler markers: `Optimizer.step` (and any `torch.profiler.record_function`) opens and closes a named range
through these ops. They mark time; they do no arithmetic and move no tensor data."""

from __future__ import annotations

from .registry import zero_cost

# by name: the ops live in the "profiler" namespace, not in aten
zero_cost(
    "a profiler range marker (record_function): no arithmetic",
    ["profiler._record_function_enter", "profiler._record_function_enter_new", "profiler._record_function_exit"],
)
