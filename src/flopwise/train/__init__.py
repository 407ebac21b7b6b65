"""Training: a step counted by phase (`count(..., step="train")`, `counting(step="train")`).

Importing this package registers the "train" step with `count` and `counting`.
"""

from ..count import STEPS, Step
from .phases import PHASES, PhaseLabels, with_phases
from .step import count_train_step, default_loss

STEPS["train"] = Step(run=count_train_step, labeler=PhaseLabels)

__all__ = ["PHASES", "PhaseLabels", "count_train_step", "default_loss", "with_phases"]
