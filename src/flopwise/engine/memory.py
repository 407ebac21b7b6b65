"""Memory figures of a count: parameter memory by dtype, and the peak of activation memory.

Peak activation memory is an estimate built from the dispatch stream alone, the way an allocator would see
it if it allocated exactly each op's outputs and nothing else:

- every tensor storage that an op creates (not a view, not written in place into an existing tensor, not an
  `out=` tensor allocated earlier) becomes live with its byte size when the op returns;
- it stops being live when Python and autograd drop their last reference to it (a weak-reference finalizer
  on the storage), so tensors kept for the backward pass stay live in training and die early under no_grad;
- parameters, buffers and the model's inputs are never counted: they exist before the first op.

Not included: allocator rounding and caching, kernels' scratch workspaces, and storages freed and reused
inside one fused kernel. The figure is the largest sum of live bytes after any op call.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from typing import Any

import torch
from torch.utils._python_dispatch import _disable_current_modes

from ..shapes_only.tensors import storage_key


def packed_weights(module: torch.nn.Module) -> list[torch.Tensor]:
    """The weights and biases a quantized module keeps packed (not as parameters), as stored: torch's quantized
    Linear and Conv layers hold them in a script object, read back through `weight()` and `bias()`; its quantized
    LSTM, GRU and cells through `_weight_bias()`. A float16-packed weight comes back widened to float32 (the only
    float packing): it is returned in float16. Empty for other modules."""
    if not type(module).__module__.startswith("torch.ao.nn.quantized"):
        return []
    weight, bias = getattr(module, "weight", None), getattr(module, "bias", None)
    with _disable_current_modes():  # unpacking is a real op: run it outside the count's fake or counting mode
        if callable(weight) and hasattr(module, "_packed_params"):
            tensors = [weight(), bias() if callable(bias) else None]
        elif hasattr(module, "_weight_bias") and not hasattr(module, "_packed_params"):  # recurrent layers: a dict
            found = module._weight_bias()  # type: ignore[operator]  # a method, which nn.Module's typing misses
            tensors = [*found["weight"].values(), *found["bias"].values()]
        else:
            return []
        return [
            (t.half() if t.is_floating_point() and t.dim() > 1 else t).detach()  # packed weights are not trained
            for t in tensors
            if isinstance(t, torch.Tensor)
        ]


def param_memory(modules: Iterable[torch.nn.Module]) -> dict[str, int]:
    """{dtype name: bytes} of the parameters of `modules`, quantized modules' packed weights included (qint8…);
    a parameter shared between modules counts once."""
    seen: dict[object, torch.Tensor] = {}
    for module in modules:
        for p in module.parameters():
            seen.setdefault(id(p), p)
        for sub in module.modules():
            for i, t in enumerate(packed_weights(sub)):
                seen.setdefault((id(sub), i), t)  # weight() unpacks a new tensor at each call: key by module
    return bytes_by_dtype(seen.values())


def bytes_by_dtype(tensors: Iterable[torch.Tensor]) -> dict[str, int]:
    """{dtype name: bytes} of `tensors` (each counted as given), largest first."""
    by_dtype: dict[str, int] = {}
    for t in tensors:
        name = str(t.dtype).removeprefix("torch.")
        by_dtype[name] = by_dtype.get(name, 0) + t.numel() * t.element_size()
    return dict(sorted(by_dtype.items(), key=lambda kv: -kv[1]))


class ActivationMemory:
    """Live bytes of the storages created in the dispatch stream, and their peak (see the module docstring)."""

    def __init__(self) -> None:
        self.live = 0
        self.peak = 0
        self._live: dict[int, int] = {}  # storage key → bytes
        # weak references whose callback frees the storage's bytes (far cheaper than weakref.finalize)
        self._watching: dict[weakref.ref[Any], int] = {}

    def record(
        self, inputs: list[torch.Tensor], outputs: list[torch.Tensor], declared: dict[int | None, int] | None = None
    ) -> None:
        """After an op (not a view): outputs whose storage is new become live until it is freed. `declared`:
        bytes of storages made without them (replay.py, with symbolic sizes), taken instead of the storage's."""
        existing = {storage_key(t) for t in inputs}
        for t in outputs:
            key = storage_key(t)
            if key is None or key in existing or key in self._live:
                continue
            storage = t.untyped_storage()
            size = declared.pop(key) if declared and key in declared else int(storage.nbytes())
            self._live[key] = size
            self.live += size
            self._watching[weakref.ref(storage, self._freed)] = key
        self.peak = max(self.peak, self.live)

    def storages(self) -> set[int]:
        """The keys of the storages alive now (that ops of the count made)."""
        return set(self._live)

    def size_of(self, key: int | None) -> int | None:
        """Bytes of a storage alive now that an op of the count made; None for any other."""
        return self._live.get(key) if key is not None else None

    def close(self) -> None:
        """Stop watching: dropping the weak references cancels their callbacks, so the tensors a count
        returned outlive it with nothing attached."""
        self._watching.clear()

    def _freed(self, ref: weakref.ref[Any]) -> None:
        key = self._watching.pop(ref, None)
        if key is not None:
            self._free(key)

    def _free(self, key: int) -> None:
        self.live -= self._live.pop(key, 0)
