"""Gradient accumulation under a pipeline: what each micro-batch after the first adds to a stage's count.

A plan counts one micro-batch's program and multiplies it by the micro-batches (planner.py), each counted as the
first: its backward finds no gradient yet and autograd hands it the one it computed. A real pipeline's later
micro-batches find the earlier ones' gradients there, and autograd adds into them (`AccumulateGrad`: `grad +=
new_grad`, one `aten.add_` per gradient tensor, in place, grad mode off). The tensors it adds into are the leaves
the backward reaches: the stage's parameters (DTensors under tp: the add runs on their local shards), or, under
FSDP2, the unsharded parameters it gathered (a pipeline keeps them gathered and syncs gradients once a step, after
the last micro-batch: torch.distributed.pipelining's `PipelineStage`).

`leaves()` finds those tensors in the autograd graph before backward runs; `count()` counts one micro-batch's
adds, on tensors like the gradients backward left (the unsharded ones FSDP2 has moved away: like the leaf), which
the planner adds (microbatches − 1) times to the backward phase.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from ..counter import counting
from ..report.report import Report
from ..shapes_only.mode import CpuFakeTensorMode
from .local import LocalShards


def leaves(root: torch.Tensor, inputs: Iterable[Any]) -> list[torch.Tensor]:
    """The tensors autograd accumulates gradients into when backward runs from `root`, in graph order, each once;
    the program's inputs (a stage's received hidden states: a fresh tensor each micro-batch) left out."""
    skip = {id(t) for t in inputs if isinstance(t, torch.Tensor)}
    found: dict[int, torch.Tensor] = {}
    seen: set[int] = set()
    todo = [root.grad_fn]
    while todo:
        node = todo.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        variable = getattr(node, "variable", None)  # AccumulateGrad's leaf
        if isinstance(variable, torch.Tensor) and id(variable) not in skip:
            found.setdefault(id(variable), variable)
        todo.extend(next_node for next_node, _ in node.next_functions)
    return list(found.values())


def count(
    targets: list[torch.Tensor],
    fake: CpuFakeTensorMode,
    groups: dict[str, str],
    **options: Any,
) -> Report:
    """One micro-batch's accumulation: `grad += new_grad` for each leaf in `targets` (after backward), counted at
    the rank's local shapes; `options` are counting()'s."""
    with fake:
        grads = [_grad_of(t) for t in targets]
        pairs = [(grad, torch.empty_like(grad)) for grad in grads]
    with fake, torch.no_grad(), counting(**options) as session, LocalShards(groups):
        for grad, new in pairs:
            grad.add_(new)
    return session.report


def _grad_of(leaf: torch.Tensor) -> torch.Tensor:
    """The gradient backward left on `leaf`, or one like it where it was moved away (FSDP2 reduce-scatters the
    unsharded gradient and drops it)."""
    return leaf.grad if leaf.grad is not None else torch.empty_like(leaf)
