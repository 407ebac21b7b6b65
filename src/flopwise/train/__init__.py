"""Training: a step counted by phase (`count(..., step="train")`, `counting(step="train")`) and `Monitor`,
the MFU of a real training loop.

Importing this package registers the "train" step with `count` and `counting`.
"""

from ..count import STEPS, Step
from .monitor import Monitor
from .phases import PHASES, PhaseLabels, with_phases
from .step import count_train_step, default_loss

STEPS["train"] = Step(run=count_train_step, labeler=PhaseLabels)

__all__ = ["PHASES", "Monitor", "PhaseLabels", "count_train_step", "default_loss", "with_phases"]
