"""transformers' KV cache as generate() passes it: by which name, and how many bytes it holds."""

from __future__ import annotations

import inspect
from typing import Any

import torch

CACHE_NAMES = ("cache", "past_key_values")  # transformers 5 renames past_key_values to cache


def cache_argument(model: torch.nn.Module) -> str:
    """The name the model's forward takes its KV cache by, as generate() passes it: `cache` where the forward
    has it (transformers ≥ 5 warns on the old name), else `past_key_values`."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def cache_bytes(cache: Any) -> int:
    """Bytes of the keys and values held by a transformers cache (its `layers`, each with keys and values)."""
    total = 0
    for layer in getattr(cache, "layers", ()) or ():
        for name in ("keys", "values"):
            t = getattr(layer, name, None)
            if isinstance(t, torch.Tensor):
                total += t.numel() * t.element_size()
    return total
