"""Mixture-of-experts layers seen during a count: experts, tokens routed to each, active parameters per token.

transformers' MoE blocks (Mixtral, Qwen-MoE, DeepSeek) call their experts module as
`experts(hidden_states, top_k_index, top_k_weights)`; a module with an integer `num_experts` called so is an
MoE layer. In real mode the indices are read (the routing observed); on fake or meta tensors they have no
values, and the tokens per expert are an estimate under a stated assumption: balanced top-k routing, T·k/E
tokens each. Active parameters per token: the router, the shared experts and k of the E routed experts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils._python_dispatch import _disable_current_modes

from ..shapes_only.values import Values, known_value

BALANCED = "balanced top-k routing (routing is data-dependent: on fake or meta tensors each expert gets T·k/E tokens)"


@dataclass(frozen=True)
class MoELayer:
    name: str  # the MoE block (the experts module's parent)
    experts: int  # E routed experts
    top_k: int  # experts per token
    tokens: int  # tokens routed through the layer (all its calls)
    tokens_per_expert: tuple[float, ...]  # observed (integers) or, when `estimate`, T·k/E each
    params_per_expert: int
    shared_params: int  # router, shared experts: what every token uses besides its k experts
    total_params: int  # of the whole block
    estimate: bool
    assumption: str = ""

    @property
    def active_params_per_token(self) -> int:
        return self.shared_params + self.top_k * self.params_per_expert


class MoEObserver:
    """A global forward pre-hook target: records the routing each experts module is called with."""

    def __init__(self, values: Values | None = None) -> None:
        self.values = values  # a shape-only count's known values (the routing, when it follows from the inputs)
        self.seen: dict[torch.nn.Module, list[Any]] = {}  # experts module → [tokens, top_k, counts | None]

    def __call__(self, module: torch.nn.Module, args: tuple[Any, ...]) -> None:
        experts = getattr(module, "num_experts", None)
        if not isinstance(experts, int) or len(args) < 2 or not isinstance(args[1], torch.Tensor):
            return
        index = args[1]
        if index.is_floating_point() or index.dim() < 1:
            return
        top_k = int(index.shape[-1])
        tokens = index.numel() // max(top_k, 1)
        if module not in self.seen:
            with _disable_current_modes():  # a real tensor, also under a fake mode: routing read from shadows adds up
                self.seen[module] = [0, top_k, torch.zeros(experts, dtype=torch.long)]
        entry = self.seen[module]
        entry[0] += tokens
        values = known_value(index, self.values)
        if values is None or entry[2] is None:
            entry[2] = None  # one call without values makes the layer's counts an estimate
            return
        with _disable_current_modes():  # reading the routing is not part of the count
            entry[2] += torch.bincount(values.reshape(-1).cpu().long(), minlength=experts)[:experts]

    def layers(self, names: Mapping[torch.nn.Module, str], parents: Mapping[str, torch.nn.Module]) -> list[MoELayer]:
        out = []
        for module, (tokens, top_k, counts) in self.seen.items():
            name = names.get(module, type(module).__name__)
            parent_name = name.rpartition(".")[0]
            block = parents.get(parent_name, module)
            experts = int(getattr(module, "num_experts", 1))
            expert_params = sum(p.numel() for p in module.parameters())
            total = sum(p.numel() for p in block.parameters())
            estimate = counts is None
            per_expert = (tokens * top_k / experts,) * experts if estimate else tuple(int(c) for c in counts.tolist())
            out.append(
                MoELayer(
                    parent_name or name,
                    experts,
                    top_k,
                    tokens,
                    per_expert,
                    expert_params // experts,
                    total - expert_params,
                    total,
                    estimate,
                    BALANCED if estimate else "",
                )
            )
        return out
