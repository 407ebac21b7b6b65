"""Capture: a TorchDispatchMode that sees every aten op call, costs it, and records where it ran."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import torch
from torch._decomp import core_aten_decompositions
from torch.utils._python_dispatch import TorchDispatchMode

from . import ops as _ops  # noqa: F401 - registers the formulas
from .conventions import Convention
from .cost import ZERO, Cost, OpCall, Work
from .memory import ActivationMemory
from .modules import ModuleStack
from .registry import Formula, is_view, is_zero_cost, lookup, op_name
from .shadow import DATA_DEPENDENT, Shadows

_VIEW, _ZERO, _UNKNOWN = "view", "zero", "unknown"
# Decompositions into Core ATen ops (not into prims), so their parts land on formulas we know.
_DECOMPOSITIONS = core_aten_decompositions()


def _nbytes(tensors: list[torch.Tensor]) -> int:
    seen: set[int] = set()
    total = 0
    for t in tensors:
        if id(t) not in seen:
            seen.add(id(t))
            total += t.numel() * t.element_size()
    return total


_PLAIN = (int, float, bool, str, type(None), torch.dtype, torch.device, torch.memory_format, torch.layout)
_PLAIN_TYPES = frozenset(_PLAIN)


class _Unkeyable(Exception):
    """An argument (a SymInt, an object) that cannot be part of a cache key."""


def _scan(tree: Any, ids: dict[int, int], found: list[torch.Tensor]) -> Any:
    """A hashable description of an op's arguments — each tensor by shape, dtype and which argument it is
    (so `x * x` differs from `x * y`) — collecting the tensors into `found` on the way."""
    if isinstance(tree, torch.Tensor):
        if id(tree) not in ids:
            ids[id(tree)] = len(ids)
            found.append(tree)
        return (tree.shape, tree.dtype, ids[id(tree)])  # torch.Size is a hashable tuple
    if isinstance(tree, (tuple, list)):
        # scalars are the common case (sizes, flags): handled here without a call per item
        return tuple(item if type(item) in _PLAIN_TYPES else _scan(item, ids, found) for item in tree)
    if isinstance(tree, dict):
        return tuple((key, _scan(value, ids, found)) for key, value in tree.items())
    if isinstance(tree, _PLAIN):
        return tree
    raise _Unkeyable


def _tensors(tree: Any) -> list[torch.Tensor]:
    """The tensors in an op's arguments or outputs: (nested) tuples, lists and dicts, as aten passes them."""
    found: list[torch.Tensor] = []
    pending = [tree]
    while pending:
        item = pending.pop()
        if isinstance(item, torch.Tensor):
            found.append(item)
        elif isinstance(item, (tuple, list)):
            pending.extend(reversed(item))
        elif isinstance(item, dict):
            pending.extend(reversed(list(item.values())))
    return found


class CountingMode(TorchDispatchMode):  # type: ignore[no-untyped-call]
    """Records one `OpCall` per aten op; ops with no formula are decomposed, else reported as unsupported."""

    def __init__(
        self,
        modules: ModuleStack,
        convention: Convention,
        overrides: dict[Any, Formula | None] | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.modules = modules
        self.convention = convention
        self.overrides = {op_name(op): fn for op, fn in (overrides or {}).items()}
        self.calls: list[OpCall] = []
        self.unsupported: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self._plan: dict[Any, tuple[str, Any]] = {}  # func → (name, formula | kind), decided once per op
        # A formula is a pure function of shapes: identical calls (the layers of a deep model) are costed once.
        self._costed: dict[Any, tuple[Work, Cost, tuple[tuple[int, ...], ...]]] = {}
        self.memory = ActivationMemory()  # live and peak bytes of the tensors the ops create
        self.shadows: Shadows | None = None  # in fake and meta mode: the real values of input-only tensors

    def _plan_for(self, func: torch._ops.OpOverload) -> tuple[str, Any]:
        if func not in self._plan:
            name = op_name(func)
            fn = lookup(name, self.overrides)
            if fn is not False:
                plan: Any = fn  # a formula, or None when an override ignores the op
            elif is_view(func):
                plan = _VIEW
            elif is_zero_cost(name):
                plan = _ZERO
            else:
                plan = _UNKNOWN
            self._plan[func] = (name, plan)
        return self._plan[func]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        name, plan = self._plan_for(func)
        if plan is _UNKNOWN:
            out = self._decompose(func, args, kwargs)
            if out is not NotImplemented:
                return out
        if self.shadows is None:
            out = func(*args, **kwargs)
        else:
            try:
                out = func(*args, **kwargs)
            except DATA_DEPENDENT:  # .item(), nonzero, …: the value a real run on these inputs gives
                out = self.shadows.answer(func, args, kwargs, name, self.modules.current)
            else:
                self.shadows.follow(func, args, kwargs, out)
        self._record(func, name, plan, args, kwargs, out)
        return out

    def _decompose(self, func: torch._ops.OpOverload, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Run the op's decomposition under this mode so its parts are counted; NotImplemented if none."""
        decomposition = _DECOMPOSITIONS.get(func)
        start = len(self.calls)
        try:
            with self:
                out = func.decompose(*args, **kwargs)
                if out is NotImplemented and decomposition is not None:
                    out = decomposition(*args, **kwargs)
        except Exception:  # a decomposition that cannot run here: count the op itself as unsupported
            del self.calls[start:]
            return NotImplemented
        return out

    def _record(
        self, func: Any, name: str, plan: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any
    ) -> None:
        module = self.modules.current
        if plan is _VIEW:
            self.calls.append(OpCall(name, module, ZERO))
            return
        extra = {k: v for k, v in kwargs.items() if k != "out"} if kwargs else kwargs
        inputs: list[torch.Tensor] = []
        try:
            key: Any = (func, _scan((args, extra), {}, inputs), _scan(out, {}, []))
        except _Unkeyable:
            key, inputs = None, _tensors((args, extra))
        outputs = _tensors(out)
        self.memory.record(inputs + _tensors(kwargs["out"]) if "out" in kwargs else inputs, outputs)
        if plan is _UNKNOWN:
            self.unsupported[name][module] += 1
        costed = self._costed.get(key) if key is not None else None
        if costed is None:
            costed = self._cost(plan, out, args, extra, inputs, outputs)
            if key is not None:
                self._costed[key] = costed
        work, cost, shapes = costed
        self.calls.append(OpCall(name, module, cost, work, shapes))

    def _cost(
        self, plan: Any, out: Any, args: tuple[Any, ...], extra: dict[str, Any], inputs: list[torch.Tensor],
        outputs: list[torch.Tensor],
    ) -> tuple[Work, Cost, tuple[tuple[int, ...], ...]]:
        work = plan(out, *args, **extra) if plan not in (_UNKNOWN, _ZERO, None) else Work()
        bytes_read = _nbytes(inputs) if work.bytes_read is None else work.bytes_read
        bytes_written = _nbytes(outputs) if work.bytes_written is None else work.bytes_written
        cost = Cost(self.convention.macs(work), self.convention.flops(work), bytes_read, bytes_written)
        return work, cost, tuple(tuple(t.shape) for t in inputs)
