"""Expert parallelism (ep): transformers' own, its all-to-all split sizes on fake tensors taken from balanced routing.

transformers (5.x) applies expert parallelism with `apply_expert_parallelism` (transformers.distributed): the
model's `ep_plan` (Mixtral's: the experts' weights "grouped_gemm", the experts module "ep_dispatch_experts") shards
each experts module's weights along the expert dimension (each rank of the ep group holds E/ep whole experts,
`Shard(0)` on the ep mesh) and routes tokens with its `AllToAllEP`, as torchtitan and Megatron do:

- dispatch: the (token, expert) pairs sorted by expert; the per-expert counts exchanged by an all-to-all
  (`all_to_all_single`, E int64 each way); the split sizes read back to the host; the tokens' hidden states sent
  to their experts' ranks by an all-to-all (`all_to_all_single_autograd`);
- the rank's experts run on the rows they received (grouped_mm at the local shapes);
- combine: the outputs sent back by a second all-to-all, weighted and summed per token.

A real run reads the split sizes from the router's choice. On fake tensors it has no values, and the plan
states the assumption it takes instead (`BALANCED`): balanced top-k routing, each of a rank's P = T·k pairs
(T tokens, top-k) split equally over the ep ranks, P/ep to each (the first P mod ep ranks one more), and as many
received from each. The rest is transformers' own code, run unchanged (`Balanced` answers its one host read).
"""

from __future__ import annotations

import fnmatch
from typing import Any

import torch
from torch import nn
from torch._subclasses.fake_tensor import FakeTensor
from torch.distributed.device_mesh import DeviceMesh
from torch.overrides import TorchFunctionMode

BALANCED = (
    "ep: all-to-all split sizes assume balanced top-k routing (routing is data-dependent, fake tensors have no "
    "router values): each rank sends P/ep of its P = tokens·k (token, expert) pairs to every rank of its ep group "
    "and receives as many"
)
IMPLEMENTATION = "flopwise_balanced_all_to_all"


def balanced_sizes(pairs: int, ep: int) -> list[int]:
    """`pairs` split over `ep` ranks as equally as they divide, the first ones taking one more."""
    base, extra = divmod(pairs, ep)
    return [base + (1 if i < extra else 0) for i in range(ep)]


def local_rows(rows: int, parts: int, index: int) -> int:
    """Rows of chunk `index` when `rows` are chunked in `parts` (`torch.chunk`: chunks of ⌈rows/parts⌉)."""
    size = -(-rows // parts)
    return max(0, min(size, rows - index * size))


class Balanced(TorchFunctionMode):
    """Answers `.item()` on fake tensors with the given values, in order: the host read of the split sizes."""

    def __init__(self, values: list[int]) -> None:
        super().__init__()
        self.values = list(values)

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        if func is torch.Tensor.item and isinstance(args[0], FakeTensor):
            if not self.values:
                raise RuntimeError(
                    "ep: the expert-parallel forward read a value from a fake tensor beyond its split sizes; this "
                    "transformers version dispatches tokens in a way flopwise does not follow"
                )
            return self.values.pop(0)
        return func(*args, **(kwargs or {}))


def _implementation() -> type:
    """transformers' `AllToAllEP` with its split sizes from balanced routing where the routing is fake."""
    from transformers.distributed.expert_parallel import AllToAllEP

    class BalancedAllToAllEP(AllToAllEP):
        def __call__(self, hidden_states: Any, top_k_index: Any, top_k_weights: Any) -> Any:
            if not isinstance(top_k_index, FakeTensor):
                return super().__call__(hidden_states, top_k_index, top_k_weights)  # type: ignore[no-untyped-call]
            ep, me = self.ep_mesh.size(), self.ep_mesh.get_local_rank()
            tokens = local_rows(hidden_states.size(0), self.tp_mesh.size(), self.tp_mesh.get_local_rank())
            sent = balanced_sizes(tokens * top_k_index.size(-1), ep)
            with Balanced(sent + [sent[me]] * ep):  # the send sizes, then the receive sizes
                return super().__call__(hidden_states, top_k_index, top_k_weights)  # type: ignore[no-untyped-call]

    return BalancedAllToAllEP


def ep_entries(model: nn.Module) -> dict[str, str]:
    """{parameter or module name: transformers EP style} of the model's own `ep_plan`, its patterns expanded, in
    the plan's order (the weights' entries first, so each experts module knows its local count when dispatching)."""
    plan: dict[str, str] = dict(getattr(model, "ep_plan", None) or {})
    names = [n for n, _ in model.named_parameters()] + [n for n, _ in model.named_modules()]
    return {name: style for pattern, style in plan.items() for name in names if fnmatch.fnmatchcase(name, pattern)}


def expert_parallel(model: nn.Module, mesh: DeviceMesh) -> list[str]:
    """Apply transformers' expert parallelism on the mesh's ep dimension (tp: the ranks that share a batch); returns
    the plan's note: the routing assumption."""
    try:
        from transformers.distributed.expert_parallel import EPImplementationInterface, apply_expert_parallelism
    except ImportError as error:
        raise ValueError(
            "ep: expert parallelism is transformers' own (transformers.distributed.expert_parallel, transformers 5.x), "
            f"which this environment does not have ({error}); pass parallelize_fn(model, mesh)"
        ) from None

    entries = ep_entries(model)
    if not any(style == "ep_dispatch_experts" for style in entries.values()):
        raise ValueError(
            f"ep: {type(model).__name__} has no expert-parallel plan (a transformers `ep_plan` with "
            "'ep_dispatch_experts', from its config's base_model_ep_plan); pass parallelize_fn(model, mesh)"
        )
    EPImplementationInterface.register(IMPLEMENTATION, _implementation())
    apply_expert_parallelism(model, mesh["ep"], mesh["tp"], entries, ep_implementation=IMPLEMENTATION)
    return [BALANCED]
