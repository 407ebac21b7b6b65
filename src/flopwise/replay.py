"""Repeated blocks in the shape-only modes: counted op by op once, then replayed op by op, verified.

In fake and meta mode an op's cost and its outputs' metadata are a pure function of the op, its non-tensor
arguments and its tensor arguments' shapes, strides, offsets, dtypes and devices: formulas see shapes only, and
fake kernels compute metadata only. The first call of a module whose structure repeats elsewhere in the model
(same class, training flag, parameter and buffer shapes and dtypes, submodules alike: the 80 decoder layers of a
Llama) records a *tape*: for each op it runs, that key, the op's cost record and its outputs' metadata. A later call
of a module of the same structure still runs its Python forward and every hook, but each op that matches the tape
at the same position and key gets the taped cost record, attributed to the module it runs in now, and outputs made
directly as fake tensors of the taped metadata (what FakeTensorMode's own cache does, without its slower per-op
key). Counts are therefore identical by construction; the first op that differs ends the replay of that call, and
the rest is counted normally.

Never replayed (counted normally, the replay goes on after them): out= ops and in-place ops other than those that
write their first argument and return it (relu_, add_) without changing its sizes, in-place writes to a tensor whose
value is followed, ops with no formula (decomposed or unsupported), higher-order ops, random ops, ops on constants
or real tensors. A tape is dropped when its block met a data-dependent value or left shadow values alive
(shadow.py), since replays do not follow values; nor are tapes kept under attention="masked", whose counts depend
on mask values.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode
from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook
from torch.utils._pytree import tree_flatten, tree_unflatten

from .cost import OpCall
from .memory import _storage_key
from .registry import PLAIN_TYPES
from .replay_keys import replay_key
from .shadow import Shadows

ENABLED = True  # the switch tests turn off to compare counts with and without replays
MISS = object()  # replay() found no match: count the op normally

class Output(NamedTuple):
    """What a replay makes for one output tensor: a new storage, or a view of input `alias`'s storage."""

    shape: tuple[int | torch.SymInt, ...]
    stride: tuple[int | torch.SymInt, ...]
    offset: int | torch.SymInt  # a SymInt in a run with symbolic sizes
    dtype: torch.dtype
    device: torch.device
    alias: int | None
    nbytes: int  # of a new storage (a run with symbolic sizes: at the sizes' hints; see Replicas._make_symbolic)


class Entry(NamedTuple):
    func: Any
    in_place: bool  # returns its first argument, written in place (relu_, add_)
    key: Any  # None: not replayable, counted normally when met again
    call: OpCall | None
    outputs: Any  # (leaves, spec): Output for each tensor, the value itself otherwise
    allocates: bool  # recorded in activation memory (not a view)


def _natural_bytes(t: torch.Tensor) -> int:
    """Bytes of a fresh storage for `t`'s sizes and strides (what empty_strided allocates)."""
    if t.numel() == 0:
        return 0
    return (1 + sum((n - 1) * s for n, s in zip(t.shape, t.stride(), strict=True))) * t.element_size()


def _describe(out: Any, inputs: list[torch.Tensor], fake: FakeTensorMode) -> Any:
    """The outputs' metadata as a replay rebuilds it; None when an output is not a plain fresh or view tensor."""
    leaves, spec = tree_flatten(out)
    storages = [_storage_key(t) for t in inputs]
    described: list[Any] = []
    fresh: set[int | None] = set()
    for leaf in leaves:
        if not isinstance(leaf, torch.Tensor):
            if type(leaf) not in PLAIN_TYPES:
                return None
            described.append(leaf)
            continue
        if (type(leaf) is not FakeTensor or leaf.fake_mode is not fake or leaf.constant is not None
                or leaf.layout != torch.strided or leaf.requires_grad or leaf.is_conj() or leaf.is_neg()):
            return None
        storage = _storage_key(leaf)
        alias = storages.index(storage) if storage in storages else None
        if alias is None and (storage in fresh or leaf.storage_offset() != 0
                              or leaf.untyped_storage().nbytes() != _natural_bytes(leaf)):
            return None
        fresh.add(storage)
        offset = leaf.storage_offset()  # a SymInt in a run with symbolic sizes
        described.append(Output(tuple(leaf.shape), leaf.stride(), offset, leaf.dtype,
                                leaf.device, alias, int(leaf.untyped_storage().nbytes())))
    if isinstance(out, torch.Tensor):
        return described[0], None  # one tensor, the common case: no tree to rebuild
    return described, spec


class _Tape:
    def __init__(self, shadows_alive: int, answered: int) -> None:
        self.entries: list[Entry] = []
        self.valid = True
        self.shadows_alive, self.answered = shadows_alive, answered


def structures(model: torch.nn.Module) -> dict[torch.nn.Module, int]:
    """The modules whose structure repeats in the model, outermost ones only, each with its structure's number."""
    table: dict[Any, int] = {}
    kind: dict[torch.nn.Module, int] = {}

    def walk(module: torch.nn.Module) -> int:
        if module not in kind:
            tensors = [*module._parameters.items(), *module._buffers.items()]
            own = tuple((n, None if t is None else (tuple(t.shape), t.dtype)) for n, t in tensors)
            children = tuple((n, walk(c)) for n, c in module._modules.items() if c is not None)
            kind[module] = table.setdefault((type(module), module.training, own, children), len(table))
        return kind[module]

    walk(model)
    counts: dict[int, int] = {}
    for number in kind.values():
        counts[number] = counts.get(number, 0) + 1
    chosen: dict[torch.nn.Module, int] = {}

    def choose(module: torch.nn.Module) -> None:
        if counts[kind[module]] > 1:
            chosen.setdefault(module, kind[module])
            return
        for child in module._modules.values():
            if child is not None:
                choose(child)

    choose(model)
    return chosen


class Replicas:
    """Tapes of repeated blocks and their replays for one count (see the module docstring); hooks removed in close()."""

    def __init__(
        self, model: torch.nn.Module, fake: FakeTensorMode, current: Callable[[], str], shadows: Shadows
    ) -> None:
        self.kinds = structures(model)
        self.symbolic = fake.shape_env is not None  # a run with symbolic sizes (symbolic_trace.py)
        self.declared: dict[int | None, int] = {}  # storage → its bytes, for storages made without them
        self.fake = fake
        self.current = current  # the name of the module running now (ModuleStack.current)
        self.values = shadows  # real values of input-only tensors (shadow.py)
        self.tapes: dict[int, _Tape] = {}
        self.recording: _Tape | None = None
        self.playing: _Tape | None = None
        self.root: torch.nn.Module | None = None  # the module whose call is being taped or replayed
        self.depth = 0  # calls of `root` inside its own call
        self.position = 0
        self.replayed = 0  # ops replayed in this count
        self.last: OpCall | None = None  # the taped cost record the last replay repeated
        self._thread = threading.get_ident()
        self._handles = [register_module_forward_pre_hook(self._enter),
                         register_module_forward_hook(self._exit, always_call=True)]

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _enter(self, module: torch.nn.Module, args: Any) -> None:
        if threading.get_ident() != self._thread:  # module hooks are global: another thread's modules are not ours
            return
        if self.root is not None:
            self.depth += module is self.root
            return
        number = self.kinds.get(module)
        if number is None:
            return
        self.root, self.depth = module, 1
        tape = self.tapes.get(number)
        if tape is None:
            self.recording = self.tapes[number] = _Tape(*self._shadows())
        elif tape.valid:
            self.playing, self.position = tape, 0

    def _exit(self, module: torch.nn.Module, args: Any, output: Any) -> None:
        if module is not self.root or threading.get_ident() != self._thread:
            return
        self.depth -= 1
        if self.depth:
            return
        tape = self.recording
        if tape is not None:
            alive, answered = self._shadows()
            # values followed inside the block that outlive it, or a value the data decided: replays would lose them
            tape.valid = output is not None and alive <= tape.shadows_alive and answered == tape.answered
        self.root = self.recording = self.playing = None

    def _shadows(self) -> tuple[int, int]:
        """(shadow values alive, data-dependent values answered) now."""
        return len(self.values.values), sum(self.values.answered.values())

    def record(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any, calls: list[OpCall],
               replayable: bool, allocates: bool, in_place: bool) -> None:
        """After a top-level op of a call being taped: its entry (`calls`: the records the op added)."""
        tape = self.recording
        assert tape is not None
        found = replay_key(func, args, kwargs) if replayable and len(calls) == 1 else None
        outputs = None if found is None else in_place or _describe(out, found[1], self.fake)
        if found is None or outputs is None:
            tape.entries.append(Entry(func, in_place, None, None, None, allocates))
            return
        tape.entries.append(Entry(func, in_place, found[0], calls[0], outputs, allocates))

    def replay(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any, Any]:
        """(outputs, cost record with the current module, tensors read) for a top-level op of a replica, or
        (MISS, None, None) to count it normally; a mismatch ends this call's replay."""
        tape = self.playing
        assert tape is not None
        entry = tape.entries[self.position] if self.position < len(tape.entries) else None
        self.position += 1
        if entry is None or entry.func is not func:
            self.playing = None
            return MISS, None, None
        if entry.key is None:
            return MISS, None, None
        found = replay_key(func, args, kwargs)
        if found is None or found[0] != entry.key:
            self.playing = None
            return MISS, None, None
        inputs = found[1]
        if entry.in_place:
            if args[0] in self.values.values:  # its value is followed: a replay would leave it stale
                self.playing = None
                return MISS, None, None
            out = args[0]
        else:
            leaves, spec = entry.outputs
            out = self._make(leaves, inputs) if spec is None else tree_unflatten([self._make(leaf, inputs)
                                                                                  for leaf in leaves], spec)
        assert entry.call is not None
        self.replayed += 1
        self.last = entry.call
        return out, entry.call._replace(module=self.current()), inputs if entry.allocates else None

    def _make(self, leaf: Any, inputs: list[torch.Tensor]) -> Any:
        if not isinstance(leaf, Output):
            return leaf
        if self.symbolic:
            return self._make_symbolic(leaf, inputs)
        if leaf.alias is None:
            return fake_empty(self.fake, leaf.shape, leaf.stride, leaf.dtype, leaf.device)
        with torch._C._DisableTorchDispatch():  # a plain meta tensor on the input's storage, as FakeTensorMode does
            meta = torch.empty_strided(leaf.shape, leaf.stride, dtype=leaf.dtype, device="meta")
            meta.set_(inputs[leaf.alias].untyped_storage(), leaf.offset, leaf.shape, leaf.stride)
        return FakeTensor(self.fake, meta, leaf.device)


    def _make_symbolic(self, leaf: Output, inputs: list[torch.Tensor]) -> torch.Tensor:
        """`_make` with symbolic sizes, where allocating a tensor or a view computes its storage size in sympy
        (~100 µs): each output is a view of an empty storage of its own (~15 µs). A new one declares its bytes for
        activation memory; a view holds the tensor it views, so that tensor's storage lives as long as it does."""
        with torch._C._DisableTorchDispatch():
            meta = torch.empty(0, dtype=leaf.dtype, device="meta").as_strided(leaf.shape, leaf.stride, leaf.offset)
        made = FakeTensor(self.fake, meta, leaf.device)
        if leaf.alias is None:
            self.declared[_storage_key(made)] = leaf.nbytes
        else:  # not on its input's storage: it keeps that input alive instead, as the shared storage would
            made._flopwise_base = inputs[leaf.alias]  # type: ignore[attr-defined]
        return made


def fake_empty(fake: FakeTensorMode, shape: Any, stride: Any, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A new fake tensor, made as FakeTensorMode's cache makes one: many times cheaper than `torch.empty_strided`
    dispatched through the fake mode."""
    with torch._C._DisableTorchDispatch():
        meta = torch.empty_strided(shape, stride, dtype=dtype, device="meta")
    return FakeTensor(fake, meta, device)

