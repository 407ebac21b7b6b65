"""`measure(model, inputs)`: run a model for real, time it three ways, and join the times to its count.

1. Plain runs (warm-up, then `repeats` timed runs): the step's latency, its median and spread.
2. Runs with global module hooks: each module's inclusive time (CUDA events on GPU).
3. Profiled runs: each aten op's time, attributed to the module it ran in (see optimes.py).

The model is left as found: buffers (BatchNorm statistics), gradients, training flags and torch's RNG
state are restored; a model on another device than `device` is measured on a copy.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.utils._pytree import tree_leaves, tree_map

from ..counter import count, counting, split_inputs
from ..engine.prepare import describe_inputs
from ..report.report import Report
from .calibrate import calibrate
from .optimes import profile_ops
from .result import Measurement
from .roofline import device_name, resolve_peaks
from .timing import time_modules, time_runs

STEPS = ("forward", "train")


def measure(
    model: torch.nn.Module,
    inputs: Any = (),
    *,
    device: str | None = None,
    peak_tflops: float | None = None,
    peak_gbs: float | None = None,
    repeats: int = 10,
    warmup: int = 3,
    profile_repeats: int = 3,
    step: str = "forward",
    loss_fn: Callable[[Any], torch.Tensor] | None = None,
    recalibrate: bool = False,
) -> Measurement:
    """Time `model` on `inputs` and join the times to its exact count.

    `device`: where to run ("cpu", "cuda", "cuda:1"); default: where the model's parameters are.
    `peak_tflops` / `peak_gbs`: the device's peak FLOP/s (in TFLOP/s) and bandwidth (GB/s) when the device
    table does not know it; unknown peaks are reported as unknown, never guessed. `step="train"` times a
    forward and backward (of `loss_fn(output)`, default the sum of the outputs) instead of a forward.
    A CPU's peaks are calibrated once per machine and cached (see calibrate.py); `recalibrate=True` measures
    them again.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"measure() expects an nn.Module as its first argument, got {type(model).__name__}")
    if step not in STEPS:
        raise ValueError(f"step must be one of {', '.join(STEPS)}, got {step!r}")
    if repeats < 1 or profile_repeats < 1 or warmup < 0:
        raise ValueError(
            f"repeats and profile_repeats must be ≥ 1 and warmup ≥ 0; got {repeats}, {profile_repeats}, {warmup}"
        )
    target = _device(model, device)
    if target.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"measure(device={device!r}): CUDA is not available here; use device='cpu'")
    if _model_device(model) != target:
        model = copy.deepcopy(model).to(target)  # the user's model stays where it is
    args, kwargs = split_inputs(inputs)
    args, kwargs = tree_map(lambda x: x.to(target) if isinstance(x, torch.Tensor) else x, (args, kwargs))
    dtype = _dtype(model, args, kwargs)

    with _preserved(model):
        run = _step(model, args, kwargs, step, loss_fn)
        forward = count(model, kwargs or args)  # inputs are positional or keyword, never both
        report = forward if step == "forward" else _count_step(run, model, args, kwargs)
        total = time_runs(run, target, warmup, repeats)
        module_times, hooked = time_modules(run, model, target, repeats)
        counted = {(call.module, call.op) for call in report.calls if call.cost.flops or call.cost.bytes}
        op_times = profile_ops(run, model, target, counted, profile_repeats)
        peaks = resolve_peaks(
            device_name(target),
            target.type,
            dtype,
            peak_tflops=peak_tflops,
            peak_gbs=peak_gbs,
            calibrate=lambda: calibrate(target, dtype, recalibrate=recalibrate),
        )
    return Measurement(
        report,
        step,
        str(target),
        str(dtype).removeprefix("torch."),
        peaks,
        total,
        hooked,
        module_times,
        op_times,
        forward,
    )


def _model_device(model: torch.nn.Module) -> torch.device:
    for tensor in list(model.parameters()) + list(model.buffers()):
        return tensor.device
    return torch.device("cpu")


def _device(model: torch.nn.Module, device: str | None) -> torch.device:
    target = torch.device(device) if device is not None else _model_device(model)
    if target.type == "cuda" and target.index is None and torch.cuda.is_available():
        target = torch.device("cuda", torch.cuda.current_device())
    if target.type == "meta":
        raise ValueError(
            "measure() needs real tensors to time; the model is on the meta device. "
            "Use flopwise.count(..., mode='meta') for counts, or build the model on a real device"
        )
    return target


def _dtype(model: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.dtype:
    """The floating dtype most parameters are in; else the inputs'; else float32."""
    sizes: dict[torch.dtype, int] = {}
    for p in model.parameters():
        if p.is_floating_point():
            sizes[p.dtype] = sizes.get(p.dtype, 0) + p.numel()
    if not sizes:
        for t in tree_leaves((args, kwargs)):
            if isinstance(t, torch.Tensor) and t.is_floating_point():
                sizes[t.dtype] = sizes.get(t.dtype, 0) + t.numel()
    return max(sizes, key=lambda d: sizes[d]) if sizes else torch.float32


def _step(
    model: torch.nn.Module,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    step: str,
    loss_fn: Callable[[Any], torch.Tensor] | None,
) -> Callable[[], Any]:
    if step == "forward":

        def forward() -> Any:
            with torch.no_grad():
                return model(*args, **kwargs)

        return forward

    def train() -> None:
        for p in model.parameters():
            p.grad = None  # each step computes fresh gradients, as after optimizer.zero_grad(set_to_none=True)
        out = model(*args, **kwargs)
        loss = loss_fn(out) if loss_fn is not None else _sum_outputs(out)
        loss.backward()  # type: ignore[no-untyped-call]

    return train


def _sum_outputs(out: Any) -> torch.Tensor:
    tensors = [t for t in tree_leaves(out) if isinstance(t, torch.Tensor) and t.requires_grad]
    if not tensors:
        raise ValueError(
            "step='train' needs an output that requires grad; the model returned none "
            "(are all parameters frozen?). Pass loss_fn=... to say what to differentiate"
        )
    return sum((t.float().sum() for t in tensors), torch.zeros((), device=tensors[0].device))


def _count_step(
    run: Callable[[], Any], model: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Report:
    with counting(model=model, inputs=describe_inputs(args, kwargs)) as session:
        run()
    return session.report


@contextlib.contextmanager
def _preserved(model: torch.nn.Module) -> Iterator[None]:
    """Restore buffers, gradients, training flags and RNG state after running the model for real."""
    buffers = {name: b.detach().clone() for name, b in model.named_buffers()}
    grads = {p: p.grad for p in model.parameters()}
    flags = {m: m.training for m in model.modules()}
    cpu_rng = torch.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        with torch.no_grad():
            for name, b in model.named_buffers():
                if name in buffers:
                    b.copy_(buffers[name])
        for p, grad in grads.items():
            p.grad = grad
        for m, flag in flags.items():
            m.training = flag
        torch.set_rng_state(cpu_rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)
