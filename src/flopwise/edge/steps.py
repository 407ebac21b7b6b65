"""What `.pte` and `.tflite` counts share: an operator of the file as the aten call that does its work (a `Step`),
costed by the registry's formula on meta tensors of the file's shapes, and the Report they add up to.

No formula is written here: a step names an aten overload, and `plan_of` / `cost_call` price it exactly as a
PyTorch count prices that op. A view costs nothing (as in a PyTorch count); an op the registry marks as zero cost
moves its bytes; a step with no aten op, or one whose op has no known cost, is unsupported.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from ..core.conventions import Convention
from ..core.cost import ZERO, OpCall
from ..engine.memory import bytes_by_dtype
from ..engine.module_stack import ancestors
from ..engine.prepare import describe_inputs
from ..formulas.pricing import UNKNOWN, VIEW, cost_call, plan_of
from ..report.assemble import module_costs, subtree_params
from ..report.report import ModuleRow, Report


@dataclass
class Step:
    """One operator of the file. `func` is the aten overload whose formula costs it (None: no mapping), called with
    `args` and `kwargs`, returning `out`; `reads` and `writes` are the tensors whose bytes it moves (a fused
    activation reads and writes nothing of its own)."""

    op: str  # as the report names it: "executorch.aten::convolution.out", "tflite.CONV_2D"
    where: str  # the node, for the unsupported list: "instruction 12", "operator 3 (conv2d_1)"
    module: str = ""
    func: Any = None
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    out: Any = None
    reads: list[torch.Tensor] = field(default_factory=list)
    writes: list[torch.Tensor] = field(default_factory=list)


FREE = "free"  # a Step's func for what costs nothing and moves nothing: arithmetic on sizes, a size read


def meta(shape: list[int] | tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    return torch.empty(tuple(shape), dtype=dtype, device="meta")


def price(step: Step, rules: Convention) -> OpCall | None:
    """The step's call, costed; None when it has no known cost."""
    if step.func is None:
        return None
    if step.func is FREE:
        return OpCall(step.op, step.module, ZERO)
    _, plan = plan_of(step.func, {})
    if plan is VIEW:
        return OpCall(step.op, step.module, ZERO)
    if plan is UNKNOWN:
        return None
    work, cost, shapes, dtype = cost_call(rules, plan, step.out, step.args, step.kwargs, step.reads, step.writes)
    return OpCall(step.op, step.module, cost, work, shapes, dtype)


class Tally:
    """The calls of one file, its weights and what could not be costed, made into a Report."""

    def __init__(self, rules: Convention) -> None:
        self.rules = rules
        self.calls: list[OpCall] = []
        self.unsupported: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.warnings: list[str] = []
        self.types: dict[str, str] = {}

    def add(self, step: Step) -> None:
        call = price(step, self.rules)
        if call is None:
            self.unsupported[step.op][f"{step.module} ({step.where})" if step.module else step.where] += 1
            call = OpCall(step.op, step.module, ZERO)
        self.calls.append(call)

    def report(
        self, model: str, inputs: Mapping[str, torch.Tensor], weights: list[tuple[torch.Tensor, set[str]]]
    ) -> Report:
        """`inputs` by name (positional `input 0`… when the file names none); `weights`: each constant some step
        reads as data, with the modules whose steps read it."""
        own, inclusive = module_costs(self.calls)
        order: dict[str, None] = {"": None}  # modules in the order the program first reaches them, parents first
        for call in self.calls:
            for name in reversed(ancestors(call.module)):
                order.setdefault(name)
        params = subtree_params((int(t.numel()), True, owners) for t, owners in weights)
        rows = {
            name: ModuleRow(
                name,
                self.types.get(name, ""),
                inclusive.get(name, ZERO),
                own.get(name, ZERO),
                *params.get(name, (0, 0)),
                calls=1,
            )
            for name in order
        }
        return Report(
            model=model,
            inputs=describe_inputs((), dict(inputs)),
            convention=self.rules,
            calls=tuple(self.calls),
            modules=rows,
            params=rows[""].params,
            trainable_params=rows[""].trainable_params,
            unsupported_where={op: dict(where) for op, where in self.unsupported.items()},
            param_bytes=bytes_by_dtype(t for t, _ in weights),
            warnings=self.warnings,
        )
