"""One rank's program counted: the model copied without data, cut to its pipeline stage, parallelized on the fake
process group, made of fake CPU tensors, and run on the rank's inputs under the counting modes.

The count is of what the rank's dispatcher runs (`LocalShards`): local shards' kernels, the collectives of DTensor
and FSDP2. Memory is read from the rank's own tensors after the run: weights are the parameters' local storages
(FSDP2's padded shards included), gradients the local gradients backward left (a train step), optimizer state
the tensors an optimizer built from `optimizer=` holds after its step. What is not measured is estimated and
said so in `notes`: without a train step, gradients as large as the trainable weights; without an optimizer,
AdamW's two moments per trainable weight in its dtype (torch.optim keeps them so).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.distributed.device_mesh import DeviceMesh
from torch.distributed.tensor import DTensor, Shard
from torch.utils._pytree import tree_leaves, tree_map

from ..core.conventions import Convention
from ..counter import counting
from ..formulas.registry import Formula
from ..report.report import Report
from ..shapes_only.mode import CpuFakeTensorMode
from ..shapes_only.values import Values
from ..train.step import default_loss
from . import accumulate, context, stages
from .layout import FSDP_DIMS, Layout, slice_batch
from .local import CollectiveCall, LocalShards
from .styles import default_parallelize
from .world import fake_world, group_dims, meta_copy

Parallelize = Callable[[nn.Module, DeviceMesh], Any]


@dataclass(frozen=True)
class Options:
    step: str = "forward"  # "forward" or "train"
    convention: str | Convention = "default"
    attention: str | None = None
    loss_fn: Callable[[Any], torch.Tensor] | None = None
    optimizer: Callable[[Any], torch.optim.Optimizer] | None = None
    parallelize_fn: Parallelize | None = None
    microbatches: int = 1
    schedule: str = "Schedule1F1B"
    mixed_precision: str | None = None
    overrides: dict[Any, Formula | None] | None = None


@dataclass
class RankRun:
    """What one rank's program did: its count (one micro-batch when pipelined) and its memory."""

    report: Report
    collectives: list[CollectiveCall]
    params: int  # local parameter elements
    weight_bytes: int
    gradient_bytes: int
    optimizer_bytes: int
    activation_bytes: int  # peak of the tensors the program made (one micro-batch)
    saved_bytes: int  # of them, those autograd saved for backward (one micro-batch; a train step)
    uneven_dims: set[str]  # mesh dimensions along which this rank's shards differ from another's
    stage: stages.StageCut | None = None
    output: tuple[tuple[int, ...], torch.dtype] | None = None  # what a stage sends on, per micro-batch
    received: tuple[tuple[int, ...], torch.dtype] | None = None  # what it gets from the stage before
    order: dict[int, list[str]] | None = None  # the schedule's actions per pp rank
    phases: list[str] = field(default_factory=list)  # each call's phase (a train step), aligned with report.calls
    accumulation: Report | None = None  # one later micro-batch's gradient accumulation (accumulate.py)
    notes: list[str] = field(default_factory=list)


def local(t: torch.Tensor) -> torch.Tensor:
    return t._local_tensor if isinstance(t, DTensor) else t


def storage_bytes(tensors: Sequence[torch.Tensor]) -> int:
    """Bytes of the distinct storages under `tensors` (local shards; FSDP2's padding included)."""
    seen: dict[int, int] = {}
    for t in tensors:
        t = local(t)
        storage = t.untyped_storage()
        seen.setdefault(storage._cdata, storage.nbytes())
    return sum(seen.values())


def uneven_dims(model: nn.Module, mesh: DeviceMesh) -> set[str]:
    """Mesh dimensions along which a parameter splits unevenly, so ranks' local shapes differ (FSDP2's shards,
    padded to equal sizes, excepted)."""
    from torch.distributed.fsdp import FSDPModule

    fsdp = {id(p) for m in model.modules() if isinstance(m, FSDPModule) for p in m.parameters(recurse=False)}
    out: set[str] = set()
    for p in model.parameters():
        if not isinstance(p, DTensor):
            continue
        names = p.device_mesh.mesh_dim_names or ()
        for i, placement in enumerate(p.placements):
            if isinstance(placement, Shard) and p.shape[placement.dim] % p.device_mesh.size(i):
                if not (id(p) in fsdp and names[i] in FSDP_DIMS):
                    out.add(names[i])
    return out


def _fake_inputs(fake: CpuFakeTensorMode, tree: Any, values: Values) -> Any:
    """The inputs as fake tensors, each real one's values kept beside it (token ids, masks, positions)."""

    def made(x: Any) -> Any:
        if not isinstance(x, torch.Tensor):
            return x
        out = fake.from_tensor(x)
        values.seed(out, x)
        return out

    return tree_map(made, tree)


def run_rank(
    model: nn.Module,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    layout: Layout,
    rank: int,
    options: Options,
    received: tuple[tuple[int, ...], torch.dtype] | None = None,
) -> RankRun:
    """Count rank `rank`'s program; `received`: the shape and dtype a pipeline stage gets from the one before."""
    coords = layout.coords(rank)
    train = options.step == "train"
    with fake_world(layout, rank) as mesh:
        module = meta_copy(model)
        stage = stages.cut(module, coords["pp"], layout.sizes["pp"]) if layout.sizes["pp"] > 1 else None
        notes: list[str] = []
        if options.parallelize_fn is not None:
            options.parallelize_fn(module, mesh)
        else:
            notes += default_parallelize(
                module, mesh, pipelined=stage is not None, mixed_precision=options.mixed_precision
            )
        uneven = uneven_dims(module, mesh)
        fake = CpuFakeTensorMode(allow_non_fake_inputs=True)
        with fake:
            module.to_empty(device="cpu")
        order = None
        if stage is not None and coords["pp"] == 0 and (options.microbatches > 1 or stage.count > 1):
            order = stages.pipeline_order(module, stage, options.microbatches, options.schedule, mesh.get_group("pp"))
        # the rank's inputs: its data-parallel slice of the global batch, then one micro-batch of it
        a, k = (
            slice_batch(args, kwargs, layout.sizes["dp"], coords["dp"], "data-parallel ranks")
            if layout.sizes["dp"] > 1
            else (args, kwargs)
        )
        if layout.sizes["cp"] > 1:  # then its chunk of each sample's sequence
            a, k = context.slice_sequence(module, a, k, layout.sizes["cp"], coords["cp"])
            notes.append(context.NOTE)
        if options.microbatches > 1:
            a, k = slice_batch(a, k, options.microbatches, 0, "micro-batches")
        values = Values()  # the inputs' real values: a real run's checks on them (a mask all ones) run alike
        a, k = _fake_inputs(fake, (a, k), values)
        hidden = None
        if stage is not None:
            if not stage.first:
                if received is None:
                    raise RuntimeError("pp: a later stage was counted before the stage that feeds it")
                with fake:
                    hidden = torch.empty(received[0], dtype=received[1], requires_grad=train)
            a, k = stages.stage_inputs(stage, a, k, hidden)
        # weights as the rank keeps them between steps (FSDP2 registers its gathered parameters during a step)
        params = list({id(p): p for p in module.parameters()}.values())
        trainable = [p for p in params if p.requires_grad]
        weight, local_params, trainable_bytes = (
            storage_bytes(params),
            sum(local(p).numel() for p in params),
            storage_bytes(trainable),
        )
        optimizer = _optimizer(module, options, fake) if train and options.optimizer is not None else None
        saved: dict[int, int] = {}
        output_meta = None
        # the mesh's process groups, before the count: slicing a mesh of two or more dimensions looks up this
        # rank's coordinates in it (torch's DeviceMesh runs ops for that), no part of the rank's program
        groups = group_dims(mesh)
        cp_group = mesh["cp"].get_group().group_name if layout.sizes["cp"] > 1 else None
        accumulated: list[torch.Tensor] = []  # what later micro-batches' backward adds gradients into
        with contextlib.ExitStack() as scope:
            scope.enter_context(warnings.catch_warnings())
            # FSDP2 warns when a module returns a view (a stage's hidden states through a pass-through head)
            warnings.filterwarnings("ignore", message="FSDP2-wrapped module .* returned a view tensor")
            scope.enter_context(fake)
            scope.enter_context(torch.enable_grad() if train else torch.no_grad())
            session = scope.enter_context(
                counting(
                    options.convention,
                    options.overrides,
                    model=module,
                    step=options.step,
                    attention=options.attention,
                    values=values,
                )
            )
            localized = scope.enter_context(LocalShards(groups))
            scope.enter_context(_loss_parallel(module))
            if cp_group is not None:
                scope.enter_context(context.gathered_attention(cp_group, layout.sizes["cp"], coords["cp"]))
            if train:
                scope.enter_context(torch.autograd.graph.saved_tensors_hooks(_saver(saved), lambda t: t))
            output = module(*a, **k)
            _wait(output)
            if train:  # saved for backward: activations, not the weights (FSDP2's gathered ones too) or inputs
                for t in [*module.parameters(), *module.buffers(), *tree_leaves((a, k))]:
                    if isinstance(t, torch.Tensor):
                        saved.pop(local(t).untyped_storage()._cdata, None)
            sent = stages.stage_output(stage, output) if stage is not None and not stage.last else None
            if sent is not None:
                output_meta = (tuple(local(sent).shape), sent.dtype)
            if train:
                with session.labeler.seed():
                    root = sent if sent is not None else (options.loss_fn or default_loss)(output)
                    if options.microbatches > 1:
                        accumulated = accumulate.leaves(root, tree_leaves((a, k)))
                    root.backward(torch.empty_like(sent) if sent is not None else None)  # type: ignore[no-untyped-call]
                if optimizer is not None:
                    optimizer.step()
        report = session.report
        accumulation = (
            accumulate.count(
                accumulated,
                fake,
                groups,
                convention=options.convention,
                overrides=options.overrides,
                model=module,
                attention=options.attention,
            )
            if accumulated
            else None
        )
        notes += report.warnings  # what the count had to assume (an MoE's routing on fake tensors, …)
        if train:
            gradient = storage_bytes([p.grad for p in module.parameters() if p.grad is not None])
        else:
            gradient = trainable_bytes
            notes.append("gradients: not measured (no train step), taken as large as the trainable weights")
        if optimizer is not None:
            optimizer_bytes = storage_bytes(
                [
                    t
                    for s in optimizer.state.values()
                    for t in tree_leaves(s)
                    if isinstance(t, torch.Tensor) and t.dim() > 0
                ]
            )
        else:
            optimizer_bytes = 2 * trainable_bytes
            notes.append(
                "optimizer state: not measured (no optimizer= given), taken as AdamW's two moments per "
                "trainable weight, in its dtype"
            )
        return RankRun(
            report=report,
            collectives=localized.collectives,
            params=local_params,
            weight_bytes=weight,
            gradient_bytes=gradient,
            optimizer_bytes=optimizer_bytes,
            activation_bytes=report.peak_activation_bytes or 0,
            saved_bytes=sum(saved.values()),
            uneven_dims=uneven,
            stage=stage,
            output=output_meta,
            received=received,
            order=order,
            phases=list(session.labeler.labels) if train else [],
            accumulation=accumulation,
            notes=notes,
        )


def _wait(output: Any) -> None:
    """Wait on the collectives whose results the program returns (a real program waits before reading them)."""
    from torch.distributed._functional_collectives import AsyncCollectiveTensor

    for leaf in tree_leaves(output):
        if isinstance(leaf, AsyncCollectiveTensor):
            leaf.wait()


def _saver(saved: dict[int, int]) -> Callable[[torch.Tensor], torch.Tensor]:
    """A pack hook that notes the storage of each tensor autograd saves (once each)."""

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = local(t).untyped_storage()
        saved.setdefault(storage._cdata, storage.nbytes())
        return t

    return pack


def _loss_parallel(module: nn.Module) -> contextlib.AbstractContextManager[None]:
    """torch's `loss_parallel()` when the LM head's logits stay split over the vocabulary (styles.py)."""
    from torch.distributed.tensor.parallel import loss_parallel

    for m in module.modules():
        for p in m.parameters(recurse=False):
            if isinstance(p, DTensor) and "tp" in (p.device_mesh.mesh_dim_names or ()):
                return loss_parallel()
    return contextlib.nullcontext()


def _optimizer(module: nn.Module, options: Options, fake: CpuFakeTensorMode) -> torch.optim.Optimizer:
    """The optimizer over the rank's parameters, in its steady state: one uncounted step on zero gradients first
    (AdamW makes its moments then), so the counted step is what a training run repeats."""
    assert options.optimizer is not None
    trained = [p for p in module.parameters() if p.requires_grad]
    with fake:
        optimizer = options.optimizer(trained)
        for p in trained:
            p.grad = torch.zeros_like(p)
        optimizer.step()
        for p in trained:
            p.grad = None
    return optimizer
