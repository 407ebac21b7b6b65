"""Pipeline stages: a model cut into `pp` contiguous stages, and the order torch's schedules run them in.

A stage's program is the model itself with the other stages' parts replaced by `PassThrough` modules (no
parameters, no ops), so module names stay those of the whole model:

- a transformers decoder (`model.base_model` with `layers`, `embed_tokens`, `norm`; `inputs_embeds` accepted):
  stage s keeps its share of the layers (as equal as they divide, earlier stages taking one more), the first
  stage the embedding, the last the final norm and the LM head; a later stage is called with the previous
  stage's hidden states as `inputs_embeds`, the other inputs (masks, positions) as given, `use_cache=False`;
- an `nn.Sequential`: stage s keeps its share of the children.

The schedule (`ScheduleGPipe`, `Schedule1F1B`, … from torch.distributed.pipelining) is built on a
`PipelineStage` of this rank, and its `pipeline_order` (each rank's sequence of forward and backward actions
over the micro-batches) is what the step estimate replays: bubbles come from the schedule itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


class PassThrough(nn.Module):
    """Stands for a part of the model that another stage runs: returns its first input unchanged."""

    def __init__(self, replaced: nn.Module | None = None) -> None:
        super().__init__()
        kind = getattr(replaced, "attention_type", None)  # transformers picks each layer's mask by it
        if kind is not None:
            self.attention_type = kind

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if args:
            return args[0]
        return kwargs.get("hidden_states", next(iter(kwargs.values()), None))


@dataclass(frozen=True)
class StageCut:
    index: int
    count: int
    kind: str  # "transformers" or "sequential"
    kept: tuple[int, int]  # [first, last) of the layers or children this stage runs
    total: int  # layers or children in the model

    @property
    def first(self) -> bool:
        return self.index == 0

    @property
    def last(self) -> bool:
        return self.index == self.count - 1

    def describe(self) -> str:
        what = "layers" if self.kind == "transformers" else "children"
        return f"stage {self.index}: {what} {self.kept[0]}–{self.kept[1] - 1} of {self.total}"


def shares(total: int, parts: int) -> list[tuple[int, int]]:
    """[first, last) of each of `parts` contiguous shares of `total` items, earlier shares one larger."""
    out, start = [], 0
    for i in range(parts):
        size = total // parts + (1 if i < total % parts else 0)
        out.append((start, start + size))
        start += size
    return out


def decoder_parts(model: nn.Module) -> tuple[nn.Module, nn.ModuleList] | None:
    base = getattr(model, "base_model", None)
    layers = getattr(base, "layers", None)
    if isinstance(base, nn.Module) and isinstance(layers, nn.ModuleList) and hasattr(base, "embed_tokens"):
        return base, layers
    return None


def cut(model: nn.Module, index: int, count: int) -> StageCut:
    """Make `model` (a copy) stage `index` of `count`, in place (module docstring)."""
    parts = decoder_parts(model)
    items: nn.ModuleList | nn.Sequential
    if parts is not None:
        base, layers = parts
        kind, items = "transformers", layers
    elif isinstance(model, nn.Sequential):
        kind, items = "sequential", model
    else:
        raise ValueError(
            "pp: pipeline stages are cut from a transformers decoder (base_model.layers) or an "
            f"nn.Sequential; {type(model).__name__} is neither"
        )
    if len(items) < count:
        raise ValueError(
            f"pp: {len(items)} {'layers' if kind == 'transformers' else 'children'} cannot fill {count} stages"
        )
    first, last = shares(len(items), count)[index]
    for i in range(len(items)):
        if not first <= i < last:
            items[i] = PassThrough(items[i])
    stage = StageCut(index, count, kind, (first, last), len(items))
    if kind == "transformers":
        base, _ = parts  # type: ignore[misc]
        if not stage.first:
            base.embed_tokens = PassThrough()
        if not stage.last:
            if isinstance(getattr(base, "norm", None), nn.Module):
                base.norm = PassThrough()
            getter = getattr(model, "get_output_embeddings", None)
            head = getter() if callable(getter) else None
            if isinstance(head, nn.Module) and head is not base.embed_tokens:
                for name, child in model.named_children():
                    if child is head:
                        setattr(model, name, PassThrough())
    return stage


def stage_inputs(
    stage: StageCut, args: tuple[Any, ...], kwargs: dict[str, Any], received: torch.Tensor | None
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """What stage `stage` is called with: the model's inputs on the first stage, the hidden states received from
    the previous stage on the others; labels only on the last."""
    if stage.kind == "sequential":
        return (args if stage.first else (received,)), {}
    kwargs = dict(kwargs)
    labels = kwargs.pop("labels", None)
    if not stage.first:
        if args:
            raise ValueError("pp: give a transformers model its inputs by keyword (input_ids=…)")
        kwargs.pop("input_ids", None)
        kwargs["inputs_embeds"] = received
    if stage.last and labels is not None:
        kwargs["labels"] = labels
    kwargs["use_cache"] = False
    return args, kwargs


def stage_output(stage: StageCut, output: Any) -> torch.Tensor:
    """The tensor a stage sends on: its hidden states (a non-last stage's `logits`, its head being a
    pass-through), or the Sequential's output."""
    if isinstance(output, torch.Tensor):
        return output
    for key in ("logits", "last_hidden_state"):
        value = getattr(output, key, None)
        if isinstance(value, torch.Tensor):
            return value
    raise ValueError(f"pp: stage {stage.index} returned {type(output).__name__}, with no hidden states to send on")


def pipeline_order(
    stage_module: nn.Module, stage: StageCut, microbatches: int, schedule: str, group: Any
) -> dict[int, list[str]]:
    """{pp rank: its actions in order, as torch's schedule names them ("0F3": stage 0, forward, micro-batch 3)}."""
    from torch.distributed import pipelining

    cls = getattr(pipelining, schedule, None)
    if not isinstance(cls, type) or not issubclass(cls, pipelining.schedules.PipelineScheduleSingle):
        raise ValueError(
            f"pp: schedule must name a single-stage schedule of torch.distributed.pipelining "
            f"(ScheduleGPipe, Schedule1F1B), got {schedule!r}"
        )
    pipe_stage = pipelining.PipelineStage(stage_module, stage.index, stage.count, torch.device("cpu"), group=group)
    order = cls(pipe_stage, microbatches).pipeline_order or {}
    return {rank: _in_order([a for a in actions if a is not None]) for rank, actions in order.items()}


def _in_order(actions: list[Any]) -> list[str]:
    """A single-stage schedule's actions, the k-th forward (and backward) of a rank numbered micro-batch k, as its
    runtime runs them: torch 2.14's `Schedule1F1B.pipeline_order` numbers a stage's micro-batches from 1 where it
    has no warm-up forwards (the last stage), an order its runtime never reads."""
    seen: dict[str, int] = {}
    out = []
    for a in actions:
        kind = a.computation_type.value
        if a.microbatch_index is not None:
            index = seen.get(kind, 0)
            seen[kind] = index + 1
            out.append(f"{a.stage_index}{kind}{index}")
        else:
            out.append(str(a))
    return out
