"""The hand calculation behind a count: `explain(model, inputs)` or `report.explain()`.

`steps` reads each formula's terms and the convention's breakdown, `groups` orders the calls per module,
`style` and `render` write them out as text or Markdown. This package reads Reports; it only counts in
`explain()`, through `flopwise.count`.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ..counter import count
from ..engine.module_stack import describe_module
from ..report.report import Report
from .groups import CallLine, Group, build_groups
from .render import FORMATS, explain_by_module, render_explanation
from .steps import Step, flops_step, term_step, total_flops_step

__all__ = [
    "FORMATS",
    "CallLine",
    "Group",
    "Step",
    "build_groups",
    "describe_module",
    "explain",
    "explain_by_module",
    "flops_step",
    "render_explanation",
    "term_step",
    "total_flops_step",
]

Report.register_view("explain", render_explanation)
Report.register_view("explain_by_module", explain_by_module)  # read by the HTML report, which sits beside explain/


def explain(
    model: nn.Module, inputs: Any = (), *, depth: int | None = None, fmt: str = "text", **count_kwargs: Any
) -> str:
    """Count `model` on `inputs` (as `flopwise.count`, same keyword arguments) and explain the count."""
    return render_explanation(count(model, inputs, **count_kwargs), depth=depth, fmt=fmt)
