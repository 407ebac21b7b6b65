"""Replays and the memo: in the shape-only modes, an op call met before is made from its record, never guessed.

In fake and meta mode an op's cost and its outputs' metadata are a pure function of its key (shortcuts/keys.py: the
op, its arguments' metadata and plain values, the global state a kernel reads), the convention and the formulas
registered. The first call of a module whose structure repeats (the 80 decoder layers of a Llama) records a *tape*:
each op's key, cost record and outputs' metadata. Later calls of a module of that structure run their Python
forward and every hook as usual; only an op whose key equals the tape's at the same position gets the taped record
(attributed to the module it runs in now) and outputs made directly as fake tensors. Since the Python always runs,
whatever the forward reads (globals, closures, shared objects, torch's flags) chooses the ops as in a plain count;
the first op that differs ends the replay of that call. Entries also make a *memo*, kept across counts under the
convention and the registry's version: an op whose key was met before is made from it.

Never replayed (counted normally): ops that return a value rather than tensors (SDPA's kernel choice reads global
flags), variable-length attention (its cost follows its offsets' values), out= ops and in-place ops other than
those that write their first argument and return it, ops whose
tensors all have a followed value or that write one (shapes_only/values.py), ops with no formula, higher-order ops,
ops on real tensors. A tape is dropped when its block met a data-dependent value or left followed values alive,
and none is kept under attention="masked", whose counts depend on mask values.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook

from ..core.conventions import Convention
from ..core.cost import OpCall
from ..formulas import registry
from ..formulas.registry import tensors_in
from ..shapes_only.tensors import Output, describe, make, rebuild, storage_key, wrap
from ..shapes_only.values import Values
from .keys import all_fake, call_key

MISS = object()  # replay() found no match: count the op normally


class Entry(NamedTuple):
    func: Any
    in_place: bool  # returns its first argument, written in place (relu_, add_)
    key: Any  # None: not replayable, counted normally when met again
    call: Any  # OpCall (None when `key` is)
    outputs: Any  # (leaves, spec): an Output for each tensor (None for an in-place op)
    allocates: bool  # recorded in activation memory (not a view)


def _tensors_only(outputs: Any) -> bool:
    """Whether described outputs are all tensors (or None): a value (an int, a bool) may come from global flags or
    the data, which the key does not hold, so an op returning one always runs."""
    leaves, spec = outputs
    return all(isinstance(leaf, Output) or leaf is None for leaf in (leaves if spec is not None else [leaves]))


class _Tape:
    def __init__(self, values_alive: int, answered: int) -> None:
        self.entries: list[Entry] = []
        self.valid = True
        self.values_alive, self.answered = values_alive, answered


def structures(model: torch.nn.Module) -> dict[torch.nn.Module, int]:
    """The outermost modules whose structure repeats in the model (same class, training flag, parameter and buffer
    shapes and dtypes, submodules alike), each with its structure's number: their calls are taped and replayed."""
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
    return chosen


MEMO_SIZE = 1 << 14  # entries kept across counts; past it the memo starts again (an entry is a few hundred bytes)
_MEMOS: dict[Any, dict[Any, Entry]] = {}  # (convention, registry version) → the memo
_MEMO_LOCK = threading.Lock()


def forget() -> None:
    """Empty the memo kept across counts, and torch's cache of fake kernels' outputs (which it keeps across counts
    too): the next count runs as the first of this process, or as one at sizes never counted (benchmarks)."""
    with _MEMO_LOCK:
        _MEMOS.clear()
    FakeTensorMode.cache_clear()


def _memo(convention: Convention, private: bool) -> dict[Any, Entry]:
    """The memo a count reads and adds to: its own when `private` (formula overrides, which may count their calls;
    symbolic sizes, keyed by its own symbols), else the one kept for this convention and these formulas."""
    if private:
        return {}
    with _MEMO_LOCK:
        memo = _MEMOS.setdefault((convention, registry.version()), {})
        if len(memo) > MEMO_SIZE:
            memo.clear()
        return memo


class Replicas:
    """Tapes of repeated blocks and their replays for one count (see the module docstring); hooks removed in close().
    `replayed` and `recalled` count the op calls made from tapes and from the memo."""

    def __init__(
        self,
        model: torch.nn.Module,
        fake: FakeTensorMode,
        where: Callable[[], str],
        values: Values,
        convention: Convention,
        private: bool,
    ) -> None:
        """`where()`: the name of the module running now (the module stack's)."""
        self.kinds = structures(model)
        self.fake = fake
        self.where = where
        self.values = values  # real values of input-only tensors (shapes_only/values.py)
        self.tapes: dict[int, _Tape] = {}
        self.symbolic = fake.shape_env is not None  # a run with symbolic sizes (symbolic/trace.py)
        self.memo = _memo(convention, private or self.symbolic)  # key → entry (outside tapes too)
        self.recording: _Tape | None = None
        self.playing: _Tape | None = None
        self.root: torch.nn.Module | None = None  # the module whose call is being taped or replayed
        self.depth = 0  # calls of `root` inside its own call
        self.position = 0
        self.replayed = self.recalled = 0  # ops of this count made from tapes, from the memo
        self.last: OpCall | None = None  # the cost record the last replay or recall repeated
        self.declared: dict[int | None, int] = {}  # storage → its bytes, for storages made without them
        self._thread = threading.get_ident()
        self._handles = [
            register_module_forward_pre_hook(self._enter),
            register_module_forward_hook(self._exit, always_call=True),
        ]

    def close(self) -> None:
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
            self.recording = self.tapes[number] = _Tape(*self._followed())
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
            alive, answered = self._followed()
            # values followed inside the block that outlive it, or a value the data decided: replays would lose them
            tape.valid = output is not None and alive <= tape.values_alive and answered == tape.answered
        self.root = self.recording = self.playing = None

    def _followed(self) -> tuple[int, int]:
        """(followed values alive, data-dependent values answered) now."""
        return len(self.values.known), sum(self.values.answered.values())

    def record(
        self,
        func: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        out: Any,
        calls: list[OpCall],
        replayable: bool,
        allocates: bool,
        in_place: bool,
    ) -> None:
        """After a top-level op counted normally: its entry (`calls`: the records the op added), on the tape being
        recorded and, when it made no followed value, in the memo."""
        found = call_key(func, args, kwargs) if replayable and len(calls) == 1 else None
        if found is not None and not all_fake(found[1]):
            found = None  # an op on real tensors makes real outputs: never made as fake ones
        constants = [getattr(t, "constant", None) is not None for t in found[1]] if found is not None else []
        if any(constants) and (in_place or all(constants)):
            found = None  # the fake mode folds ops on constants alone, forgets those written to: a replay would not
        outputs = None if found is None or in_place else describe(out, found[1], self.fake)
        usable = found is not None and (in_place or (outputs is not None and _tensors_only(outputs)))
        entry = (
            Entry(func, in_place, found[0], calls[0], outputs, allocates)
            if usable and found is not None
            else Entry(func, in_place, None, None, None, allocates)
        )
        if self.recording is not None:
            self.recording.entries.append(entry)
        if entry.key is not None and not any(t in self.values.known for t in tensors_in(out)):
            self.memo.setdefault(entry.key, entry)

    def replay(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any, Any]:
        """(outputs, cost record with the current module, tensors read) for a top-level op of a replica or in the
        memo, or (MISS, None, None) to count it normally; a mismatch ends this call's replay (the memo may still
        have the op)."""
        tape = self.playing
        found: Any = MISS
        if tape is not None:
            entry = tape.entries[self.position] if self.position < len(tape.entries) else None
            self.position += 1
            if entry is None or entry.func is not func:
                self.playing = None
            elif entry.key is not None:
                found = call_key(func, args, kwargs)
                if found is not None and found[0] == entry.key:
                    if self._follows(entry, args, found[1]):
                        return MISS, None, None
                    self.replayed += 1
                    return self._outputs(entry, args, found[1])
                self.playing = None
        return self._recall(func, args, kwargs, found)  # not on the tape (or no longer): maybe in the memo

    def _recall(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], found: Any) -> tuple[Any, Any, Any]:
        """An op whose key was met before, made from the memo (`found`: its call_key, or MISS if not made yet)."""
        if found is MISS:
            found = call_key(func, args, kwargs)
        entry = self.memo.get(found[0]) if found is not None else None
        if entry is None or found is None or self._follows(entry, args, found[1]):
            return MISS, None, None
        if self.recording is not None:
            self.recording.entries.append(entry)
        self.recalled += 1
        return self._outputs(entry, args, found[1])

    def _follows(self, entry: Entry, args: tuple[Any, ...], inputs: list[torch.Tensor]) -> bool:
        """Whether counting the op normally follows a value (shapes_only/values.py), which a replay would not: every
        tensor it reads has one (its outputs get theirs; a random op draws), or it writes one in place."""
        values = self.values.known
        if (bool(inputs) and all(t in values for t in inputs)) or (entry.in_place and args[0] in values):
            return True
        return not all_fake(inputs)  # an op on real tensors makes real outputs: never made as fake ones

    def _outputs(self, entry: Entry, args: tuple[Any, ...], inputs: list[torch.Tensor]) -> tuple[Any, Any, Any]:
        if entry.in_place:
            out = args[0]
        else:
            out = rebuild(entry.outputs, lambda leaf: self._make(leaf, inputs))
        self.last = entry.call
        return out, entry.call._replace(module=self.where()), inputs if entry.allocates else None

    def _make(self, leaf: Any, inputs: list[torch.Tensor]) -> Any:
        if not self.symbolic or not isinstance(leaf, Output):
            return make(self.fake, leaf, inputs)
        # with symbolic sizes, allocating a tensor or a view computes its storage size in sympy, slowly: each output
        # is a view of an empty storage of its own; a new one declares its bytes for activation memory, a view
        # holds the tensor it views, so that tensor's storage lives as long as it does
        with torch._C._DisableTorchDispatch():
            meta = torch.empty(0, dtype=leaf.dtype, device="meta").as_strided(leaf.shape, leaf.stride, leaf.offset)
        made = wrap(self.fake, meta, leaf.device)
        if leaf.alias is None:
            self.declared[storage_key(made)] = leaf.nbytes
        else:
            made._flopwise_base = inputs[leaf.alias]  # type: ignore[attr-defined]
        return made
