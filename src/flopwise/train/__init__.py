"""Training: a step counted by phase (`count(..., step="train")`, `counting(step="train")`) and `Monitor`,
the MFU of a real training loop.

Importing this package registers the "train" step with `count` and `counting`.
"""

from ..counter import STEPS, StepKind
from ..report.report import Report
from .formulas import FormulaComparison, vs_formulas
from .monitor import Monitor
from .phases import PHASES, PhaseLabels, with_phases
from .step import count_train_step, default_loss

STEPS["train"] = StepKind(run=count_train_step, labeler=PhaseLabels)
Report.register_view("vs_formulas", vs_formulas)

__all__ = [
    "PHASES",
    "FormulaComparison",
    "Monitor",
    "PhaseLabels",
    "count_train_step",
    "default_loss",
    "vs_formulas",
    "with_phases",
]
