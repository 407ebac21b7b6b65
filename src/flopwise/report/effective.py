"""Effective work of pruned weights: the MACs left once multiplications by weight elements that are exactly zero
are skipped. This is the one place that reads weight VALUES (formulas see shapes only), after the count.

Definition, per contraction that multiplies a module's weight W (a parameter of 2 or more dimensions, or the
masked weight that `torch.nn.utils.prune` recomputes from `weight_orig`):

    effective MACs = dense MACs · nnz(W) / numel(W)

exact, because each element of W takes part in the same number of multiply-adds: R (rows) per element for
linear (dense R·K·N, effective R·nnz), N·H_out·W_out per element for a convolution of any groups, stride,
dilation or padding (dense N·H_out·W_out·K_h·K_w·C_in/groups·C_out; zero-padded input positions are counted
as MACs in both, as the dense count does), and likewise for attention's projection weights (in_proj_weight…).
Contractions with no weight (QKᵀ, AV, x @ y) keep their dense MACs. A call is matched to a weight when one of
its inputs has the weight's shape (or its transpose) and it runs in the weight's module.
"""

from __future__ import annotations

import dataclasses

import torch
from torch.utils._python_dispatch import _disable_current_modes

from ..engine.module_stack import ancestors
from .report import Report

try:
    import numpy
except ImportError:  # torch runs without numpy; the scan then uses torch.count_nonzero
    numpy = None  # type: ignore[assignment]


def module_weights(module: torch.nn.Module) -> list[torch.Tensor]:
    """The weights (≥ 2 dimensions) a module multiplies: its own parameters, and for a pruned parameter
    `weight_orig` the masked `weight` that forward actually uses."""
    found = []
    for name, p in module._parameters.items():
        if p is None:
            continue
        t = getattr(module, name.removesuffix("_orig"), None) if name.endswith("_orig") else p
        if isinstance(t, torch.Tensor) and t.dim() >= 2:
            found.append(t)
    return found


_NUMPY_ZERO_TEST = {
    torch.float32: torch.float32,
    torch.float64: torch.float64,
    torch.float16: torch.float16,
    torch.bfloat16: torch.float16,
}
_PLAIN = (torch.Tensor, torch.nn.Parameter)  # subclasses (DTensor, quantized wrappers) keep torch's count


def _nonzero(t: torch.Tensor) -> int | None:
    """Non-zero elements of a real weight; None for a weight without values (meta, fake). Called with no modes and
    no grad (with_effective holds them over the whole scan)."""
    if t.is_meta or type(t).__name__ == "FakeTensor" or t.layout != torch.strided:
        return None
    if numpy is not None and type(t) in _PLAIN and t.dtype in _NUMPY_ZERO_TEST and t.device.type == "cpu":
        # numpy counts several times faster than torch.count_nonzero on the CPU (a weight scan is part of every
        # count); bfloat16 is read as float16: both are zero exactly when every bit but the sign is 0
        return _count_nonzero(t.detach().view(_NUMPY_ZERO_TEST[t.dtype]).numpy().reshape(-1))
    return int(torch.count_nonzero(t))


_STRETCH = 1 << 18  # elements (1 MiB of float32): a stretch holding a zero is counted while still cached


def _count_nonzero(values: numpy.ndarray) -> int:
    """numpy.count_nonzero of a flat array, read stretch by stretch: `all()` (no element is ±0; NaN is not zero)
    reads three times faster than count_nonzero, and only the few stretches holding a zero are counted."""
    found = 0
    for start in range(0, values.size, _STRETCH):
        stretch = values[start : start + _STRETCH]
        found += stretch.size if stretch.all() else int(numpy.count_nonzero(stretch))
    return found


def _owned_by(module: str, call_module: str) -> bool:
    """Whether a weight of `module` may be multiplied in a call that runs in `call_module`: its own, or a
    submodule's (nn.MultiheadAttention multiplies `out_proj.weight` in its own forward)."""
    return module == call_module or not call_module or module.startswith(call_module + ".")


def with_effective(report: Report, model: torch.nn.Module) -> Report:
    """`report` with `effective_macs` and `weight_density` on every row; unchanged when a weight has no values."""
    by_shape: dict[tuple[int, ...], list[tuple[str, int, int]]] = {}  # shape → (module, nnz, numel)
    density: dict[str, float] = {}
    scanned: dict[int, int | None] = {}  # a weight shared by several modules is read once
    sparse = False
    with _disable_current_modes(), torch.no_grad():
        found = [
            (
                name,
                weights,
                [scanned[id(w)] if id(w) in scanned else scanned.setdefault(id(w), _nonzero(w)) for w in weights],
            )
            for name, weights in ((name, module_weights(module)) for name, module in model.named_modules())
        ]
    for name, weights, counts in found:
        if any(c is None for c in counts):
            return report  # shapes-only weights: no values to look at
        if weights:
            density[name] = sum(c or 0 for c in counts) / sum(w.numel() for w in weights)
        for w, nnz in zip(weights, counts, strict=True):
            sparse = sparse or nnz != w.numel()
            by_shape.setdefault(tuple(w.shape), []).append((name, nnz or 0, w.numel()))
            if w.dim() == 2 and w.shape[0] != w.shape[1]:  # x @ Wᵀ sees the transpose
                by_shape.setdefault((w.shape[1], w.shape[0]), []).append((name, nnz or 0, w.numel()))
    skipped = _skipped(report, by_shape) if sparse else {}  # no zero weight: nothing is skipped
    rows = {
        name: row.with_weights(row.macs - skipped.get(name, 0), density.get(name))
        for name, row in report.modules.items()
    }
    return dataclasses.replace(report, modules=rows)


def _skipped(report: Report, by_shape: dict[tuple[int, ...], list[tuple[str, int, int]]]) -> dict[str, int]:
    """Module → MACs skipped in its calls and its submodules' calls, by the zero weights `by_shape` holds."""
    skipped: dict[str, int] = {}
    for call in report.calls:
        if not call.cost.macs:
            continue
        owners = [o for s in call.shapes for o in by_shape.get(s, ()) if _owned_by(o[0], call.module)]
        if not owners:
            continue
        # the weight of the module the call ran in first, else the nearest submodule's
        _, nnz, numel = min(owners, key=lambda o: (o[0] != call.module, len(o[0])))
        saved = call.cost.macs - call.cost.macs * nnz // numel
        for enclosing in ancestors(call.module):
            skipped[enclosing] = skipped.get(enclosing, 0) + saved
    return skipped
