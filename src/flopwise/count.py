"""The public entry points: `count(model, inputs)` and `counting()` for arbitrary code."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
from collections.abc import Iterator
from typing import Any

import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.func import functional_call
from torch.utils._pytree import tree_map

from .capture import CountingMode
from .conventions import Convention, resolve
from .cost import ZERO, Cost, OpCall
from .derivation import describe_module
from .memory import param_memory
from .modules import ModuleStack
from .registry import Formula
from .report import ModuleRow, Report
from .shadow import NeedsData, Shadows

MODES = ("real", "fake", "meta")
TARGET_DEVICE = "cpu"  # the device whose kernels meta mode counts (the one this library runs on)


class Counting:
    """What `counting()` yields; `report` is filled in when the block ends (also when it raises)."""

    report: Report

    def __init__(self) -> None:
        self._stack: ModuleStack | None = None
        self._mode: CountingMode | None = None

    @property
    def raised_in(self) -> str | None:
        """The innermost module whose forward raised, if one did."""
        return self._stack.raised_in if self._stack else None


@contextlib.contextmanager
def counting(
    convention: str | Convention = "default",
    overrides: dict[Any, Formula | None] | None = None,
    *,
    model: torch.nn.Module | None = None,
    inputs: str = "",
) -> Iterator[Counting]:
    """Count every aten op run inside the block: training steps, generate(), several models.

    Modules of `model` are named as in `model.named_modules()`; other modules met in the block are named by
    their class (`GPT2Model.h.0.attn`). `overrides` maps ops to a formula, or to None to ignore them.
    """
    rules = resolve(convention)
    session = Counting()
    stack = ModuleStack({model: ""} if model is not None else None)
    mode = CountingMode(stack, rules, overrides)
    session._stack, session._mode = stack, mode
    try:
        with mode:
            yield session
    finally:
        stack.close()
        mode.memory.close()
        session.report = _build_report(stack, mode, rules, model, inputs)


def count(
    model: torch.nn.Module,
    inputs: Any = (),
    *,
    mode: str = "real",
    convention: str | Convention = "default",
    overrides: dict[Any, Formula | None] | None = None,
) -> Report:
    """Count the MACs, FLOPs, parameters and bytes of one forward of `model` on `inputs`.

    `inputs` is a tensor, a tuple of positional arguments, or a dict of keyword arguments. `mode="real"`
    runs the model as given; `"fake"` runs on fake tensors (shapes only, no arithmetic, weights untouched);
    `"meta"` moves everything to the meta device. A model built on the meta device is always counted on it.
    The model, its state and torch's RNG are left exactly as found.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"count() expects an nn.Module as its first argument, got {type(model).__name__}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    args, kwargs = _split_inputs(inputs)
    if _on_meta(model):
        mode = "meta"
    try:
        return _count(model, args, kwargs, mode, convention, overrides)
    except NeedsData as error:  # a value that depends on the weights, in a shape-only mode
        if any(t.is_meta for t in itertools.chain(model.parameters(), model.buffers())):
            raise NeedsData(error.op, error.module, _NO_WEIGHTS) from None
        needed = f"{error.op} in module {error.module or '(root)'!r}"
    report = _count(model, args, kwargs, "real", convention, overrides)
    said = f"mode={mode!r} met {needed}, a value that depends on the weights: counting again in real mode " \
        "with the model's weights, so data-dependent paths follow them"
    return dataclasses.replace(report, warnings=(said, *report.warnings))


_NO_WEIGHTS = (
    "; a model on the meta device has none: count a model with weights (mode='real'), or, from the command "
    "line, `flopwise hf:config.json` rebuilds small models with random weights and counts them for real"
)


def _count(
    model: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], mode: str,
    convention: str | Convention, overrides: dict[Any, Formula | None] | None,
) -> Report:
    # meta mode runs on fake tensors placed on the CPU, not on the meta device: aten picks kernels by device
    # (on meta, SDPA takes its math path and fast paths such as nn.MultiheadAttention's are skipped), and the
    # count must be the one a real CPU run gives. No data is allocated either way.
    fake = FakeTensorMode(allow_non_fake_inputs=True) if mode in ("fake", "meta") else None
    shadows = Shadows() if fake is not None else None
    state, args, kwargs = _prepare(model, args, kwargs, mode, fake, shadows)
    with _rng_preserved(), torch.no_grad(), fake or contextlib.nullcontext():
        with counting(convention, overrides, model=model, inputs=describe_inputs(args, kwargs)) as session:
            assert session._mode is not None
            session._mode.shadows = shadows
            try:
                functional_call(model, state, args, kwargs, strict=False)
            except NeedsData:
                raise
            except Exception as error:
                where = session.raised_in or ""
                kind = session._stack.types.get(where, "") if session._stack else ""
                error.add_note(
                    f"flopwise: raised in module {where or '(root)'!r} ({kind}) "
                    f"with inputs {describe_inputs(args, kwargs)}"
                )
                if mode == "fake":
                    error.add_note("flopwise: the model may need real data; try mode='real'")
                raise
    if shadows is None or not shadows.answered:
        return session.report
    answered = ", ".join(f"{op} ×{n}" for op, n in shadows.answered.items())
    said = f"{mode} mode: data-dependent values ({answered}) were computed from the real inputs, as a real run gives"
    return dataclasses.replace(session.report, warnings=(*session.report.warnings, said))


def _split_inputs(inputs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if isinstance(inputs, dict):
        return (), dict(inputs)
    if type(inputs) in (tuple, list):  # a namedtuple such as PackedSequence is one argument, not several
        return tuple(inputs), {}
    return (inputs,), {}


def _on_meta(model: torch.nn.Module) -> bool:
    tensors = list(model.parameters()) + list(model.buffers())
    return any(t.is_meta for t in tensors)  # one meta tensor and the model cannot run for real


def _prepare(
    model: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], mode: str, fake: FakeTensorMode | None,
    shadows: Shadows | None,
) -> tuple[dict[str, torch.Tensor], tuple[Any, ...], dict[str, Any]]:
    """Tensors the model runs with, so that its own parameters and buffers are never written."""
    params = dict(model.named_parameters(remove_duplicate=False))
    buffers = dict(model.named_buffers(remove_duplicate=False))
    if mode == "real":  # running statistics update copies, not the model's buffers
        state = {name: b.clone() for name, b in buffers.items()}
        return state, args, kwargs
    assert fake is not None and shadows is not None  # fake and meta modes both run under a FakeTensorMode
    converted: dict[int, torch.Tensor] = {}  # tied parameters stay tied

    def convert(t: torch.Tensor) -> torch.Tensor:
        if id(t) not in converted:
            device = TARGET_DEVICE if mode == "meta" or t.is_meta else t.device
            with fake:  # allocating under the fake mode is far cheaper than fake.from_tensor
                new = torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device=device)
            converted[id(t)] = new.requires_grad_(t.requires_grad) if new.is_leaf else new
            if not isinstance(t, torch.nn.Parameter):  # inputs and buffers keep their values; weights never
                shadows.seed(new, t)
        return converted[id(t)]

    state = {name: convert(t) for name, t in {**params, **buffers}.items()}
    args, kwargs = tree_map(lambda x: convert(x) if isinstance(x, torch.Tensor) else x, (args, kwargs))
    return state, args, kwargs


@contextlib.contextmanager
def _rng_preserved() -> Iterator[None]:
    cpu = torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


def describe_inputs(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    def one(x: Any) -> str:
        if isinstance(x, torch.Tensor):
            return "×".join(str(d) for d in x.shape) + f" {str(x.dtype).removeprefix('torch.')}"
        if type(x) in (list, tuple) and x:  # e.g. a detection model's list of images
            inner = ", ".join(one(item) for item in x[:3]) + (f", … {len(x)} in all" if len(x) > 3 else "")
            return f"[{inner}]"
        return type(x).__name__ if x is not None else "None"

    parts = [one(a) for a in args] + [f"{k}={one(v)}" for k, v in kwargs.items()]
    return ", ".join(parts)


def _ancestors(name: str) -> list[str]:
    """'a.b.c' → ['a.b.c', 'a.b', 'a', '']."""
    chain = [name]
    while name:
        name = name.rpartition(".")[0]
        chain.append(name)
    return chain


def _build_report(
    stack: ModuleStack, mode: CountingMode, rules: Convention, model: torch.nn.Module | None, inputs: str
) -> Report:
    calls: tuple[OpCall, ...] = tuple(mode.calls)
    sums: dict[str, list[int]] = {}  # plain integers: a large model makes tens of thousands of calls
    for call in calls:
        total = sums.setdefault(call.module, [0, 0, 0, 0])
        cost = call.cost
        total[0] += cost.macs
        total[1] += cost.flops
        total[2] += cost.bytes_read
        total[3] += cost.bytes_written
    own = {name: Cost(*total) for name, total in sums.items()}
    inclusive: dict[str, Cost] = {}
    for name, cost in own.items():
        for ancestor in _ancestors(name):
            inclusive[ancestor] = inclusive.get(ancestor, ZERO) + cost

    modules_by_name = {name: module for module, name in stack.names.items()}
    names = [""] + [n for n in stack.types if n]
    names += sorted(n for n in inclusive if n not in stack.types and n)
    param_counts = _param_counts(stack)
    rows: dict[str, ModuleRow] = {}
    for name in names:
        params, trainable = param_counts.get(name, (0, 0))
        kind = stack.types.get(name, type(model).__name__ if model is not None and not name else "")
        rows[name] = ModuleRow(
            name, kind, inclusive.get(name, ZERO), own.get(name, ZERO), params, trainable, stack.calls[name]
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
    )


def _param_counts(stack: ModuleStack) -> dict[str, tuple[int, int]]:
    """{module name: (all, trainable) parameters in its subtree}; a shared parameter counts once per subtree."""
    owners: dict[int, tuple[torch.nn.Parameter, set[str]]] = {}
    for module, name in stack.names.items():
        for p in module._parameters.values():  # direct parameters; .parameters(recurse=False) is far slower
            if p is not None:
                owners.setdefault(id(p), (p, set()))[1].add(name)
    counts: dict[str, list[int]] = {}
    for p, names in owners.values():
        reached = {ancestor for name in names for ancestor in _ancestors(name)}
        for ancestor in reached:
            count = counts.setdefault(ancestor, [0, 0])
            count[0] += p.numel()
            count[1] += p.numel() if p.requires_grad else 0
    return {name: (total, trainable) for name, (total, trainable) in counts.items()}
