"""A transformers `TrainerCallback`: each training step under a `flopwise.Monitor`, its figures in the logs.

```python
trainer = Trainer(model, args, train_dataset=ds, callbacks=[FlopwiseCallback(peak_tflops=None)])
```

Each log the Trainer writes (every `logging_steps`) gets `flops` (the last step's FLOPs, contractions),
`tflops_per_s` and, where the peak is known, `mfu` and `hfu` — the last step's figures, so they show in
`trainer.state.log_history` and in every logger the Trainer reports to. `callback.monitor.summary()` has the
whole run. The step spans `on_step_begin` to `on_step_end`: forward, backward (all gradient-accumulation
micro-batches) and the optimizer step.
"""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback

from ..train.monitor import Monitor, StepRecord


class FlopwiseCallback(TrainerCallback):
    def __init__(self, peak_tflops: float | None = None) -> None:
        self.peak_tflops = peak_tflops
        self.monitor: Monitor | None = None
        self._step: Any = None
        self._last: StepRecord | None = None

    def on_step_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if self.monitor is None:
            self.monitor = Monitor(model, self.peak_tflops)
        self._step = self.monitor.step()
        self._last = self._step.__enter__()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._step is not None:
            step, self._step = self._step, None
            step.__exit__(None, None, None)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if logs is None or self.monitor is None or self._last is None or "loss" not in logs:
            return  # only training logs; evaluation and the final summary log are left alone
        extra = figures(self.monitor, self._last)
        logs.update(extra)  # what the loggers called after this callback report
        history = state.log_history  # the Trainer appended a copy of these logs before calling on_log
        if history and history[-1].get("step") == state.global_step and "loss" in history[-1]:
            history[-1].update(extra)


def figures(monitor: Monitor, record: StepRecord) -> dict[str, float]:
    """The step's figures that are known (an unknown peak leaves out mfu and hfu rather than logging None)."""
    stats = monitor.stats(record)
    return {key: stats[key] for key in ("flops", "tflops_per_s", "mfu", "hfu") if stats[key] is not None}
