"""The public entry points: `count(model, inputs)` and `counting()` for arbitrary code."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple, cast

import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils._python_dispatch import _disable_current_modes
from torch.utils._pytree import tree_leaves

from .core.conventions import Convention, resolve, with_attention
from .core.cost import OpCall
from .engine.dispatch import CountingMode
from .engine.higher_order import fullgraph_tolerated
from .engine.module_stack import ModuleStack
from .engine.prepare import (
    ONE_COUNT_AT_A_TIME,
    collector_paused,
    describe_inputs,
    on_meta,
    prepare,
    rng_preserved,
    running_on,
)
from .engine.restore import StateGuard
from .engine.run_state import RunState
from .formulas.pricing import cost_call
from .formulas.registry import Formula, op_name
from .report.assemble import build_report
from .report.effective import with_effective
from .report.experts import BALANCED, MoEObserver
from .report.report import Report, Shortcuts
from .shapes_only.eager_checks import eager_checks_on_known_values
from .shapes_only.mode import CpuFakeTensorMode
from .shapes_only.values import NeedsData, TensorsFromScalars, Values, nested_fast_path_stops
from .shortcuts.replay import Replicas
from .symbolic.fit import fit_symbolic
from .symbolic.trace import Trace, TraceBroken

MODES = ("real", "fake", "meta")


class StepKind(NamedTuple):
    """A step beyond one forward, registered by a package above this one (flopwise.train registers "train"):
    `run` counts it for count(step=...); `labeler(calls)` is entered inside counting(step=...) and its
    `finish(report)` returns the report with what it labelled (the phases)."""

    run: Callable[..., Report]
    labeler: Callable[[list[OpCall]], Any]


STEPS: dict[str, StepKind] = {}
# count(parallel=...): flopwise.parallel registers its planner here (a layer above this one)
PLANNERS: dict[str, Callable[..., Any]] = {}


def _step(name: str) -> StepKind:
    if name not in STEPS:
        raise ValueError(f"step must be 'forward' or one of {', '.join(STEPS)}, got {name!r}")
    return STEPS[name]


class Counting:
    """What `counting()` yields; `report` is filled in when the block ends (also when it raises)."""

    report: Report

    def __init__(self) -> None:
        self._stack: ModuleStack | None = None
        self._mode: CountingMode | None = None
        self.labeler: Any = None  # what counting(step=...) labels the calls with (train: PhaseLabels)

    @property
    def raised_in(self) -> str | None:
        """The innermost module whose forward raised, if one did."""
        return self._stack.raised_in if self._stack else None


@contextlib.contextmanager
def counting(
    convention: str | Convention = "default",
    overrides: dict[Any, Formula | None] | None = None,
    *,
    model: torch.nn.Module | None = None,
    inputs: str = "",
    step: str = "forward",
    attention: str | None = None,
    values: Values | None = None,
) -> Iterator[Counting]:
    """Count every aten op run inside the block: training steps, generate(), several models.

    Modules of `model` are named as in `model.named_modules()`; other modules met in the block are named by
    their class (`GPT2Model.h.0.attn`). `overrides` maps ops to a formula, or to None to ignore them.
    `step="train"` splits the count by phase (`report.phases`: forward, backward, optimizer, recompute).
    `attention="masked"` counts only the query–key pairs attention masks keep; "dense" (the default) all of them.
    `values` (a block run on fake tensors, as parallel plans run a rank): the real values of its fake inputs, so
    that data-dependent ops are answered and checks on values run as a real run's do.
    """
    rules = resolve(convention)
    if attention is not None:
        rules = with_attention(rules, attention)
    run = RunState(rules, {op_name(op): fn for op, fn in (overrides or {}).items()}, values=values)
    with _session(ModuleStack({model: ""} if model is not None else None), run, model, inputs, step) as session:
        yield session


@contextlib.contextmanager
def counting_on_fakes(
    model: torch.nn.Module,
    fake: FakeTensorMode,
    convention: str | Convention = "default",
    inputs: str = "",
    attention: str | None = None,
    trace: Trace | None = None,
) -> Iterator[Counting]:
    """counting() over code that runs `model` on fake tensors of `fake` (count_generate's decode steps), with the
    shortcuts of a shape-only count (replays and the memo) and the values of input-only tensors followed; with
    `trace` (whose fake mode `fake` is: sizes symbolic), each op becomes a recipe and no value is followed."""
    rules = resolve(convention)
    if attention is not None:
        rules = with_attention(rules, attention)
    stack, values = ModuleStack({model: ""}), Values()
    private = trace is not None  # keys of a run's own symbols: a memo of its own
    replicas = None if rules.masked else Replicas(model, fake, lambda: stack.current, values, rules, private)
    run = RunState(rules, {}, values=None if private else values, replicas=replicas, trace=trace)
    try:
        with _session(stack, run, model, inputs) as session:
            yield session
    finally:
        if replicas is not None:
            replicas.close()


@contextlib.contextmanager
def _session(
    stack: ModuleStack, run: RunState, model: torch.nn.Module | None, inputs: str, step: str = "forward"
) -> Iterator[Counting]:
    """The counting mode over a block, with `run` as its state: what counting() and count() share."""
    session = Counting()
    mode = CountingMode(stack, run)
    labeler = _step(step).labeler(mode.calls) if step != "forward" else None
    session._stack, session._mode, session.labeler = stack, mode, labeler
    experts = MoEObserver(run.values)
    hook = torch.nn.modules.module.register_module_forward_pre_hook(experts)
    # on fake tensors, transformers' checks of values run as an eager run's do, where the count knows the values
    checks = eager_checks_on_known_values(run.values) if run.values is not None else contextlib.nullcontext()
    try:
        with mode, fullgraph_tolerated(), labeler if labeler is not None else contextlib.nullcontext(), checks:
            yield session
    finally:
        hook.remove()
        stack.close()
        mode.memory.close()
        report = build_report(stack, mode, run.convention, model, inputs)
        report.moe.extend(experts.layers(stack.names, {n: m for m, n in stack.names.items()}))
        estimated = [layer.name for layer in report.moe if layer.estimate]
        if estimated:  # said where every view shows it (table footer, JSON), not only inside report.moe
            said = (
                f"mixture of experts ({', '.join(estimated)}): tokens per expert are an estimate under "
                f"{BALANCED}; count the model with weights (mode='real') for the routing a run takes"
            )
            report = dataclasses.replace(report, warnings=[*report.warnings, said])
        if run.replicas is not None:
            report = dataclasses.replace(report, shortcuts=Shortcuts(run.replicas.replayed, run.replicas.recalled))
        session.report = labeler.finish(report) if labeler is not None else report


def count(
    model: torch.nn.Module,
    inputs: Any = (),
    *,
    mode: str = "real",
    convention: str | Convention = "default",
    overrides: dict[Any, Formula | None] | None = None,
    step: str = "forward",
    loss_fn: Callable[[Any], torch.Tensor] | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    symbolic: dict[str, Any] | None = None,
    attention: str | None = None,
    shortcuts: bool = True,
    parallel: dict[str, int] | str | None = None,
    parallelize_fn: Callable[..., Any] | None = None,
) -> Report:
    """Count the MACs, FLOPs, parameters and bytes of one forward of `model` on `inputs`.

    `inputs` is a tensor, a tuple of positional arguments, or a dict of keyword arguments. `mode="real"`
    runs the model as given; `"fake"` runs on fake tensors (shapes only, no arithmetic, weights untouched);
    `"meta"` counts what a CPU run would, with no data (fake CPU tensors); a model with any tensor on the meta
    device is always counted so. A value that depends on the data (`.item()`, `nonzero`) is computed from the
    real inputs in the shape-only modes, or the model runs for real when it has weights (`report.warnings`).
    A TorchScript module (traced or scripted) runs as it is; asked for "meta", it is counted on fake tensors.
    `attention`: "dense" (the guides: every query–key pair; the default) or "masked" (the pairs the masks keep:
    causal, sliding window, padding, a FlexAttention BlockMask at its block granularity).
    The model, its state and torch's RNG are left exactly as found: parameters and buffers written in place are
    restored, attributes that forward set are put back, and `report.warnings` says what could not be.

    `step="train"` counts a training step instead: forward, `loss_fn(output)` (default: `output.loss`, else the
    sum of the output), backward, and `optimizer.step()` on copies, split by phase (see flopwise.train).

    `symbolic={"batch": ("input_ids", 0), "seq": ("input_ids", 1)}` names input sizes; the result is then a
    `SymbolicReport` with exact polynomials in them: `report.formula("macs")`, `report.at(batch=8, seq=4096)`.

    `shortcuts=False` counts every op call afresh (the plain path); by default a shape-only count makes an op call
    met before from its record (`report.shortcuts` says how many), which never changes a figure.

    `parallel={"dp": 16, "pp": 8, "tp": 8}` (with `parallelize_fn(model, mesh)` for a plan of your own) counts what
    each rank runs under that plan instead, on torch's fake process group: a `ParallelPlan` (flopwise.parallel).
    """
    if parallel is not None:
        options = dict(
            mode=mode,
            convention=convention,
            overrides=overrides,
            step=step,
            loss_fn=loss_fn,
            optimizer=optimizer,
            symbolic=symbolic,
            attention=attention,
            shortcuts=shortcuts,
        )
        planned = PLANNERS["parallel"](model, inputs, parallel, parallelize_fn, **options)
        return cast(Report, planned)  # a ParallelPlan (flopwise.parallel): typed as the Report most callers get
    if symbolic is not None:  # one run with symbolic sizes, else several plain counts; fitted and checked

        def count_at(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Report:
            return count(
                model,
                kwargs or args,
                mode=mode,  # inputs are all positional or all keyword
                convention=convention,
                overrides=overrides,
                attention=attention,
                shortcuts=shortcuts,
            )

        real = mode == "real" and not on_meta(model)  # traced on fake CPU tensors, checked against the real count

        def traced(args: tuple[Any, ...], kwargs: dict[str, Any], trace: Trace) -> Report:  # symbolic sizes
            shape_mode = "meta" if on_meta(model) or real else mode
            return _count(model, args, kwargs, shape_mode, convention, overrides, attention, shortcuts, trace=trace)

        from .symbolic.region import config_limits  # a fit by counting is checked past the config's limits

        script = isinstance(model, torch.jit.ScriptModule)
        return fit_symbolic(
            count_at,
            symbolic,
            *split_inputs(inputs),
            None if script else traced,
            check_trace=real,
            limits=config_limits(model),
        )
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"count() expects an nn.Module as its first argument, got {type(model).__name__}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if step != "forward":
        return _step(step).run(
            model, inputs, mode=mode, convention=convention, overrides=overrides, loss_fn=loss_fn, optimizer=optimizer
        )
    if loss_fn is not None or optimizer is not None:
        raise ValueError("count(): loss_fn and optimizer belong to a training step; pass step='train' with them")
    args, kwargs = split_inputs(inputs)
    if on_meta(model):
        mode = "meta"
    try:
        try:
            return _count(model, args, kwargs, mode, convention, overrides, attention, shortcuts)
        except _ReadsStorage:  # torch.tensor([0-d fake tensors]): again, handing torch the real values
            return _count(model, args, kwargs, mode, convention, overrides, attention, shortcuts, scalars=True)
    except NeedsData as error:  # a value that depends on the weights, in a shape-only mode
        if on_meta(model):
            raise NeedsData(error.op, error.module, _no_weights(model), error.reason) from None
        if any(isinstance(t, torch.Tensor) and t.is_meta for t in tree_leaves((args, kwargs))):
            meta_inputs = "; the inputs are on the meta device: pass real inputs"
            raise NeedsData(error.op, error.module, meta_inputs, error.reason) from None
        needed = f"{error.op} in module {error.module or '(root)'!r}, which {error.reason}"
    report = _count(model, args, kwargs, "real", convention, overrides, attention, shortcuts)
    said = (
        f"mode={mode!r} met {needed}: counting again in real mode with the model's weights, so data-dependent "
        "paths follow them"
    )
    return dataclasses.replace(report, warnings=[said, *report.warnings])


def _no_weights(model: torch.nn.Module) -> str:
    """What to do instead; the command line's rebuild from a config is offered for transformers models only."""
    advice = "; a model on the meta device has none: count a model with weights (mode='real')"
    if any(cls.__module__.startswith("transformers.") for cls in type(model).__mro__):
        advice += (
            ", or, from the command line, `flopwise hf:config.json` rebuilds small models with random weights "
            "and counts them for real"
        )
    return advice


class _ReadsStorage(RuntimeError):
    """The forward read a fake tensor's storage below the dispatcher (`torch.tensor([n, m])` of 0-d tensors)."""


UNALLOCATED = "its data is not allocated yet"  # what torch says when C++ reads a fake tensor's storage
SWAP, FAKE_SWAP = "_apply(): Couldn't swap", "needs real parameters (torch cannot swap fake ones)"


def _count(
    model: torch.nn.Module,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    mode: str,
    convention: str | Convention,
    overrides: dict[Any, Formula | None] | None,
    attention: str | None = None,
    shortcuts: bool = True,
    scalars: bool = False,
    trace: Trace | None = None,
) -> Report:
    """One count, one at a time in this process (a shape-only count swaps the model's parameters for fake ones, a
    real one puts back what forward wrote: another thread must not see either). `scalars`: answer torch.tensor([…])
    of fake tensors from the known values (a torch function mode, only when needed: any such mode makes torch skip
    its fused fast paths, which fake tensors otherwise take)."""
    with ONE_COUNT_AT_A_TIME:
        return _count_alone(model, args, kwargs, mode, convention, overrides, attention, shortcuts, scalars, trace)


def _count_alone(
    model: torch.nn.Module,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    mode: str,
    convention: str | Convention,
    overrides: dict[Any, Formula | None] | None,
    attention: str | None,
    shortcuts: bool,
    scalars: bool,
    trace: Trace | None,
) -> Report:
    notes: list[str] = []
    script = isinstance(model, torch.jit.ScriptModule)  # its parameters cannot be swapped: it runs as found
    if script and mode == "meta" and not on_meta(model):
        mode = "fake"
        notes.append("a TorchScript module cannot move to the meta device: counted on fake tensors instead")
    shapes_only = mode == "fake" or (mode == "meta" and not script)  # meta: fake tensors on the CPU (prepare.py)
    fake = (
        CpuFakeTensorMode(allow_non_fake_inputs=True)
        if shapes_only and trace is None
        else trace.fake
        if trace is not None
        else None
    )
    values = Values() if fake is not None else None
    described = describe_inputs(args, kwargs)
    if trace is not None:  # symbolic sizes: no input values to follow (a value that needs them breaks the trace)
        args, kwargs = trace.inputs(args, kwargs)
    with trace.bookkeeping() if trace is not None else contextlib.nullcontext(), collector_paused(shapes_only):
        state, args, kwargs = prepare(model, args, kwargs, mode, fake, script, values if trace is None else None)
    guard = StateGuard(model, tensors=state is None)  # the model runs on its own tensors
    rules = resolve(convention)
    if attention is not None:
        rules = with_attention(rules, attention)
    if trace is not None:
        if rules.masked:  # attention="masked" follows mask values: no symbolic sizes
            raise TraceBroken("attention='masked' counts the pairs mask values keep")
        trace.cost = functools.partial(cost_call, rules)
    stack = ModuleStack({model: ""})
    named = {op_name(op): fn for op, fn in (overrides or {}).items()}
    # replays and the memo: shape-only counts with shortcuts, not under attention="masked" (mask values count)
    replicas = (
        Replicas(model, fake, lambda: stack.current, values, rules, bool(named))
        if shortcuts and fake is not None and values is not None and state is not None and not rules.masked
        else None
    )
    run = RunState(rules, named, guard if guard.watching else None, values, replicas, trace, tuple(notes))
    with rng_preserved(), torch.no_grad(), fake or contextlib.nullcontext(), collector_paused(shapes_only):
        with _session(stack, run, model, described) as session:
            modules = stack
            shape_only = contextlib.ExitStack()  # what only fake tensors need: the nested path, torch.tensor([…])
            if values is not None:
                shape_only.enter_context(nested_fast_path_stops(model))
            if values is not None and scalars:
                shape_only.enter_context(TensorsFromScalars(values, lambda: modules.current))
            try:
                with shape_only:
                    with running_on(model, state) if state is not None else contextlib.nullcontext():
                        model(*args, **kwargs)
            except NeedsData:
                raise
            except Exception as error:
                where = session.raised_in or ""
                if values is not None and not scalars and UNALLOCATED in str(error):
                    raise _ReadsStorage() from error
                if values is not None and SWAP in str(error):  # Module.to() in forward: torch swaps parameters
                    raise NeedsData("Module.to() in forward", where, reason=FAKE_SWAP) from error
                kind = stack.types.get(where, "")
                error.add_note(
                    f"flopwise: raised in module {where or '(root)'!r} ({kind}) "
                    f"with inputs {describe_inputs(args, kwargs)}"
                )
                if mode == "fake":
                    error.add_note("flopwise: the model may need real data; try mode='real'")
                raise
            finally:
                if replicas is not None:
                    replicas.close()
                with _disable_current_modes():  # restoring is not part of the count
                    session._mode.warnings += guard.restore()  # type: ignore[union-attr]
    report = session.report
    if values is not None and values.answered:
        answered = ", ".join(f"{op} ×{n}" for op, n in values.answered.items())
        said = (
            f"{mode} mode: data-dependent values ({answered}) were computed from the real inputs, as a real run gives"
        )
        report = dataclasses.replace(report, warnings=[*report.warnings, said])
    return with_effective(report, model)


def split_inputs(inputs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """What `inputs` means as a call, everywhere in flopwise: a dict is keyword arguments, a plain tuple or list
    is positional arguments, anything else (a tensor, a PackedSequence or other namedtuple) is one argument."""
    if isinstance(inputs, dict):
        return (), dict(inputs)
    if type(inputs) in (tuple, list):  # a namedtuple such as PackedSequence is one argument, not several
        return tuple(inputs), {}
    return (inputs,), {}
