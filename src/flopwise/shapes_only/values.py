"""Real values beside fake tensors: one store per count, for the tensors that depend on the inputs alone.

Fake and meta modes have no weights, but the inputs a count is given (token ids, masks, pixel values) are real. A
tensor computed only from real inputs, buffers, constants and deterministic factory ops (`arange`, `ones`,
`torch.tensor([...])`) keeps its real value beside its fake tensor, computed on the CPU while it stays small. The
store answers data-dependent questions (`.item()`, `if mask.all()`, `nonzero`) with what a real run on these
inputs gives, and tells the mask census (engine/mask_census.py) which pairs a mask keeps.

A value that depends on the weights (an MoE router's choice) is not known: `NeedsData` names the op, and `count()`
decides (real execution when the model has weights, else a one-line error). So does an op whose result fake tensors
cannot hold (`registry.REAL_ONLY`: torch has no fake quantized tensors).
"""

from __future__ import annotations

import contextlib
import functools
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch._subclasses.fake_tensor import DataDependentOutputException, DynamicOutputShapeException, FakeTensor
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import _disable_current_modes
from torch.utils._pytree import tree_flatten, tree_map
from torch.utils.weak import WeakTensorKeyDictionary

from ..formulas.registry import tensors_in
from ..formulas.schema import written_tensors

# What fake tensors raise when an op's result (a value, or an output size) depends on the data.
DATA_DEPENDENT = (DataDependentOutputException, DynamicOutputShapeException)
LIMIT = 1 << 24  # elements: larger tensors have no known value (a causal mask over 4,096 tokens is the largest kept)


COLLECTIVES = ("_c10d_functional", "c10d", "_c10d_functional_autograd")  # results made of other ranks' values
WEIGHTS = "needs a value computed from the weights (shape-only modes know only the inputs' values)"


class NeedsData(RuntimeError):
    """An op a shape-only count cannot follow: a data-dependent op whose inputs are not all known (its value
    depends on the weights), or one whose result fake tensors cannot hold (`registry.REAL_ONLY`: `reason`)."""

    def __init__(self, op: str, module: str, advice: str = "", reason: str = WEIGHTS) -> None:
        self.op, self.module, self.reason = op, module, reason
        super().__init__(f"{op} in module {module or '(root)'!r} {reason}{advice}")


REAL_TENSORS = "needs real tensors (torch takes this path on real tensors only)"


@contextlib.contextmanager
def nested_fast_path_stops(model: torch.nn.Module) -> Iterator[None]:
    """In eval with a padding mask, nn.TransformerEncoder packs the real tokens into a nested tensor and runs
    on them alone, but only on real tensors: fake ones carry `__torch_function__`, so torch takes the padded
    path and a shape-only count would charge the padding's work. Stop there (NeedsData): count() counts again
    in real mode when the model has weights, and says so."""

    def stop(name: str, module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        mask = kwargs.get("src_key_padding_mask", args[2] if len(args) > 2 else None)
        if mask is not None and not module.training and getattr(module, "use_nested_tensor", False):
            raise NeedsData("the nested-tensor fast path", name, reason=REAL_TENSORS)

    handles = [
        module.register_forward_pre_hook(functools.partial(stop, name), with_kwargs=True)
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.TransformerEncoder)
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


class Values:
    """Real CPU values beside fake tensors, for the tensors that depend on the inputs only (see the module doc)."""

    def __init__(self) -> None:
        self.known: WeakTensorKeyDictionary = WeakTensorKeyDictionary()  # fake tensor → its value on the CPU
        self.answered: Counter[str] = Counter()  # op → data-dependent values it answered

    def seed(self, fake: torch.Tensor, real: torch.Tensor) -> None:
        """`real` is the value of `fake` (an input or a buffer); a copy, so the user's tensor is never written."""
        if not real.is_meta and real.numel() <= LIMIT:
            self.known[fake] = real.detach().to("cpu", copy=True)

    def follow(self, func: torch._ops.OpOverload, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        """After an op ran on fake tensors: its outputs' values if its inputs have them; stale ones dropped."""
        real = None if func.namespace in COLLECTIVES else self._real_arguments(func, args, kwargs)
        if real is None or sum(t.numel() for t in tensors_in(out)) > LIMIT:
            if not func._schema.is_mutable:
                return
            for written in written_tensors(func, args, kwargs):  # an in-place write we cannot follow: forget the value
                self.known.pop(written, None)  # type: ignore[no-untyped-call]
            return
        if func._schema.is_mutable and not all(isinstance(t, FakeTensor) for t in written_tensors(func, args, kwargs)):
            return  # never write a tensor of the user's (a real tensor the forward reached) from here
        try:
            result = _run(func, *real)
        except Exception:  # the CPU cannot run it on these values: the outputs simply have no known value
            for written in written_tensors(func, args, kwargs):
                self.known.pop(written, None)  # type: ignore[no-untyped-call]
            return
        self._pair(out, result)

    def answer(
        self, func: torch._ops.OpOverload, args: tuple[Any, ...], kwargs: dict[str, Any], op: str, module: str
    ) -> Any:
        """The result of a data-dependent op, computed on the known values; fake tensors of the real sizes."""
        real = self._real_arguments(func, args, kwargs)
        if real is None:
            raise NeedsData(op, module)
        result = _run(func, *real)
        self.answered[op] += 1
        device = next((t.device for t in tensors_in((args, kwargs))), None)

        def lift(value: Any) -> Any:
            if not isinstance(value, torch.Tensor):
                return value
            # the fake mode below ours is current here, so this is a fake tensor of the real size
            fake = torch.empty_strided(value.shape, value.stride(), dtype=value.dtype, device=device)
            self.known[fake] = value
            return fake

        return tree_map(lift, result)

    def _pair(self, fake_out: Any, real_out: Any) -> None:
        fakes, reals = tree_flatten(fake_out)[0], tree_flatten(real_out)[0]
        for fake, real in zip(fakes, reals, strict=False):
            if isinstance(fake, torch.Tensor) and isinstance(real, torch.Tensor):
                self.known[fake] = real

    def _real_arguments(
        self, func: torch._ops.OpOverload, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
        """The op's arguments with every tensor replaced by its real value; None if one has none."""
        tensors = tensors_in((args, kwargs))
        if not tensors and (torch.Tag.nondeterministic_seeded in func.tags or "empty" in func.__name__):
            return None  # a random or uninitialized factory: its values are not known
        if any(not self._known(t) for t in tensors):
            return None

        def real(x: Any) -> Any:
            if isinstance(x, torch.Tensor):
                return self.known[x] if isinstance(x, FakeTensor) else x
            if isinstance(x, torch.device) and x.type != "cpu":
                return torch.device("cpu")
            return x

        return tree_map(real, args), tree_map(real, kwargs)

    def _known(self, t: torch.Tensor) -> bool:
        if isinstance(t, FakeTensor):
            return t in self.known
        return not t.is_meta  # a real tensor the forward made (torch.tensor(...) on the CPU) is its own value

    def value_of(self, t: torch.Tensor) -> torch.Tensor | None:
        """The tensor's values: itself when it has data, its known value for a fake one, else None."""
        if isinstance(t, FakeTensor):
            value = self.known.get(t)  # type: ignore[no-untyped-call]
            return value if isinstance(value, torch.Tensor) else None
        return None if t.is_meta else t


class TensorsFromScalars(TorchFunctionMode):
    """`torch.tensor([n, m])` of 0-d tensors reads their storage directly, below the dispatcher, so a fake tensor
    there raises "data is not allocated". Hand torch their known values instead (the real run's numbers)."""

    BUILDERS = (torch.tensor, torch.as_tensor)

    def __init__(self, values: Values, where: Callable[[], str]) -> None:
        super().__init__()
        self.values, self.where = values, where

    def __torch_function__(self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if func in self.BUILDERS and args and isinstance(args[0], (list, tuple)):
            args = (tree_map(self._value, args[0]), *args[1:])
        return func(*args, **kwargs)

    def _value(self, x: Any) -> Any:
        if not isinstance(x, FakeTensor):
            return x
        if x not in self.values.known:
            raise NeedsData("torch.tensor", self.where())
        self.values.answered["torch.tensor"] += 1
        return self.values.known[x]


def _run(func: torch._ops.OpOverload, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    with _disable_current_modes():  # on real CPU tensors, outside the fake mode and ours
        return func(*args, **kwargs)


def known_value(t: torch.Tensor, values: Values | None) -> torch.Tensor | None:
    """A tensor's values: itself when it has data, else what `values` (a shape-only count's store) knows of it."""
    if values is not None:
        return values.value_of(t)
    return None if isinstance(t, FakeTensor) or t.is_meta else t
