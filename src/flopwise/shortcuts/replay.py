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
the rest is counted normally. A call of such a block that is keyed exactly as one counted before is not run at all
(fold.py).

The same entries make a *memo*: an op whose key was met before (batch norm's size-0 `empty`, a ReLU on a shape seen
in another block, a convolution of the same shapes in an earlier count) is made from it. The memo is kept from one
count to the next, as FakeTensorMode keeps its own cache of fake kernels' outputs, under the state its entries
depend on besides their key: the convention that costed them, inference mode, and the backend flags a fake kernel
may read. A count with formula overrides (a user's function, which may count its calls) and a run with symbolic
sizes (keys of its own symbols) keep their own for that count only.

Never replayed (counted normally, the replay goes on after them): out= ops and in-place ops other than those that
write their first argument and return it (relu_, add_) without changing its sizes, ops whose tensors all have a
followed value and in-place writes to one (shadow.py), ops with no formula (decomposed or unsupported), higher-order
ops, ops on real tensors. A tape is dropped when its block met a data-dependent value or left shadow values alive
(shadow.py), since replays do not follow values; nor are tapes kept under attention="masked", whose counts depend
on mask values.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook

from ..core.cost import OpCall
from ..engine.memory import _storage_key
from ..engine.module_stack import ModuleStack
from ..formulas.registry import tensors_in
from ..shapes_only.tensors import Output, describe, make, rebuild, replay_key, wrap
from ..shapes_only.values import Shadows
from .fold import Folds

ENABLED = True  # the switch tests turn off to compare counts with and without replays
MISS = object()  # replay() found no match: count the op normally


class Entry(NamedTuple):
    func: Any
    in_place: bool  # returns its first argument, written in place (relu_, add_)
    key: Any  # None: not replayable, counted normally when met again
    call: Any  # OpCall (None when `key` is)
    outputs: Any  # (leaves, spec): Output for each tensor, the value itself otherwise
    allocates: bool  # recorded in activation memory (not a view)


def _memorable(entry: Entry) -> bool:
    """Whether an entry may serve any later call with its key: its outputs are tensors, not values (a query such
    as SDPA's kernel choice may read global flags; a data-dependent value comes from the shadows, another call
    with the key may have none)."""
    if entry.in_place:
        return True
    leaves, spec = entry.outputs
    return all(isinstance(leaf, Output) or leaf is None for leaf in (leaves if spec is not None else [leaves]))


class _Tape:
    def __init__(self, shadows_alive: int, answered: int) -> None:
        self.entries: list[Entry] = []
        self.valid = True
        self.shadows_alive, self.answered = shadows_alive, answered


def structures(model: torch.nn.Module) -> tuple[dict[torch.nn.Module, int], dict[torch.nn.Module, int]]:
    """The modules whose structure repeats in the model, each with its structure's number: the outermost ones (whose
    calls are taped and replayed), and all of them, at any depth (whose calls may be folded)."""
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
    counts = Counter(kind.values())
    chosen: dict[torch.nn.Module, int] = {}

    def choose(module: torch.nn.Module) -> None:
        if counts[kind[module]] > 1:
            chosen.setdefault(module, kind[module])
            return
        for child in module._modules.values():
            if child is not None:
                choose(child)

    choose(model)
    return chosen, {module: number for module, number in kind.items() if counts[number] > 1}


MEMO_SIZE = 1 << 14  # entries kept across counts; past it the memo starts again (an entry is a few hundred bytes)
_MEMOS: dict[Any, dict[Any, Entry]] = {}  # the state entries depend on besides their key → the memo


def forget() -> None:
    """Empty the memo kept across counts, and torch's cache of fake kernels' outputs (which it keeps across counts
    too): the next count runs as the first of this process, or as one at sizes never counted (benchmarks)."""
    _MEMOS.clear()
    FakeTensorMode.cache_clear()


def _memo(convention: Any, private: bool) -> dict[Any, Entry]:
    if private:
        return {}
    # a fake kernel may read global flags (a convolution's output layout follows the backend they select)
    flags = torch._C._get_mkldnn_enabled(), torch._C._get_cudnn_enabled(), torch.are_deterministic_algorithms_enabled()
    memo = _MEMOS.setdefault((convention, torch.is_inference_mode_enabled(), flags), {})
    if len(memo) > MEMO_SIZE:
        memo.clear()
    return memo


class Replicas:
    """Tapes of repeated blocks and their replays for one count (see the module docstring); hooks removed in close()."""

    def __init__(
        self, model: torch.nn.Module, fake: FakeTensorMode, stack: ModuleStack, mode: Any, shadows: Shadows
    ) -> None:
        """`mode`: the CountingMode (its calls, memory, warnings and unsupported ops, for folds)."""
        self.kinds, self.repeated = structures(model)
        self.fake = fake
        self.stack = stack  # which module is running now
        self.values = shadows  # real values of input-only tensors (shadow.py)
        self.tapes: dict[int, _Tape] = {}
        self.symbolic = fake.shape_env is not None  # a run with symbolic sizes (symbolic_trace.py)
        self.memo = _memo(mode.convention, bool(mode.overrides) or self.symbolic)  # key → entry (outside tapes too)
        self.recording: _Tape | None = None
        self.playing: _Tape | None = None
        self.root: torch.nn.Module | None = None  # the module whose call is being taped or replayed
        self.depth = 0  # calls of `root` inside its own call
        self.position = 0
        self.replayed = self.recalled = 0  # ops of this count made from tapes, from the memo
        self.last: OpCall | None = None  # the cost record the last replay or recall repeated
        self.declared: dict[int | None, int] = {}  # storage → its bytes, for storages made without them
        self._thread = threading.get_ident()
        # calls of repeated modules folded whole (fold.py)
        self.folds = Folds(stack, mode, mode.memory, shadows, fake, self._make, self.declared) \
            if Folds.usable() else None
        if self.folds is not None:
            self.folds.install(list(self.repeated), self._forward)
        self._handles = [register_module_forward_pre_hook(self._enter),
                         register_module_forward_hook(self._exit, always_call=True)]

    def close(self) -> None:
        if self.folds is not None:
            self.folds.close()
        for handle in self._handles:
            handle.remove()
        self._handles, self.memo = [], {}

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

    def _forward(self, module: torch.nn.Module, original: Callable[..., Any], args: tuple[Any, ...],
                 kwargs: dict[str, Any]) -> Any:
        """A repeated module's forward (fold.py): its call may be folded, unless it is a call of the block being
        taped or replayed inside itself. A fold inside a block being replayed ends its replay (the tape's next op is
        not the next op any more); the memo still has the ops."""
        folds, number = self.folds, self.repeated.get(module)  # None: a copy made during the count
        if folds is None or number is None or (module is self.root and self.depth != 1) or \
                threading.get_ident() != self._thread:
            return original(*args, **kwargs)
        folded = len(folds.folded)
        out = folds.call(module, number, original, args, kwargs)
        if len(folds.folded) != folded and module is not self.root:
            self.playing = None
        return out

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
        """After a top-level op counted normally: its entry (`calls`: the records the op added), on the tape being
        recorded and, when it made no followed value, in the memo."""
        found = replay_key(func, args, kwargs) if replayable and len(calls) == 1 else None
        constants = [getattr(t, "constant", None) is not None for t in found[1]] if found is not None else []
        if any(constants) and (in_place or all(constants)):
            found = None  # the fake mode folds ops on constants alone, forgets those written to: a replay would not
        outputs = None if found is None else in_place or describe(out, found[1], self.fake)
        entry = Entry(func, in_place, None, None, None, allocates) if found is None or outputs is None else \
            Entry(func, in_place, found[0], calls[0], outputs, allocates)
        if self.recording is not None:
            self.recording.entries.append(entry)
        if entry.key is not None and _memorable(entry) and not any(t in self.values.values for t in tensors_in(out)):
            self.memo.setdefault(entry.key, entry)

    def replay(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any, Any]:
        """(outputs, cost record with the current module, tensors read) for a top-level op of a replica or in the
        memo, or (MISS, None, None) to count it normally; a mismatch ends this call's replay (the memo may still
        have the op)."""
        if self.folds is not None:
            self.folds.note_write(func, args, kwargs)
        tape = self.playing
        found: Any = MISS
        if tape is not None:
            entry = tape.entries[self.position] if self.position < len(tape.entries) else None
            self.position += 1
            if entry is None or entry.func is not func:
                self.playing = None
            elif entry.key is not None:
                found = replay_key(func, args, kwargs)
                if found is not None and found[0] == entry.key:
                    if self._follows(entry, args, found[1]):
                        return MISS, None, None
                    self.replayed += 1
                    return self._outputs(entry, args, found[1])
                self.playing = None
        return self._recall(func, args, kwargs, found)  # not on the tape (or no longer): maybe in the memo

    def _recall(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], found: Any) -> tuple[Any, Any, Any]:
        """An op whose key was met before, made from the memo (`found`: its replay_key, or MISS if not made yet)."""
        if found is MISS:
            found = replay_key(func, args, kwargs)
        entry = self.memo.get(found[0]) if found is not None else None
        if entry is None or found is None or self._follows(entry, args, found[1]):
            return MISS, None, None
        if self.recording is not None:
            self.recording.entries.append(entry)
        self.recalled += 1
        return self._outputs(entry, args, found[1])

    def _follows(self, entry: Entry, args: tuple[Any, ...], inputs: list[torch.Tensor]) -> bool:
        """Whether counting the op normally follows a value (shadow.py), which a replay would not: every tensor it
        reads has one (its outputs get theirs; a random op draws), or it writes one in place (dropped, stale)."""
        values = self.values.values
        return (bool(inputs) and all(t in values for t in inputs)) or (entry.in_place and args[0] in values)

    def _outputs(self, entry: Entry, args: tuple[Any, ...], inputs: list[torch.Tensor]) -> tuple[Any, Any, Any]:
        if entry.in_place:
            out = args[0]
        else:
            out = rebuild(entry.outputs, lambda leaf: self._make(leaf, inputs))
        self.last = entry.call
        return out, entry.call._replace(module=self.stack.current), inputs if entry.allocates else None

    def _make(self, leaf: Any, inputs: list[torch.Tensor]) -> Any:
        if not self.symbolic or not isinstance(leaf, Output):
            return make(self.fake, leaf, inputs)
        # with symbolic sizes, allocating a tensor or a view computes its storage size in sympy (~100 µs): each
        # output is a view of an empty storage of its own (~15 µs); a new one declares its bytes for activation
        # memory, a view holds the tensor it views, so that tensor's storage lives as long as it does
        with torch._C._DisableTorchDispatch():
            meta = torch.empty(0, dtype=leaf.dtype, device="meta").as_strided(leaf.shape, leaf.stride, leaf.offset)
        made = wrap(self.fake, meta, leaf.device)
        if leaf.alias is None:
            self.declared[_storage_key(made)] = leaf.nbytes
        else:
            made._flopwise_base = inputs[leaf.alias]  # type: ignore[attr-defined]
        return made
