"""The fake tensor mode of shape-only counts: torch's, with the strides the CPU kernels give, and deep copies.

Which kernel a composite op runs can depend on strides nobody reads: a size-1 dimension's. torch computes a fake
`view`'s strides in Python (`torch._refs`), and for a size-1 dimension it picks another stride than the C++
kernels of the CPU (and of the meta device). pvt_v2 and twins_svt view tokens back to a batch-of-one feature map:
on the CPU the batch stride makes the map not channels-last, on fake tensors it does, the convolution's output
layout follows, and the Linear after it runs addmm where the CPU runs mm + add. So a view's result takes the
strides the meta device's C++ kernel gives.

`copy.deepcopy` of a fake tensor (Dory and Inkling2-Loop copy their KV cache layers in forward) makes torch copy
its storage, which a fake tensor keeps on the meta device, and its fake mode: torch refuses, and the attempt
corrupts memory. While the mode is on, a fake tensor's deep copy is a clone: the copy a real run makes, counted.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode
from torch.utils._python_dispatch import _disable_current_modes

aten = torch.ops.aten
VIEWS = (aten.view.default, aten._unsafe_view.default)
COPIERS: dict[type, Any] = copy._deepcopy_dispatch  # type: ignore[attr-defined]  # copy's own, by exact type


class CpuFakeTensorMode(FakeTensorMode):  # type: ignore[no-untyped-call]  # torch's __init_subclass__
    """FakeTensorMode whose views have the strides a CPU run gives them, and whose tensors deep-copy."""

    supports_higher_order_operators = True  # torch keys the fake rules of HOPs by the mode's exact type

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if isinstance(func, torch._ops.HigherOrderOperator) and type(self) not in func.python_key_table:
            rule = func.python_key_table.get(FakeTensorMode)
            if rule is None:
                raise NotImplementedError(
                    f"There was no rule registered for HigherOrderOperator {func._name} and mode {type(self).__name__}"
                )
            func.py_impl(type(self))(rule)  # FakeTensorMode's rule is ours, from now on found directly
            return rule(self, *args, **(kwargs or {}))
        return super().__torch_dispatch__(func, types, args, kwargs)  # a rule redirecting here: FakeTensorMode's

    def __enter__(self) -> CpuFakeTensorMode:
        self._copiers = [*getattr(self, "_copiers", []), COPIERS.get(FakeTensor)]  # entered again: a stack
        COPIERS[FakeTensor] = _clone
        return super().__enter__()

    def __exit__(self, *raised: Any) -> None:
        try:
            super().__exit__(*raised)
        finally:
            before = self._copiers.pop()
            if before is None:
                COPIERS.pop(FakeTensor, None)
            else:
                COPIERS[FakeTensor] = before

    def dispatch(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out: Any = super().dispatch(func, types, args, kwargs)
        if func in VIEWS and 1 in out.shape:  # only a size-1 dimension's stride is ambiguous
            strides = _cpu_strides(args[0], out)
            if strides is not None and strides != out.stride():
                out = aten.as_strided.default(out, out.shape, strides, out.storage_offset())
        return out


def _cpu_strides(base: torch.Tensor, out: torch.Tensor) -> tuple[int, ...] | None:
    """The strides of `base.view(out.shape)` from the C++ kernel (symbolic sizes too: a run with symbolic sizes)."""
    if base.layout != torch.strided:
        return None
    with _disable_current_modes():
        if base._has_symbolic_sizes_strides:  # a view of an empty storage: allocating computes its size in sympy
            meta = torch.empty(0, dtype=base.dtype, device="meta").as_strided(base.shape, base.stride())
        else:
            meta = torch.empty_strided(base.shape, base.stride(), dtype=base.dtype, device="meta")
        return tuple(meta.view(out.shape).stride())


def _clone(t: torch.Tensor, memo: dict[int, Any]) -> torch.Tensor:
    return t.clone().requires_grad_(t.requires_grad)
