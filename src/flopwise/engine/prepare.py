"""What a count runs the model with: its own tensors in real mode, fake ones in the shape-only modes.

Meta mode runs on fake tensors placed on the CPU, not on the meta device: aten picks kernels by device (on meta,
SDPA takes its math path and fast paths such as nn.MultiheadAttention's are skipped), and the count must be the
one a real CPU run gives. No data is allocated in either shape-only mode.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator
from typing import Any

import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils._pytree import tree_map

from ..formulas.registry import nested_sizes
from ..shapes_only.tensors import fake_empty
from ..shapes_only.values import NeedsData, Values

# One count at a time in a process: a shape-only count swaps the model's parameters for fake ones (running_on), a
# real one writes and puts back its state; a count in another thread must see neither. Re-entrant: a count may
# count again (mode="fake" falling back to real).
ONE_COUNT_AT_A_TIME = threading.RLock()
TARGET_DEVICE = "cpu"  # the device whose kernels meta mode counts (the one this library runs on)
_NO_FAKE_JAGGED = "cannot be made a fake tensor here (its jagged sizes need symbolic shapes)"
_NO_FAKE_QUANTIZED = "cannot be made a fake or meta tensor (torch has no quantized ones)"


def on_meta(model: torch.nn.Module) -> bool:
    """Whether any parameter or buffer is on the meta device: then the model cannot run for real."""
    return any(t.is_meta for t in (*model.parameters(), *model.buffers()))


def prepare(
    model: torch.nn.Module,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    mode: str,
    fake: FakeTensorMode | None,
    script: bool = False,
    values: Values | None = None,
) -> tuple[dict[str, torch.Tensor] | None, tuple[Any, ...], dict[str, Any]]:
    """The parameters and buffers the model runs with (None: its own, watched by a `StateGuard`), and the inputs
    as the count's mode needs them. A TorchScript module (`script`) always runs its own parameters."""
    if mode == "real":
        return None, args, kwargs
    # every parameter, then every buffer, under each name it has (a shared module: several), in one walk
    params: dict[str, torch.Tensor] = {}
    buffers: dict[str, torch.Tensor] = {}
    for prefix, module in model.named_modules(remove_duplicate=False):
        dot = f"{prefix}." if prefix else ""
        params.update((dot + name, t) for name, t in module._parameters.items() if t is not None)
        buffers.update((dot + name, t) for name, t in module._buffers.items() if t is not None)
    converted: dict[int, torch.Tensor] = {}  # tied parameters stay tied
    # in fake mode a meta input (shapes only, never allocated) becomes a fake tensor beside the weights
    home = next((t.device for t in (*params.values(), *buffers.values()) if not t.is_meta), torch.device("cpu"))
    target = torch.device(TARGET_DEVICE)

    def convert(t: torch.Tensor) -> torch.Tensor:
        known = converted.get(id(t))
        if known is not None:
            return known
        if t.is_quantized:  # count() counts such a model in real mode instead
            raise NeedsData("a quantized input, parameter or buffer", "", reason=_NO_FAKE_QUANTIZED)
        if fake is not None:  # allocating a fake tensor is far cheaper than fake.from_tensor
            device = target if mode == "meta" else home if t.is_meta else t.device
            if t.layout == torch.jagged:  # count() then counts in real mode when the model has weights
                raise NeedsData("a jagged nested tensor input", "", reason=_NO_FAKE_JAGGED)
            if t.layout == torch.strided:
                new = fake_empty(fake, t.shape, t.stride(), t.dtype, device)
            else:
                with fake:
                    new = torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device=device)
            if values is not None and not isinstance(t, torch.nn.Parameter):  # weights never keep values
                values.seed(new, t)
        else:  # a TorchScript module built on meta runs there
            new = t if t.is_meta else torch.empty_like(t, device="meta")
        if t.requires_grad and new.is_leaf:
            new.requires_grad_(True)
        converted[id(t)] = new
        return new

    state = None if script else {name: convert(t) for name, t in {**params, **buffers}.items()}
    args, kwargs = tree_map(lambda x: convert(x) if isinstance(x, torch.Tensor) else x, (args, kwargs))
    return state, args, kwargs


@contextlib.contextmanager
def running_on(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> Iterator[None]:
    """The model's parameters and buffers replaced by `state`'s (as `prepare` names them) inside the block and put
    back after it, raised or not: what torch.func.functional_call does, without its slower per-name accessor."""
    owners = dict(model.named_modules(remove_duplicate=False))
    swapped: list[tuple[dict[str, Any], str, Any]] = []
    ONE_COUNT_AT_A_TIME.acquire()
    try:
        for name, tensor in state.items():
            owner_name, _, attribute = name.rpartition(".")
            owner = owners[owner_name]
            table = owner._parameters if attribute in owner._parameters else owner._buffers
            swapped.append((table, attribute, table[attribute]))
            table[attribute] = tensor
        yield
    finally:
        for table, attribute, original in reversed(swapped):  # a shared module's first original is put back last
            table[attribute] = original
        ONE_COUNT_AT_A_TIME.release()


@contextlib.contextmanager
def rng_preserved() -> Iterator[None]:
    cpu = torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


@contextlib.contextmanager
def collector_paused(paused: bool = True) -> Iterator[None]:
    """Python's cyclic garbage collector held off while `paused` (and restored as found): the many short-lived
    objects of a shape-only count start full collections that walk a large model's every object for almost no
    garbage (reference counting frees it). What cycles it leaves are collected after the count."""
    enabled = gc.isenabled()
    if paused:
        gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


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
