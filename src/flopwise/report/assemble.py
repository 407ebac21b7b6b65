"""Assembling a Report from what a count recorded: op calls summed per module and up the tree, parameters
counted once per subtree, module descriptions and memory figures."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from ..core.conventions import Convention
from ..core.cost import ZERO, Cost, OpCall, totals_by, with_uses
from ..engine.dispatch import CountingMode
from ..engine.memory import packed_weights, param_memory
from ..engine.module_stack import ModuleStack, ancestors, describe_module
from .report import ModuleRow, Report


def module_costs(calls: Sequence[OpCall]) -> tuple[dict[str, Cost], dict[str, Cost]]:
    """({module: cost of the ops run directly in it}, {module: cost including its submodules})."""
    own = totals_by((call.module, call.cost, n) for call, n in with_uses(calls))
    inclusive: dict[str, Cost] = {}
    for name, cost in own.items():
        for ancestor in ancestors(name):
            inclusive[ancestor] = inclusive.get(ancestor, ZERO) + cost
    return own, inclusive


def build_report(
    stack: ModuleStack, mode: CountingMode, rules: Convention, model: torch.nn.Module | None, inputs: str
) -> Report:
    calls: tuple[OpCall, ...] = tuple(mode.calls)
    own, inclusive = module_costs(calls)
    modules_by_name = {name: module for module, name in stack.names.items()}
    names = [""] + [n for n in stack.types if n]
    names += sorted(n for n in inclusive if n not in stack.types and n)
    param_counts = _param_counts(stack)
    rows: dict[str, ModuleRow] = {}
    for name in names:
        params, trainable = param_counts.get(name, (0, 0))
        kind = stack.types.get(name, type(model).__name__ if model is not None and not name else "")
        rows[name] = ModuleRow(
            name,
            kind,
            inclusive.get(name, ZERO),
            own.get(name, ZERO),
            params,
            trainable,
            stack.calls[name],
            input_shapes=stack.input_shapes.get(name, ()),
            output_shapes=stack.output_shapes.get(name, ()),
        )
    root = rows[""]
    unsupported = {op: dict(where) for op, where in mode.unsupported.items()}
    return Report(
        model=type(model).__name__ if model is not None else "code",
        inputs=inputs,
        convention=rules,
        calls=calls,
        modules=rows,
        params=root.params,
        trainable_params=root.trainable_params,
        unsupported_where=unsupported,
        describe={name: describe_module(module) for name, module in modules_by_name.items()},
        param_bytes=param_memory([model] if model is not None else stack.roots),
        peak_activation_bytes=mode.memory.peak,
        warnings=list(mode.warnings),
    )


def _param_counts(stack: ModuleStack) -> dict[str, tuple[int, int]]:
    """{module name: (all, trainable) parameters in its subtree}; a shared parameter counts once per subtree."""
    owners: dict[int, tuple[torch.Tensor, set[str]]] = {}
    for module, name in stack.names.items():
        for p in module._parameters.values():  # direct parameters; .parameters(recurse=False) is far slower
            if p is not None:
                owners.setdefault(id(p), (p, set()))[1].add(name)
        for packed in packed_weights(module):  # a quantized layer's weight and bias are packed, not parameters
            owners.setdefault(id(packed), (packed, set()))[1].add(name)
    return subtree_params((tensor.numel(), tensor.requires_grad, names) for tensor, names in owners.values())


def subtree_params(owned: Iterable[tuple[int, bool, set[str]]]) -> dict[str, tuple[int, int]]:
    """{module name: (all, trainable) parameters in its subtree}, from (elements, trainable, the modules that own
    it) per parameter: one owned by several modules counts once in each subtree that holds any of them."""
    counts: dict[str, list[int]] = {}
    for numel, trainable, names in owned:
        reached = {ancestor for name in names for ancestor in ancestors(name)}
        for ancestor in reached:
            count = counts.setdefault(ancestor, [0, 0])
            count[0] += numel
            count[1] += numel if trainable else 0
    return {name: (total, trainable) for name, (total, trainable) in counts.items()}
