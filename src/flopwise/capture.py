"""Capture: a TorchDispatchMode that sees every aten op call, costs it, and records where it ran."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import torch
from torch._decomp import core_aten_decompositions
from torch._subclasses.fake_tensor import FakeTensor, disable_fake_tensor_cache
from torch.utils._python_dispatch import TorchDispatchMode

from . import mask_values
from . import ops as _ops  # noqa: F401 - registers the formulas
from .conventions import Convention
from .cost import ZERO, Cost, OpCall, Work
from .guard import StateGuard, written_arguments
from .hops import hop_name, run_hop
from .masks import census, mask_argument
from .memory import ActivationMemory
from .modules import ModuleStack
from .ops.attention import MASK_ARGUMENTS
from .registry import (
    OUTPUT_RULES,
    Formula,
    is_view,
    is_zero_cost,
    lookup,
    nested_sizes,
    op_name,
    padded_shape,
    specs,
    stored_bytes,
    stored_values,
    tensors_in,
)
from .shadow import DATA_DEPENDENT, Shadows

_VIEW, _ZERO, _UNKNOWN, _HOP = "view", "zero", "unknown", "higher-order"
# Decompositions into Core ATen ops (not into prims), so their parts land on formulas we know.
_DECOMPOSITIONS = core_aten_decompositions()


def _nbytes(tensors: list[torch.Tensor]) -> int:
    seen: set[int] = set()
    total = 0
    for t in tensors:
        if id(t) not in seen:
            seen.add(id(t))
            total += stored_bytes(t)  # a sparse tensor moves its values and indices, not its dense size
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
        try:
            shape: Any = tree.shape  # torch.Size is a hashable tuple
        except RuntimeError:  # a nested tensor has no shape: its components' sizes identify it
            shape = ("nested", nested_sizes(tree))
        if tree.layout != torch.strided:  # a sparse tensor's cost depends on the values it stores, not its shape
            shape = (shape, tree.layout, stored_values(tree))
        return (shape, tree.dtype, ids[id(tree)])
    if isinstance(tree, (tuple, list)):
        # scalars are the common case (sizes, flags): handled here without a call per item
        return tuple(item if type(item) in _PLAIN_TYPES else _scan(item, ids, found) for item in tree)
    if isinstance(tree, dict):
        return tuple((key, _scan(value, ids, found)) for key, value in tree.items())
    if isinstance(tree, _PLAIN):
        return tree
    raise _Unkeyable


def _shapes_only(args: tuple[Any, ...]) -> bool:
    """Whether the op runs on fake or meta tensors (no data, only the meta kernel)."""
    return any(isinstance(t, FakeTensor) or t.is_meta for t in tensors_in(args))


class CountingMode(TorchDispatchMode):  # type: ignore[no-untyped-call]
    """Records one `OpCall` per aten op; ops with no formula are decomposed, else reported as unsupported.
    Higher-order operators (flex_attention, cond, while_loop, …) are handled in `hops.py`."""

    supports_higher_order_operators = True

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
        # func → (name, formula | kind, arguments it writes), decided once per op
        self._plan: dict[Any, tuple[str, Any, tuple[tuple[int, str], ...]]] = {}
        # A formula is a pure function of shapes: identical calls (the layers of a deep model) are costed once.
        self._costed: dict[Any, tuple[Work, Cost, tuple[tuple[int, ...], ...]]] = {}
        self.memory = ActivationMemory()  # live and peak bytes of the tensors the ops create
        self.warnings: list[str] = []  # what the count assumed or could not keep as found (report.warnings)
        self.guard: StateGuard | None = None  # set by count(): parameters and buffers written in place
        self.shadows: Shadows | None = None  # in fake and meta mode: the real values of input-only tensors
        self.follow_values = convention.masked  # masked attention: follow mask values on fake and meta tensors

    def _plan_for(self, func: Any) -> tuple[str, Any, tuple[tuple[int, str], ...]]:
        if func not in self._plan:
            if isinstance(func, torch._ops.HigherOrderOperator):
                self._plan[func] = (hop_name(func), _HOP, ())
                return self._plan[func]
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
            self._plan[func] = (name, plan, written_arguments(func))
        return self._plan[func]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        name, plan, writes = self._plan_for(func)
        if writes and self.guard is not None:
            self.guard.before_write(args, kwargs, writes)
        if plan is _HOP:
            return run_hop(self, func, args, kwargs)
        if plan is _UNKNOWN:
            out = self._decompose(func, args, kwargs)
            if out is not NotImplemented:
                return out
        if self.shadows is None:
            out = self._run(func, name, args, kwargs)
        else:
            try:
                out = self._run(func, name, args, kwargs)
            except DATA_DEPENDENT:  # .item(), nonzero, …: the value a real run on these inputs gives
                out = self.shadows.answer(func, args, kwargs, name, self.modules.current)
            else:
                self.shadows.follow(func, args, kwargs, out)
        if self.follow_values:  # masked attention: mask values followed on fake tensors (mask_values.py)
            mask_values.track(func, name, args, kwargs, out)
        self._record(func, name, plan, args, kwargs, out)
        return out

    @staticmethod
    def _run(func: torch._ops.OpOverload, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Run the op; on fake or meta tensors, an op whose meta kernel refuses what the CPU kernel accepts
        (float32 `_grouped_mm`) gets its output from the op's shape rule instead, so every mode counts alike."""
        rule = OUTPUT_RULES.get(name)
        if rule is not None and _shapes_only(args):
            out = rule(*args, **kwargs)
            if out is not None:
                return out
        if name.startswith("quantized."):
            # Packed quantized weights are script objects, which fake tensors' shared dispatch cache hashes but
            # cannot compare: a second fake count of the same model would raise in the cache lookup.
            fake = next((t.fake_mode for t in tensors_in(args) if isinstance(t, FakeTensor)), None)
            if fake is not None:
                with disable_fake_tensor_cache(fake):
                    return func(*args, **kwargs)
        return func(*args, **kwargs)

    def _decompose(self, func: torch._ops.OpOverload, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Run the op's decomposition under this mode so its parts are counted; NotImplemented if none."""
        # the table is a CustomDecompTable: its .get() is a plain dict's and misses every lazily loaded entry
        decomposition = _DECOMPOSITIONS[func] if func in _DECOMPOSITIONS else None
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

    def _mask_census(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int | None:
        """Under attention="masked", the pairs an attention op's mask keeps (None: no mask, or unknown values)."""
        if not self.convention.masked or name not in MASK_ARGUMENTS:
            return None
        kept = census(name, args, kwargs)
        if kept is None and isinstance(mask_argument(name, args, kwargs), torch.Tensor):
            warning = f"{name}: the values of its attention mask are unknown here; its pairs are counted dense"
            if warning not in self.warnings:
                self.warnings.append(warning)
        return kept

    def record_work(self, name: str, work: Work, inputs: list[torch.Tensor], out: Any) -> None:
        """Record one call costed outside the formula registry (a higher-order operator's formula)."""
        outputs = tensors_in(out)
        self.memory.record(inputs, outputs)
        cost = Cost(self.convention.macs(work), self.convention.flops(work), _nbytes(inputs), _nbytes(outputs))
        self.calls.append(OpCall(name, self.modules.current, cost, work, tuple(tuple(t.shape) for t in inputs)))

    def record_unsupported(self, name: str) -> None:
        module = self.modules.current
        self.unsupported[name][module] += 1
        self.calls.append(OpCall(name, module, ZERO))

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
            key, inputs = None, tensors_in((args, extra))
        outputs = tensors_in(out)
        self.memory.record(inputs + tensors_in(kwargs["out"]) if "out" in kwargs else inputs, outputs)
        if plan is _UNKNOWN:
            self.unsupported[name][module] += 1
        kept = self._mask_census(name, args, extra)
        if kept is not None and key is not None:
            key = (key, kept)  # same shapes, another mask: another count
        costed = self._costed.get(key) if key is not None else None
        if costed is None:
            costed = self._cost(plan, out, args, extra, inputs, outputs, (name, kept))
            if key is not None:
                self._costed[key] = costed
        work, cost, shapes = costed
        self.calls.append(OpCall(name, module, cost, work, shapes))

    def _cost(
        self, plan: Any, out: Any, args: tuple[Any, ...], extra: dict[str, Any], inputs: list[torch.Tensor],
        outputs: list[torch.Tensor], mask: tuple[str, int | None] = ("", None),
    ) -> tuple[Work, Cost, tuple[tuple[int, ...], ...]]:
        work = Work()
        if plan not in (_UNKNOWN, _ZERO, None):
            out_spec, args_spec, extra_spec = specs((out, args, extra))  # shapes only: formulas never see values
            if mask[1] is not None:  # the one value a formula gets: how many pairs an attention mask keeps
                mask_argument(mask[0], args_spec, extra_spec).kept = mask[1]
            work = plan(out_spec, *args_spec, **extra_spec)
        bytes_read = _nbytes(inputs) if work.bytes_read is None else work.bytes_read
        bytes_written = _nbytes(outputs) if work.bytes_written is None else work.bytes_written
        cost = Cost(self.convention.macs(work), self.convention.flops(work), bytes_read, bytes_written)
        return work, cost, tuple(padded_shape(t) for t in inputs)
