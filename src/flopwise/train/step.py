"""`count(model, inputs, step="train")`: one training step counted, split by phase, on copies.

The step is forward, `loss_fn(output)`, `loss.backward()` and `optimizer.step()`. It runs on stand-ins for the
parameters (aliases, or clones where the optimizer writes them) and on a copy of the optimizer with a copy of its
state, so the model, its gradients and the optimizer are left exactly as found.

Frozen parameters: backward computes no gradient for them, and none for anything only they need (the input
gradient of a frozen first layer). `report.frozen_savings` is what that saved: the same step counted once more
with every floating-point parameter trainable, minus the step as it is (backward and recompute only; the
forward does not change and the optimizer of the counterfactual step is not run).
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch
from torch.utils._pytree import tree_leaves, tree_map

from ..core.conventions import Convention
from ..core.cost import Cost
from ..counter import counting, split_inputs
from ..engine.prepare import describe_inputs, on_meta, prepare, rng_preserved, running_on
from ..formulas.registry import Formula
from ..report.report import Report
from ..shapes_only.mode import CpuFakeTensorMode
from .formulas import transformer_sizes

LossFn = Callable[[Any], torch.Tensor]


def default_loss(output: Any) -> torch.Tensor:
    """`output.loss` when the model computed one (transformers with labels), else the sum of its first tensor."""
    loss = getattr(output, "loss", None)
    if isinstance(loss, torch.Tensor):
        return loss
    tensors = [t for t in tree_leaves(output) if isinstance(t, torch.Tensor) and t.is_floating_point()]
    if not tensors:
        raise ValueError(
            f"step='train': the model returned {type(output).__name__} with no floating-point tensor to take a "
            "loss of; pass loss_fn=lambda output: ... returning a scalar tensor"
        )
    return tensors[0].sum()


def count_train_step(
    model: torch.nn.Module,
    inputs: Any = (),
    *,
    mode: str = "real",
    convention: str | Convention = "default",
    overrides: dict[Any, Formula | None] | None = None,
    loss_fn: LossFn | None = None,
    optimizer: torch.optim.Optimizer | None = None,
) -> Report:
    args, kwargs = split_inputs(inputs)
    if on_meta(model):
        mode = "meta"
    fake = CpuFakeTensorMode(allow_non_fake_inputs=True) if mode in ("fake", "meta") else None  # meta: CPU kernels
    prepared, args, kwargs = prepare(model, args, kwargs, mode, fake)
    # real mode: the step runs on `state` (prepare.running_on), so running statistics update clones of the buffers
    state = (
        prepared
        if prepared is not None
        else {name: b.clone() for name, b in model.named_buffers(remove_duplicate=False)}
    )
    described = describe_inputs(args, kwargs)

    def run(state: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer | None) -> Report:
        return _run(model, state, args, kwargs, loss_fn or default_loss, optimizer, convention, overrides, described)

    with rng_preserved(), fake or contextlib.nullcontext():
        params = _stand_ins(model, state, clone=optimizer is not None and mode == "real")
        by_id = {id(p): params[name] for name, p in model.named_parameters(remove_duplicate=False)}
        shadow = _copy_optimizer(optimizer, by_id) if optimizer is not None else None
        report = replace(run({**state, **params}, shadow), sizes=transformer_sizes(model, args, kwargs))
        frozen = [p for p in model.parameters() if not p.requires_grad and p.is_floating_point()]
        if not frozen:
            return report
        trainable = {name: p.detach().requires_grad_(p.is_floating_point()) for name, p in params.items()}
        counterfactual = run({**state, **trainable}, None)
    return replace(report, frozen_savings=_minus(_backward(counterfactual), _backward(report)))


def _backward(report: Report) -> Cost:
    return report.phases["backward"] + report.phases["recompute"]


def _minus(a: Cost, b: Cost) -> Cost:
    return Cost(a.macs - b.macs, a.flops - b.flops, a.bytes_read - b.bytes_read, a.bytes_written - b.bytes_written)


def _stand_ins(model: torch.nn.Module, state: dict[str, torch.Tensor], clone: bool) -> dict[str, torch.Tensor]:
    """{name: a new leaf for each parameter}: gradients land on it, not on the model (clones where an optimizer
    will write the values; tied parameters stay tied)."""
    made: dict[int, torch.Tensor] = {}
    out: dict[str, torch.Tensor] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        if id(p) not in made:
            source = state.get(name, p).detach()
            made[id(p)] = (source.clone() if clone else source).requires_grad_(p.requires_grad)
        out[name] = made[id(p)]
    return out


def _copy_optimizer(optimizer: torch.optim.Optimizer, stand_ins: dict[int, torch.Tensor]) -> torch.optim.Optimizer:
    """The same optimizer (class, hyper-parameters, a copy of its state) over the stand-ins. A steady-state step
    is what a training run repeats: an optimizer with no state yet takes one uncounted step on zero gradients
    first (Adam creates its moments, SGD's first momentum step is a copy)."""
    groups = []
    for group in optimizer.param_groups:
        missing = [p for p in group["params"] if id(p) not in stand_ins]
        if missing:
            raise ValueError(
                f"step='train': the optimizer holds {len(missing)} parameter(s) that are not the model's "
                "(build it from model.parameters())"
            )
        groups.append({**group, "params": [stand_ins[id(p)] for p in group["params"]]})
    # every group carries its hyper-parameters; the defaults go to the constructor only where it takes them
    # (AdamW keeps a `decoupled_weight_decay` default that its constructor does not accept)
    accepted = inspect.signature(type(optimizer)).parameters
    copy = type(optimizer)(groups, **{k: v for k, v in optimizer.defaults.items() if k in accepted})
    saved = optimizer.state_dict()
    if saved["state"]:
        copy.load_state_dict(tree_map(lambda x: x.clone() if isinstance(x, torch.Tensor) else x, saved))
    else:
        trained = [p for group in copy.param_groups for p in group["params"] if p.requires_grad]
        for p in trained:
            p.grad = torch.zeros_like(p)
        copy.step()
        for p in trained:
            p.grad = None
    return copy


def _run(
    model: torch.nn.Module,
    state: dict[str, torch.Tensor],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    loss_fn: LossFn,
    optimizer: torch.optim.Optimizer | None,
    convention: str | Convention,
    overrides: dict[Any, Formula | None] | None,
    described: str,
) -> Report:
    with torch.enable_grad(), counting(convention, overrides, model=model, inputs=described, step="train") as session:
        try:
            with running_on(model, state):
                loss = loss_fn(model(*args, **kwargs))
            if not (isinstance(loss, torch.Tensor) and loss.requires_grad):
                raise ValueError(
                    "step='train': the loss does not require grad (are all parameters frozen?); "
                    "loss_fn must return a scalar tensor computed from the model's output"
                )
            with session.labeler.seed():
                loss.backward()  # type: ignore[no-untyped-call]
            if optimizer is not None:
                optimizer.step()
        except Exception as error:
            where = session.raised_in or ""
            error.add_note(f"flopwise: the training step raised in module {where or '(root)'!r}, inputs {described}")
            raise
    return session.report
