"""A Lightning `Callback`: each training batch under a `flopwise.Monitor`, its figures logged with `log()`.

```python
trainer = L.Trainer(callbacks=[FlopwiseCallback(peak_tflops=None)], log_every_n_steps=1)
```

`flops`, `tflops_per_s` and, where the peak is known, `mfu` and `hfu` are logged each step through the
LightningModule's own `log`, so they reach every logger the Trainer has. The step spans `on_train_batch_start`
to `on_train_batch_end` (training_step, backward and the optimizer step); steps are told apart by the shapes of
the batch, since a training_step need not call the module's forward.
"""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch.callbacks import Callback
from torch.utils._pytree import tree_leaves

from ..train.monitor import Monitor
from .hf import figures


class FlopwiseCallback(Callback):
    def __init__(self, peak_tflops: float | None = None) -> None:
        self.peak_tflops = peak_tflops
        self.monitor: Monitor | None = None
        self._step: Any = None

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if self.monitor is None:
            self.monitor = Monitor(pl_module, self.peak_tflops)
        key = tuple((tuple(t.shape), t.dtype) for t in tree_leaves(batch) if isinstance(t, torch.Tensor))
        self._step = self.monitor.step(key=key)
        self._record = self._step.__enter__()

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self._step is None or self.monitor is None:
            return
        step, self._step = self._step, None
        step.__exit__(None, None, None)
        for name, value in figures(self.monitor, self._record).items():
            pl_module.log(name, float(value), on_step=True, on_epoch=False)
