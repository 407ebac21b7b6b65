"""The public entry points: `count(model, inputs)` and `counting()` for arbitrary code."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.func import functional_call
from torch.utils._python_dispatch import _disable_current_modes
from torch.utils._pytree import tree_map

from .capture import CountingMode
from .conventions import Convention, resolve, with_attention
from .cost import ZERO, Cost, OpCall
from .guard import StateGuard
from .hops import fullgraph_tolerated
from .memory import param_memory
from .modules import ModuleStack, describe_module
from .moe import MoEObserver
from .registry import Formula, nested_sizes
from .report import ModuleRow, Report
from .shadow import remember

MODES = ("real", "fake", "meta")


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
    attention: str | None = None,
) -> Iterator[Counting]:
    """Count every aten op run inside the block: training steps, generate(), several models.

    Modules of `model` are named as in `model.named_modules()`; other modules met in the block are named by
    their class (`GPT2Model.h.0.attn`). `overrides` maps ops to a formula, or to None to ignore them.
    `attention="masked"` counts only the query–key pairs attention masks keep; "dense" (the default) all of them.
    """
    rules = resolve(convention)
    if attention is not None:
        rules = with_attention(rules, attention)
    session = Counting()
    stack = ModuleStack({model: ""} if model is not None else None)
    mode = CountingMode(stack, rules, overrides)
    session._stack, session._mode = stack, mode
    experts = MoEObserver()
    hook = torch.nn.modules.module.register_module_forward_pre_hook(experts)
    try:
        with mode, fullgraph_tolerated():
            yield session
    finally:
        hook.remove()
        stack.close()
        mode.memory.close()
        session.report = _build_report(stack, mode, rules, model, inputs)
        session.report.moe.extend(experts.layers(stack.names, {n: m for m, n in stack.names.items()}))


def count(
    model: torch.nn.Module,
    inputs: Any = (),
    *,
    mode: str = "real",
    convention: str | Convention = "default",
    overrides: dict[Any, Formula | None] | None = None,
    attention: str | None = None,
) -> Report:
    """Count the MACs, FLOPs, parameters and bytes of one forward of `model` on `inputs`.

    `inputs` is a tensor, a tuple of positional arguments, or a dict of keyword arguments. `mode="real"`
    runs the model as given; `"fake"` runs on fake tensors (shapes only, no arithmetic, weights untouched);
    `"meta"` moves everything to the meta device. A model built on the meta device is always counted on it.
    A TorchScript module (traced or scripted) runs as it is; asked for "meta", it is counted on fake tensors.
    `attention`: "dense" (the guides: every query–key pair; the default) or "masked" (the pairs the masks keep:
    causal, sliding window, padding, a FlexAttention BlockMask at its block granularity).
    The model, its state and torch's RNG are left exactly as found: parameters and buffers written in place are
    restored, attributes that forward set are put back, and `report.warnings` says what could not be.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"count() expects an nn.Module as its first argument, got {type(model).__name__}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    args, kwargs = split_inputs(inputs)
    notes: list[str] = []
    on_meta = _on_meta(model)
    if on_meta:
        mode = "meta"
    script = isinstance(model, torch.jit.ScriptModule)  # its parameters cannot be swapped: it runs as found
    if script and mode == "meta" and not on_meta:
        mode = "fake"
        notes.append("a TorchScript module cannot move to the meta device: counted on fake tensors instead")
    if mode == "meta" and (attention == "masked" or (attention is None and resolve(convention).masked)):
        notes.append("attention='masked' on the meta device: PyTorch runs attention there as plain matmuls, where "
                     "masks cannot be seen, so it is counted dense; mode='fake' counts the pairs masks keep")
    fake = FakeTensorMode(allow_non_fake_inputs=True) if mode == "fake" else None
    state, args, kwargs = _prepare(model, args, kwargs, mode, fake, script)
    guard = StateGuard(model, tensors=state is None)  # the model runs on its own tensors
    with _rng_preserved(), torch.no_grad(), fake or contextlib.nullcontext():
        with counting(convention, overrides, model=model, inputs=describe_inputs(args, kwargs),
                      attention=attention) as session:
            assert session._mode is not None
            session._mode.warnings += notes
            session._mode.guard = guard if guard.watching else None
            try:
                if state is None:
                    model(*args, **kwargs)
                else:
                    functional_call(model, state, args, kwargs, strict=False)
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
            finally:
                with _disable_current_modes():  # restoring is not part of the count
                    session._mode.warnings += guard.restore()
    return session.report


def split_inputs(inputs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """What `inputs` means as a call, everywhere in flopwise: a dict is keyword arguments, a plain tuple or list
    is positional arguments, anything else (a tensor, a PackedSequence or other namedtuple) is one argument."""
    if isinstance(inputs, dict):
        return (), dict(inputs)
    if type(inputs) in (tuple, list):  # a namedtuple such as PackedSequence is one argument, not several
        return tuple(inputs), {}
    return (inputs,), {}


def _on_meta(model: torch.nn.Module) -> bool:
    tensors = list(model.parameters()) + list(model.buffers())
    return bool(tensors) and all(t.is_meta for t in tensors)


def _prepare(
    model: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], mode: str, fake: FakeTensorMode | None,
    script: bool,
) -> tuple[dict[str, torch.Tensor] | None, tuple[Any, ...], dict[str, Any]]:
    """The parameters and buffers the model runs with (None: its own, watched by a `StateGuard`), and inputs
    on the device or fake mode of the count."""
    if mode == "real":
        return None, args, kwargs
    params = dict(model.named_parameters(remove_duplicate=False))
    buffers = dict(model.named_buffers(remove_duplicate=False))
    converted: dict[int, torch.Tensor] = {}  # tied parameters stay tied

    def convert(t: torch.Tensor) -> torch.Tensor:
        if id(t) not in converted:
            if fake is not None:  # allocating under the fake mode is far cheaper than fake.from_tensor
                with fake:
                    new = torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device=t.device)
            else:
                new = t if t.is_meta else torch.empty_like(t, device="meta")
            converted[id(t)] = new.requires_grad_(t.requires_grad) if new.is_leaf else new
            remember(converted[id(t)], t)  # integer inputs (an attention_mask) keep their values for masks
        return converted[id(t)]

    args, kwargs = tree_map(lambda x: convert(x) if isinstance(x, torch.Tensor) else x, (args, kwargs))
    if script:  # a fake mode converts its real parameters as they are used; writes land on those copies
        return None, args, kwargs
    return {name: convert(t) for name, t in {**params, **buffers}.items()}, args, kwargs


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
            dtype = str(x.dtype).removeprefix("torch.")
            components = nested_sizes(x)
            if components is not None:  # a nested tensor has no shape; its components do
                return f"nested({', '.join('×'.join(map(str, c)) for c in components)}) {dtype}"
            return "×".join(str(d) for d in x.shape) + f" {dtype}"
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
        warnings=list(mode.warnings),
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
