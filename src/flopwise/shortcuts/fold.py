"""Folded blocks: in the shape-only modes, a repeated module called exactly as one counted before is not run again.

replay.py replays a repeated block op by op, but still runs its Python forward and every module call in it. On
fake tensors a module's whole call is a pure function of what it is given, when that is all it reads: the module
(its structure, attributes and parameter shapes) and its arguments (shapes, strides, dtypes, plain values). So the
first call of a repeated module with a given key is counted normally and kept as a *fold*: the records of its ops
(module names relative to the module), the calls and first shapes of its submodules, the most bytes it had alive
above what was alive when it began, and the metadata of its outputs. A later call of a module of the same structure
with the same key is not run: the fold's records are added under the module's own names and its outputs are made
as fake tensors (ResNet-50's bottlenecks after the second of each stage, ViT's layers). The count is the same as
running it, record for record.

Any repeated module may fold, at any depth: inside a block that cannot (a Llama decoder layer is given its KV cache,
an object, and writes into it), its MLP, its norms and the projections of its attention still do, which also
spares a run with symbolic sizes (symbolic_trace.py) the size arithmetic torch does in Python there. A fold inside a
block being replayed ends that replay (replay.py). A module of no submodules whose first recorded call ran one or two
ops (a convolution, a batch norm) is left to the replays, which repeat them for less, and so are the others of its
class: their forward is no longer routed (route.py). Calls inside a call being recorded are recorded (or folded) too.

A call is folded only when all of this holds (else the block runs, replayed op by op where it can be):
- the block and every module in it: attributes equal (plain values by value, anything else the same
  object), no hooks of their own, every one named under the block, no MoE experts (routing is observed per call,
  moe.py); and no global module hooks but flopwise's own;
- the call: its arguments keyed as an op's (fakes.py), no tensor among them with a followed value (shadow.py);
- the call recorded: its submodules called there for the first time, no module called outside the block, no op
  unsupported and no warning, every record in the block's modules, no value followed past its end or answered
  from the data, no write into a tensor that existed before it, attributes and arguments as they were, nothing it
  made still alive but its outputs (a tensor kept in a cache would be), outputs fresh or views of the arguments,
  with no followed value.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.nn.modules import module as _module
from torch.utils._pytree import tree_flatten

from ..core.cost import OpCall
from ..engine.memory import ActivationMemory
from ..engine.module_stack import ModuleStack
from ..engine.restore import written_arguments, written_tensors
from ..formulas.registry import PLAIN_TYPES, Unkeyable, tensors_in
from ..shapes_only.tensors import Output, describe, rebuild, storage_of, tree_key
from ..shapes_only.values import Shadows
from .route import Routes, routed

KEYS_PER_STRUCTURE = 8  # folds kept for one structure (calls of other shapes): a bound on what a count holds
FEWEST_OPS = 2  # a module of no submodules that ran no more ops (a convolution; a batch norm's empty and its kernel)
# is not folded, nor any other of its class: keying a call (attributes, arguments) costs more than replaying them
_OWN = ("_parameters", "_buffers", "_modules")  # compared by structure (replay.structures), not by value
Shapes = tuple[tuple[int, ...], ...]


class Fold(NamedTuple):
    calls: tuple[OpCall, ...]  # module names relative to the block ("" is the block itself)
    modules: tuple[tuple[str, int, Shapes, Shapes | None], ...]  # submodule called: relative name, calls, shapes
    outputs: Any  # describe()'s (leaves, spec)
    peak: int  # the most bytes alive during the call above those alive when it began
    uses: Counter[Any]  # in a run with symbolic sizes: how often each recipe ran in the call (symbolic_trace.py)


class _Recording:
    def __init__(self, live: set[int]) -> None:
        self.live_before = live  # storages alive when the call began
        self.wrote_outside = False  # an in-place write into one of them (or into an input, a parameter)


def _value_key(value: Any, depth: int = 0) -> Any:
    """An attribute as part of a key: plain values and containers of them by value, anything else by identity."""
    kind = type(value)
    if kind in PLAIN_TYPES or kind is torch.Size:
        return kind, value
    if depth < 3 and kind in (tuple, list):
        return kind, tuple(_value_key(item, depth + 1) for item in value)
    if depth < 3 and kind in (set, frozenset) and all(type(item) in PLAIN_TYPES for item in value):
        return kind, frozenset(value)
    if depth < 3 and isinstance(value, dict):
        return kind, tuple((k, _value_key(v, depth + 1)) for k, v in value.items())
    return "object", id(value)  # the same object (a config shared by the layers), not an equal one


def _ours(hook: Any) -> bool:
    owner = getattr(hook, "__self__", hook)
    return type(owner).__module__.startswith("flopwise.")


class Folds:
    """The folds of one count, and the calls they stand for (see the module docstring)."""

    def __init__(self, stack: ModuleStack, mode: Any, memory: ActivationMemory, shadows: Shadows,
                 fake: FakeTensorMode, make: Callable[[Output, list[torch.Tensor]], torch.Tensor],
                 declared: dict[int | None, int]) -> None:
        """`make(leaf, inputs)`: an output as replay.py makes one; `declared`: the bytes of storages it made without
        them (with symbolic sizes), for activation memory."""
        self.stack, self.mode, self.memory, self.values, self.fake = stack, mode, memory, shadows, fake
        self.make, self.declared = make, declared
        self.trace = mode.trace  # a run with symbolic sizes: its recipes' uses, its guards
        self.table: dict[int, dict[Any, Fold]] = {}  # structure → call key → fold
        self.recordings: list[_Recording] = []  # the calls being recorded, innermost last
        self.folded: list[str] = []  # the calls of this count not run, made from a fold: their modules' names
        self._names: dict[torch.nn.Module, list[tuple[str, str]] | None] = {}
        self.routes: Routes | None = None  # the modules whose forward comes here (install())
        self._writes: dict[Any, tuple[tuple[int, str], ...]] = {}  # op → the arguments it writes

    @staticmethod
    def usable() -> bool:
        """No global module hooks but flopwise's own: a folded block's submodules would not call them."""
        hooks = [*_module._global_forward_pre_hooks.values(), *_module._global_forward_hooks.values()]
        return all(_ours(hook) for hook in hooks)

    def install(self, modules: list[torch.nn.Module], forward: Callable[..., Any]) -> None:
        """Route the forward of each repeated module through `forward(module, original, args, kwargs)` until
        `close()` (route.py)."""
        self.routes = Routes(forward)
        self.routes.add(modules)

    def close(self) -> None:
        if self.routes is not None:
            self.routes.drop()
        self.table, self._names = {}, {}

    def call(self, module: torch.nn.Module, number: int, original: Callable[..., Any], args: tuple[Any, ...],
             kwargs: dict[str, Any]) -> Any:
        """The outputs of a repeated module's call: from a fold, else run (and kept as a fold if it can)."""
        found: list[torch.Tensor] = []
        with self._bookkeeping():
            key = self._key(module, args, kwargs, found)
            names = self._names_of(module) if key is not None else None
        if key is None or names is None:
            return original(*args, **kwargs)
        known = self.table.setdefault(number, {})
        fold = known.get(key)
        if fold is not None:
            with self._bookkeeping():
                return self._unfold(fold, names[0][1], found)
        if len(known) >= KEYS_PER_STRUCTURE or any(self.stack.calls[name] for rel, name in names if rel):
            return original(*args, **kwargs)  # submodules called before: their counts and shapes are not this call's
        start = len(self.mode.calls)
        out = self._record(module, key, names, original, args, kwargs, found, known)
        if not module._modules and len(self.mode.calls) - start <= FEWEST_OPS and self.routes is not None:
            kind = type(module)  # a fold of so few ops costs more than their replays: so for its class's others
            self.routes.drop(lambda other: type(other) is kind)
        return out

    def _bookkeeping(self) -> contextlib.AbstractContextManager[None]:
        """With symbolic sizes, what folds read of sizes must not become guards of the trace."""
        return self.trace.bookkeeping() if self.trace is not None else contextlib.nullcontext()

    def note_write(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Before a top-level op of the call being recorded: whether it writes a tensor that existed before."""
        if not self.recordings:
            return
        where = self._writes.get(func)
        if where is None:
            where = self._writes[func] = written_arguments(func)
        for t in written_tensors(func, args, kwargs, where):
            key = storage_of(t)
            made_here = self.memory.size_of(key) is not None
            for recording in self.recordings:
                if key in recording.live_before or not made_here:
                    recording.wrote_outside = True

    def _key(self, module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any],
             found: list[torch.Tensor]) -> Any:
        try:
            call = tree_key((args, kwargs), {}, found)
        except Unkeyable:  # a real tensor, an object (a KV cache): the call may depend on more than shapes
            return None
        if any(t in self.values.values for t in found):
            return None
        attributes = self._attributes(module)
        return None if attributes is None else (call, attributes)

    @staticmethod
    def _attributes(module: torch.nn.Module) -> Any:
        """Every attribute of the block and its submodules, keyed; None when one has hooks or routes experts."""
        keyed: list[Any] = []
        for sub in module.modules():
            state = vars(sub)
            if isinstance(state.get("num_experts"), int):
                return None
            for name, value in state.items():
                kind = type(value)
                if kind in PLAIN_TYPES:  # most attributes: sizes, flags (by type too: 1 is not True)
                    keyed.append((name, kind, value))
                elif "hooks" in name:  # dicts of hooks: forward and backward ones must be empty, others never run
                    if value and name.startswith(("_forward", "_backward")):
                        return None
                elif name not in _OWN and not (name == "forward" and routed(value)):
                    keyed.append((name, _value_key(value)))
        return tuple(keyed)

    def _names_of(self, module: torch.nn.Module) -> list[tuple[str, str]] | None:
        """(relative, full) name of the block and of each module in it; None when one is named elsewhere (shared)."""
        if module not in self._names:
            prefix = self.stack.names.get(module)
            pairs: list[tuple[str, str]] = []
            named = bool(prefix)  # the root ("") is never a repeated block
            for rel, sub in module.named_modules(remove_duplicate=False) if named else ():
                full = f"{prefix}.{rel}" if rel else str(prefix)
                named = named and self.stack.names.get(sub) == full
                pairs.append((rel, full))
            self._names[module] = pairs if named else None
        return self._names[module]

    def _record(self, module: torch.nn.Module, key: Any, names: list[tuple[str, str]], original: Callable[..., Any],
                args: tuple[Any, ...], kwargs: dict[str, Any], found: list[torch.Tensor],
                known: dict[Any, Fold]) -> Any:
        mode, memory, stack = self.mode, self.memory, self.stack
        start, warned, entered = len(mode.calls), len(mode.warnings), sum(stack.calls.values())
        followed = len(self.values.values), sum(self.values.answered.values())
        leaves, spec = tree_flatten((args, kwargs))
        live, peak = memory.live, memory.peak
        memory.peak = live
        uses = Counter(self.trace.uses) if self.trace is not None else Counter()
        recording = _Recording(memory.storages())
        self.recordings.append(recording)
        try:
            out = original(*args, **kwargs)
        finally:
            self.recordings.pop()
            block_peak = memory.peak - live
            memory.peak = max(peak, memory.peak)
        prefix = names[0][1]
        calls = mode.calls[start:]
        inside = sum(stack.calls[full] for _, full in names[1:])  # none was called before (call() checks)
        refused = recording.wrote_outside or len(mode.warnings) != warned or \
            sum(stack.calls.values()) - entered != inside or \
            (len(self.values.values), sum(self.values.answered.values())) != followed or \
            any(c.op in mode.unsupported or (c.module != prefix and not c.module.startswith(prefix + "."))
                for c in calls)
        after, after_spec = tree_flatten((args, kwargs))
        refused = refused or after_spec != spec or any(a is not b for a, b in zip(after, leaves, strict=True))
        with self._bookkeeping():
            sizes = memory.size_of if self.trace is not None else None  # symbolic: replays made empty storages
            outputs = None if refused else describe(out, found, self.fake, sizes)
            if outputs is None or self._attributes(module) != key[1]:
                return out
            if any(t in self.values.values for t in tensors_in(out)) or self._left_behind(out, found, live):
                return out
        skip = len(prefix) + 1
        relative = tuple(c._replace(module=c.module[skip:]) for c in calls)
        called = tuple((rel, stack.calls[full], stack.input_shapes.get(full, ()), stack.output_shapes.get(full))
                       for rel, full in names[1:] if stack.calls[full])
        used = self.trace.uses - uses if self.trace is not None else Counter()
        known[key] = Fold(relative, called, outputs, block_peak, used)
        return out

    def _left_behind(self, out: Any, found: list[torch.Tensor], live: int) -> bool:
        """Whether the call left alive more than the outputs it made (`live`: bytes alive when it began)."""
        made = {storage_of(t) for t in tensors_in(out)} - {storage_of(t) for t in found}
        sizes = [self.memory.size_of(k) for k in made]
        return None in sizes or self.memory.live - live != sum(size or 0 for size in sizes)

    def _unfold(self, fold: Fold, prefix: str, found: list[torch.Tensor]) -> Any:
        stack, calls = self.stack, self.mode.calls
        calls.extend(c._replace(module=f"{prefix}.{c.module}" if c.module else prefix) for c in fold.calls)
        for rel, n, inputs, outputs in fold.modules:
            full = f"{prefix}.{rel}"
            stack.calls[full] += n
            stack.input_shapes.setdefault(full, inputs)
            if outputs is not None:
                stack.output_shapes.setdefault(full, outputs)
        self.memory.peak = max(self.memory.peak, self.memory.live + fold.peak)
        out = rebuild(fold.outputs, lambda leaf: self.make(leaf, found))
        self.memory.record(found, tensors_in(out), self.declared)
        if self.trace is not None:
            self.trace.uses.update(fold.uses)
        self.folded.append(prefix)
        return out
