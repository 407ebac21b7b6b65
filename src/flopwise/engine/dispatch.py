"""Capture: a TorchDispatchMode that sees every aten op call, costs it, and records where it ran."""

from __future__ import annotations

import contextlib
from collections import Counter, defaultdict
from typing import Any

import torch
from torch._decomp import core_aten_decompositions
from torch._subclasses.fake_tensor import FakeTensor, disable_fake_tensor_cache
from torch.nested._internal.nested_tensor import NestedTensor
from torch.utils._python_dispatch import TorchDispatchMode

from .. import formulas as _ops  # noqa: F401 - registers the formulas
from ..core.cost import ZERO, Cost, OpCall, Work
from ..formulas.attention import MASK_ARGUMENTS, mask_argument
from ..formulas.pricing import UNKNOWN, VIEW, cost_call, nbytes, plan_of
from ..formulas.registry import OUTPUT_RULES, REAL_ONLY, Unkeyable, compute_dtype, tensors_in
from ..formulas.schema import written_arguments
from ..formulas.varlen_attention import VARLEN_OFFSETS
from ..shapes_only.values import DATA_DEPENDENT, NeedsData
from ..shortcuts.keys import tree_key
from ..shortcuts.replay import MISS
from ..symbolic.trace import TraceBroken
from .eager_attention import EagerAttention
from .higher_order import hop_name, run_hop
from .mask_census import census, sequence_lengths
from .memory import ActivationMemory
from .module_stack import ModuleStack
from .run_state import RunState

_HOP = "higher-order"  # a plan that is not a formula
# Decompositions into Core ATen ops (not into prims), so their parts land on formulas we know.
_DECOMPOSITIONS = core_aten_decompositions()
_DEVICE = torch.ops.prim.device.default
_JAGGED = {NestedTensor}


def _shapes_only(args: tuple[Any, ...]) -> bool:
    """Whether the op runs on fake or meta tensors (no data, only the meta kernel)."""
    return any(isinstance(t, FakeTensor) or t.is_meta for t in tensors_in(args))


class CountingMode(TorchDispatchMode):  # type: ignore[no-untyped-call]
    """Records one `OpCall` per aten op; ops with no formula are decomposed, else reported as unsupported.
    Higher-order operators (flex_attention, cond, while_loop, …) are handled in `hops.py`."""

    supports_higher_order_operators = True

    def __init__(self, modules: ModuleStack, run: RunState) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.modules = modules
        self.run = run
        self.convention = run.convention
        self.overrides = run.overrides
        self.guard, self.values, self.replicas, self.trace = run.guard, run.values, run.replicas, run.trace
        self.calls: list[OpCall] = []
        self.unsupported: defaultdict[str, Counter[str]] = defaultdict(Counter)
        # func → (name, formula | kind, arguments it writes), decided once per op
        self._plan: dict[Any, tuple[str, Any, tuple[tuple[int, str], ...]]] = {}
        # A formula is a pure function of shapes: identical calls (the layers of a deep model) are costed once.
        self._costed: dict[Any, tuple[Work, Cost, tuple[tuple[int, ...], ...], str]] = {}
        self.memory = ActivationMemory()  # live and peak bytes of the tensors the ops create
        self.warnings: list[str] = list(run.notes)  # what the count assumed or could not keep (report.warnings)
        self._nested = 0  # ops being dispatched: > 0 inside one (a decomposition's parts)
        # attention="masked": attention written out in ops, Q·Kᵀ → mask → softmax → ·V (eager_attention.py)
        self.eager = EagerAttention(run.convention, run.values, self.warnings) if run.convention.masked else None

    def _plan_for(self, func: Any) -> tuple[str, Any, tuple[tuple[int, str], ...]]:
        if func not in self._plan:
            if isinstance(func, torch._ops.HigherOrderOperator):
                self._plan[func] = (hop_name(func), _HOP, ())
                return self._plan[func]
            self._plan[func] = (*plan_of(func, self.overrides), written_arguments(func))
        return self._plan[func]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        if func is _DEVICE and type(args[0]) is FakeTensor:  # a fake tensor's device, asked by Python code: no op
            return args[0].fake_device
        if any(t in _JAGGED for t in types):  # a jagged nested tensor runs its ops on its packed values: count those
            return NotImplemented
        kwargs = kwargs or {}
        replicas = self.replicas
        if replicas is None or self._nested:
            return self._dispatch(func, args, kwargs)
        out, call, inputs = replicas.replay(func, args, kwargs)  # a run with symbolic sizes: keys compare
        if out is not MISS:  # expressions, outputs declare their bytes
            if inputs is not None:
                self.memory.record(inputs, tensors_in(out), replicas.declared)
            if self.trace is not None:
                self.trace.replayed(replicas.last, call)
            self.calls.append(call)
            return out
        start = len(self.calls)
        self._nested += 1
        try:
            out = self._dispatch(func, args, kwargs)
        finally:
            self._nested -= 1
        with self.trace.bookkeeping() if self.trace is not None else contextlib.nullcontext():
            self._tape(func, args, kwargs, out, start)
        return out

    def _tape(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any, start: int) -> None:
        """Record a top-level op of a block being taped for replays (replay.py), with what makes it replayable."""
        assert self.replicas is not None
        name, plan, writes = self._plan_for(func)
        quantized = name.startswith(("quantized.", "aten.quantized_"))
        replayable = (
            plan not in (UNKNOWN, _HOP)
            and "out" not in kwargs
            and name not in OUTPUT_RULES
            and not quantized
            and name not in VARLEN_OFFSETS
        )  # a varlen op's cost follows its offsets' values
        # in place: writes its first argument and returns it, sizes unchanged (no view op such as unsqueeze_)
        in_place = (
            replayable
            and func._schema.is_mutable
            and bool(args)
            and out is args[0]
            and tuple(i for i, _ in writes) == (0,)
            and torch.Tag.inplace_view not in func.tags
        )
        # a schema that writes nothing but running statistics (batch norm's) writes only in training, unguarded here
        replayable = replayable and (in_place or not func._schema.is_mutable)
        self.replicas.record(func, args, kwargs, out, self.calls[start:], replayable, plan is not VIEW, in_place)

    def _dispatch(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        name, plan, writes = self._plan_for(func)
        if writes and self.guard is not None:
            self.guard.before_write(func, args, kwargs)
        if plan is _HOP:
            if self.trace is not None:
                raise TraceBroken(f"a higher-order operator ({name})")
            return run_hop(self, func, args, kwargs)
        if plan is UNKNOWN:
            out = self._decompose(func, args, kwargs)
            if out is not NotImplemented:
                return out
        if self.values is None or self.trace is not None:  # a traced run follows no values: a data-dependent
            out = self._run(func, name, args, kwargs)  # one breaks it (counter.py then counts each size)
        elif name in REAL_ONLY:  # a shape-only count meets a result fake tensors cannot hold: count.py runs it real
            raise NeedsData(name, self.modules.current, reason=REAL_ONLY[name])
        else:
            try:
                out = self._run(func, name, args, kwargs)
            except DATA_DEPENDENT:  # .item(), nonzero, …: the value a real run on these inputs gives
                out = self.values.answer(func, args, kwargs, name, self.modules.current)
            else:
                self.values.follow(func, args, kwargs, out)
        with self.trace.bookkeeping() if self.trace is not None else contextlib.nullcontext():
            self._record(func, name, plan, args, kwargs, out)
        if self.eager is not None:
            self.eager.after(name, args, kwargs, out, self.calls)
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
        if name.startswith(("quantized.", "aten.quantized_")):
            # Packed quantized weights (and quantized RNNs' cell parameters) are script objects, which fake tensors'
            # shared dispatch cache hashes but cannot compare: a second fake count of the model would raise there.
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

    def _lengths(self, name: str, args: tuple[Any, ...]) -> dict[int, tuple[int, ...]] | None:
        """The lengths of the sequences a variable-length attention op packs (its kernel attends within each)."""
        if name not in VARLEN_OFFSETS:
            return None
        if self.trace is not None:
            raise TraceBroken(f"{name}: its cost follows the values of its sequence offsets")
        found = sequence_lengths(name, args, self.values)
        if found is None and any(isinstance(args[i], torch.Tensor) for i in VARLEN_OFFSETS[name] if i < len(args)):
            warning = f"{name}: the values of its sequence offsets are unknown here; counted as one sequence"
            if warning not in self.warnings:
                self.warnings.append(warning)
        return found

    def _mask_census(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int | None:
        """Under attention="masked", the pairs an attention op's mask keeps (None: no mask, or unknown values)."""
        if not self.convention.masked or name not in MASK_ARGUMENTS:
            return None
        kept = census(name, args, kwargs, self.values)
        if kept is None and isinstance(mask_argument(name, args, kwargs), torch.Tensor):
            warning = f"{name}: the values of its attention mask are unknown here; its pairs are counted dense"
            if warning not in self.warnings:
                self.warnings.append(warning)
        return kept

    def record_work(self, name: str, work: Work, inputs: list[torch.Tensor], out: Any) -> None:
        """Record one call costed outside the formula registry (a higher-order operator's formula)."""
        outputs = tensors_in(out)
        self.memory.record(inputs, outputs)
        cost = Cost(self.convention.macs(work), self.convention.flops(work), nbytes(inputs), nbytes(outputs))
        shapes = tuple(tuple(t.shape) for t in inputs)
        dtype = work.dtype or compute_dtype(inputs, outputs)
        self.calls.append(OpCall(name, self.modules.current, cost, work, shapes, dtype))

    def record_unsupported(self, name: str) -> None:
        module = self.modules.current
        self.unsupported[name][module] += 1
        self.calls.append(OpCall(name, module, ZERO))

    def _record(self, func: Any, name: str, plan: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        module = self.modules.current
        if plan is VIEW:
            self.calls.append(OpCall(name, module, ZERO))
            return
        extra = {k: v for k, v in kwargs.items() if k != "out"} if kwargs else kwargs
        trace = self.trace
        inputs: list[torch.Tensor] = []
        if trace is not None:  # symbolic sizes: the call becomes a recipe, costed at the sizes' hints
            inputs = list({id(t): t for t in tensors_in((args, extra))}.values())  # each once, as the keyer finds them
            key: Any = trace.record(plan, out, args, extra, inputs, tensors_in(out), (name, None))
        else:
            try:
                key = (func, tree_key((args, extra), {}, inputs), tree_key(out, {}, []))
            except Unkeyable:
                key, inputs = None, tensors_in((args, extra))
        outputs = tensors_in(out)
        self.memory.record(inputs + tensors_in(kwargs["out"]) if "out" in kwargs else inputs, outputs)
        if plan is UNKNOWN:
            self.unsupported[name][module] += 1
        kept = self._mask_census(name, args, extra)
        lengths = self._lengths(name, args)
        if (kept is not None or lengths is not None) and key is not None:
            key = (key, kept, tuple(sorted((lengths or {}).items())))  # another mask or other sequences: another count
        costed = self._costed.get(key) if key is not None else None
        if costed is None:
            costed = (
                trace.cost_at(key)
                if trace is not None
                else cost_call(self.convention, plan, out, args, extra, inputs, outputs, (name, kept), lengths)
            )
            if key is not None:
                self._costed[key] = costed
        work, cost, shapes, dtype = costed
        call = OpCall(name, module, cost, work, shapes, dtype)
        if trace is not None:
            trace.recipe_of[id(call)] = key
        self.calls.append(call)
