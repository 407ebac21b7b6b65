"""Capture: a TorchDispatchMode that sees every aten op call, costs it, and records where it ran."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import torch
from torch._decomp import core_aten_decompositions
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from . import ops as _ops  # noqa: F401 - registers the formulas
from .conventions import Convention
from .cost import Cost, OpCall, Work
from .memory import ActivationMemory
from .modules import ModuleStack
from .registry import Formula, is_view, is_zero_cost, lookup, op_name

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


def _tensors(tree: Any) -> list[torch.Tensor]:
    return [t for t in tree_leaves(tree) if isinstance(t, torch.Tensor)]


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
        self.memory = ActivationMemory()  # live and peak bytes of the tensors the ops create

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
        out = func(*args, **kwargs)
        self._record(name, plan, args, kwargs, out)
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

    def _record(self, name: str, plan: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        module = self.modules.current
        if plan is _VIEW:
            self.calls.append(OpCall(name, module, Cost()))
            return
        inputs = _tensors((args, {k: v for k, v in kwargs.items() if k != "out"}))
        outputs = _tensors(out)
        bytes_read, bytes_written = _nbytes(inputs), _nbytes(outputs)
        self.memory.record(_tensors((args, kwargs)), outputs)
        work = Work()
        if plan is _UNKNOWN:
            self.unsupported[name][module] += 1
        elif plan is not _ZERO and plan is not None:
            extra = {k: v for k, v in kwargs.items() if k != "out"}
            work = plan(out, *args, **extra)
        if work.bytes_read is not None:
            bytes_read = work.bytes_read
        if work.bytes_written is not None:
            bytes_written = work.bytes_written
        cost = Cost(self.convention.macs(work), self.convention.flops(work), bytes_read, bytes_written)
        shapes = tuple(tuple(t.shape) for t in inputs)
        self.calls.append(OpCall(name, module, cost, work, shapes))
