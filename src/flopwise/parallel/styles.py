"""The default plan: torch's tensor parallel styles where the model's own plan puts them, then FSDP2.

Tensor parallel (`tp`), with `parallelize_module` on the mesh's tp dimension:

- the layers a transformers model's own tensor-parallel plan names (`model._tp_plan`, built from its config's
  `base_model_tp_plan`): "colwise" → `ColwiseParallel()`, "rowwise" → `RowwiseParallel()`,
  "embedding_rowwise" → `RowwiseParallel(input_layouts=Replicate())` (the vocabulary split, Megatron's
  vocabulary-parallel embedding); the LM head ("colwise_gather_output") → `ColwiseParallel(output_layouts=
  Shard(-1), use_local_output=False)`: its logits stay split over the vocabulary and the loss is taken under
  torch's `loss_parallel()` (Megatron's vocabulary-parallel cross entropy), never gathered. Plan entries of
  other kinds (experts, sequence-parallel norms) are left unsharded and said so in the plan's notes;
- a model with no such plan: Linear layers named as Llama's are (q_proj, k_proj, v_proj, gate_proj, up_proj
  column-wise; o_proj, down_proj row-wise);
- the module that holds two or more column-wise layers reading the same input (attention, a gated MLP) makes
  that input a replicated DTensor once (`ReplicatedInput`), so backward sums their input gradients before one
  all-reduce, as Megatron's f operator does, instead of one all-reduce per layer.

Expert parallel (`ep`, ranks borrowed from dp: layout.py) is transformers' own (experts.py): the model's
`ep_plan` applied with `apply_expert_parallelism` on the mesh's ep dimension, each rank holding E/ep whole
experts and exchanging tokens by all-to-all. The experts' parameters are then left out of the dense layers'
FSDP2 (`ignored_params`): with ep = dp every expert lives on one rank, so there is nothing to shard or reduce; with
ep < dp each experts module is its own FSDP2 unit over "edp" (the ranks holding the same experts), as torchtitan
shards its experts over `dp_shard_mod_ep`.

Data parallel (`dp`) is FSDP2 (`fully_shard` on the mesh's dp dimension; with cp, on dp and cp flattened: the
ranks of a cp group hold the same parameters and reduce their gradients too): each block of the model's largest
ModuleList (a transformer's layers; an nn.Sequential's children) is one FSDP unit, the root is another. Under
pipeline parallelism the parameters stay unsharded between micro-batches (`reshard_after_forward=False`,
torchtitan's setting with PP).
`mixed_precision="bf16"` gives FSDP2 `MixedPrecisionPolicy(param_dtype=bfloat16, reduce_dtype=float32)`: float32
parameters sharded, gathered and computed in bfloat16, gradients reduce-scattered in float32.
"""

from __future__ import annotations

import fnmatch
from typing import Any

import torch
from torch import nn
from torch.distributed.device_mesh import DeviceMesh
from torch.distributed.tensor import DTensor, Replicate, Shard
from torch.distributed.tensor.parallel import ColwiseParallel, ParallelStyle, RowwiseParallel, parallelize_module

from .experts import expert_parallel
from .world import fsdp_dim, has_dim, sub_mesh

LLAMA_NAMES = {
    "q_proj": "colwise",
    "k_proj": "colwise",
    "v_proj": "colwise",
    "gate_proj": "colwise",
    "up_proj": "colwise",
    "o_proj": "rowwise",
    "down_proj": "rowwise",
}
PRECISIONS = {"bf16": torch.bfloat16, "fp16": torch.float16}


class ReplicatedInput(ParallelStyle):
    """A module's first tensor input (positional, or the keyword `hidden_states`) made a replicated DTensor on the
    tp mesh before its forward: the column-wise layers inside then share one input, and one all-reduce of its
    gradient (a backward of `DTensor.from_local`) serves them all."""

    def _apply(self, module: nn.Module, device_mesh: DeviceMesh) -> nn.Module:
        def replicate(x: Any) -> Any:
            if isinstance(x, torch.Tensor) and not isinstance(x, DTensor):
                return DTensor.from_local(x, device_mesh, [Replicate()], run_check=False)
            return x

        def hook(_: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any]:
            if args:
                return (replicate(args[0]), *args[1:]), kwargs
            if "hidden_states" in kwargs:
                return args, {**kwargs, "hidden_states": replicate(kwargs["hidden_states"])}
            return args, kwargs

        module.register_forward_pre_hook(hook, with_kwargs=True)
        return module


def tp_entries(model: nn.Module) -> dict[str, str]:
    """{module name pattern: kind} of the model's own tensor-parallel plan, else of Llama's names."""
    own = getattr(model, "_tp_plan", None) or {}
    if not own:
        config = getattr(model, "config", None)
        base = getattr(config, "base_model_tp_plan", None) or {}
        prefix = next((n for n, m in model.named_modules() if m is getattr(model, "base_model", None) and n), "")
        own = {f"{prefix}.{k}" if prefix else k: v for k, v in base.items()}
    if own:
        return dict(own)
    return {
        name: LLAMA_NAMES[name.rpartition(".")[2]]
        for name, m in model.named_modules()
        if isinstance(m, nn.Linear) and name.rpartition(".")[2] in LLAMA_NAMES
    }


def style_of(kind: str, module: nn.Module) -> ParallelStyle | None:
    if kind == "colwise" and isinstance(module, (nn.Linear, nn.Embedding)):
        return ColwiseParallel()
    if kind == "rowwise" and isinstance(module, (nn.Linear, nn.Embedding)):
        return RowwiseParallel()
    if kind == "embedding_rowwise" and isinstance(module, nn.Embedding):
        return RowwiseParallel(input_layouts=Replicate())
    if kind == "colwise_gather_output" and isinstance(module, nn.Linear):
        return ColwiseParallel(output_layouts=Shard(-1), use_local_output=False)
    return None


def tensor_parallel(model: nn.Module, mesh: DeviceMesh) -> list[str]:
    """Apply the default tensor-parallel plan; returns notes on what was left unsharded."""
    entries = tp_entries(model)
    if not entries:
        raise ValueError(
            "tp: the model has no tensor-parallel plan (a transformers `_tp_plan`) and no Llama-named "
            "Linear layers; pass parallelize_fn(model, mesh) with your own parallelize_module plan"
        )
    plan: dict[str, ParallelStyle] = {}
    skipped: set[str] = set()
    colwise_parents: dict[str, int] = {}
    for name, module in model.named_modules():
        kind = next((k for pattern, k in entries.items() if fnmatch.fnmatchcase(name, pattern)), None)
        if kind is None or type(module).__name__ == "PassThrough":  # another pipeline stage's part
            continue
        style = style_of(kind, module)
        if style is None:
            skipped.add(f"{kind} ({type(module).__name__})")
            continue
        plan[name] = style
        if kind == "colwise":
            parent = name.rpartition(".")[0]
            colwise_parents[parent] = colwise_parents.get(parent, 0) + 1
    for parent, n in colwise_parents.items():
        if n > 1 and parent:
            plan[parent] = ReplicatedInput()
    parallelize_module(model, mesh, plan)
    return [f"tp: plan entries left unsharded: {', '.join(sorted(skipped))}"] if skipped else []


def blocks(model: nn.Module) -> list[nn.Module]:
    """The FSDP units below the root: the children of an nn.Sequential, else of the model's largest ModuleList
    (a transformer's layers); those with parameters."""
    if isinstance(model, nn.Sequential):
        largest: nn.Module = model
    else:
        lists = [m for m in model.modules() if isinstance(m, nn.ModuleList)]
        if not lists:
            return []
        largest = max(lists, key=len)
    return [b for b in largest.children() if any(True for _ in b.parameters())]


def data_parallel(
    model: nn.Module,
    mesh: DeviceMesh,
    *,
    pipelined: bool,
    mixed_precision: str | None,
    experts: DeviceMesh | None = None,
) -> list[str]:
    """FSDP2 over `mesh`; the experts expert parallelism split left out of it, each experts module sharded over
    `experts` instead when given (the experts' own data parallel, "edp")."""
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    if mixed_precision is not None and mixed_precision not in PRECISIONS:
        raise ValueError(f"mixed_precision must be one of {', '.join(PRECISIONS)} or None, got {mixed_precision!r}")
    policy = (
        MixedPrecisionPolicy(param_dtype=PRECISIONS[mixed_precision], reduce_dtype=torch.float32)
        if mixed_precision is not None
        else MixedPrecisionPolicy()
    )
    split = [m for m in model.modules() if getattr(m, "_is_expert_parallel", False)]
    if experts is not None:
        for m in split:  # before the blocks that hold them, as FSDP2 nests
            fully_shard(m, mesh=experts, reshard_after_forward=not pipelined, mp_policy=policy)
    ignored = {p for m in split for p in m.parameters()} or None
    for block in blocks(model):
        fully_shard(block, mesh=mesh, reshard_after_forward=not pipelined, mp_policy=policy, ignored_params=ignored)
    fully_shard(model, mesh=mesh, reshard_after_forward=not pipelined, mp_policy=policy, ignored_params=ignored)
    return []


def default_parallelize(
    model: nn.Module, mesh: DeviceMesh, *, pipelined: bool = False, mixed_precision: str | None = None
) -> list[str]:
    """The default plan on `mesh` (dimensions "tp", "ep" and "dp" where present, in that order, as transformers
    applies them); returns notes for the report."""
    notes: list[str] = []
    if has_dim(mesh, "tp"):
        notes += tensor_parallel(model, mesh["tp"])
    if has_dim(mesh, "ep"):
        notes += expert_parallel(model, mesh)
    if has_dim(mesh, fsdp_dim(mesh)):
        notes += data_parallel(
            model,
            sub_mesh(mesh, fsdp_dim(mesh)),
            pipelined=pipelined,
            mixed_precision=mixed_precision,
            experts=mesh["edp"] if has_dim(mesh, "edp") else None,
        )
    return notes
