"""Which phase of a training step each op runs in: forward, backward, optimizer or recompute.

The phase is decided by where an op runs, never by its name:

- backward: inside the autograd engine (`torch._C._current_graph_task_id() != -1`), even when a closure runs it
  inside `Optimizer.step`;
- optimizer: between a global optimizer step pre-hook and its post-hook (inside any `Optimizer.step`), outside
  the engine and outside module forwards (a closure's forward is forward; its loss outside modules, optimizer);
- recompute: inside the engine, but running a forward again, as activation checkpointing does: a module's
  forward is in progress, or grad mode is on although the backward started with it off (checkpointing reruns
  the checkpointed function under `enable_grad`, while a backward without `create_graph` runs with it off);
- forward: everything else, the loss included.

`PhaseLabels` pushes a small TorchDispatchMode above the counting mode. It does not count: it labels the calls
that the counting mode records while it hands each op down, so the counting engine needs no change.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import torch
from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook
from torch.utils._python_dispatch import TorchDispatchMode

from ..core.cost import ZERO, Cost, OpCall
from ..engine.module_stack import ancestors
from ..report.report import Report

PHASES = ("forward", "backward", "optimizer", "recompute")


class _LabelMode(TorchDispatchMode):  # type: ignore[no-untyped-call]
    def __init__(self, labels: PhaseLabels) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.owner = labels

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        owner = self.owner
        phase = owner.phase()
        owner.label_up_to(phase)  # calls recorded without passing here (none expected) take the current phase
        out = func(*args, **(kwargs or {}))
        owner.label_up_to(phase)  # one op may be recorded as several calls (its decomposition)
        return out


class PhaseLabels:
    """Labels each call appended to `calls` (the counting mode's list) with its phase, while entered."""

    def __init__(self, calls: list[OpCall]) -> None:
        self.calls = calls
        self.labels: list[str] = []
        self.seeding = False  # set around `loss.backward()`: its seed gradient (ones_like) belongs to backward
        self._optimizer_steps = 0  # Optimizer.step calls in progress
        self._forwards = 0  # module forwards in progress
        self._grad_at_start: dict[int, bool] = {}  # graph task → grad mode of its first op
        self._handles: list[Any] = []
        self._mode = _LabelMode(self)

    def phase(self) -> str:
        task = torch._C._current_graph_task_id()
        if task == -1:
            if self.seeding:
                return "backward"
            # a module forward inside Optimizer.step is a closure's forward (LBFGS, Lightning's training_step);
            # the rest of a closure (the loss outside any module) is counted with the optimizer
            return "optimizer" if self._optimizer_steps and not self._forwards else "forward"
        grad = torch.is_grad_enabled()
        started_with_grad = self._grad_at_start.setdefault(task, grad)
        if self._forwards or (grad and not started_with_grad):
            return "recompute"
        return "backward"

    def label_up_to(self, phase: str) -> None:
        missing = len(self.calls) - len(self.labels)
        if missing > 0:
            self.labels.extend([phase] * missing)

    @contextlib.contextmanager
    def seed(self) -> Iterator[None]:
        """Around `loss.backward()`: the ops that build the seed gradient are backward's."""
        self.seeding = True
        try:
            yield
        finally:
            self.seeding = False

    def _count(self, counter: str, step: int) -> None:
        # never below 0: labelling may start inside a forward (Monitor starts it from a forward pre-hook), whose
        # end is then seen without its start
        setattr(self, counter, max(0, getattr(self, counter) + step))

    def __enter__(self) -> PhaseLabels:
        self._handles = [
            register_optimizer_step_pre_hook(lambda *_: self._count("_optimizer_steps", 1)),
            register_optimizer_step_post_hook(lambda *_: self._count("_optimizer_steps", -1)),
            register_module_forward_pre_hook(lambda *_: self._count("_forwards", 1)),
            register_module_forward_hook(lambda *_: self._count("_forwards", -1), always_call=True),
        ]
        self._mode.__enter__()  # type: ignore[no-untyped-call]
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._mode.__exit__(*exc)  # type: ignore[no-untyped-call]
        finally:
            for handle in self._handles:
                handle.remove()
            self._handles = []
            self.label_up_to("forward")

    def finish(self, report: Report) -> Report:
        """`report` with its phases: totals per phase and, per module, the same split of its inclusive cost."""
        self.label_up_to("forward")
        return with_phases(report, self.labels)


def with_phases(report: Report, labels: list[str]) -> Report:
    """The report with `phases` filled in, from one phase label per call (in call order)."""
    own: dict[tuple[str, str], Cost] = {}
    for call, phase in zip(report.calls, labels, strict=True):
        key = (call.module, phase)
        own[key] = own.get(key, ZERO) + call.cost
    inclusive: dict[str, dict[str, Cost]] = {}
    for (module, phase), cost in own.items():
        for ancestor in ancestors(module):
            split = inclusive.setdefault(ancestor, {})
            split[phase] = split.get(phase, ZERO) + cost
    modules = {
        name: replace(row, phases={phase: inclusive.get(name, {}).get(phase, ZERO) for phase in PHASES})
        for name, row in report.modules.items()
    }
    phases = {phase: inclusive.get("", {}).get(phase, ZERO) for phase in PHASES}
    return replace(report, modules=modules, phases=phases)
