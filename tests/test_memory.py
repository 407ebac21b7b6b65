"""Parameter memory by dtype and the peak-activation estimate, checked by hand."""

from __future__ import annotations

import torch
from torch import nn

import flopwise
from tests.models import SharedLinear


def test_parameter_memory_by_dtype_counts_shared_parameters_once() -> None:
    model = nn.Sequential(nn.Linear(8, 4), nn.Linear(4, 2).half())
    r = flopwise.count(model, torch.randn(3, 8), mode="meta")
    assert r.param_bytes == {"float32": (8 * 4 + 4) * 4, "float16": (4 * 2 + 2) * 2}  # weights + biases
    assert r.param_memory == (8 * 4 + 4) * 4 + (4 * 2 + 2) * 2
    shared = flopwise.count(SharedLinear(), torch.randn(2, 8))
    assert shared.param_bytes == {"float32": (8 * 8 + 8) * 4}  # one Linear used twice


def _chain(x: torch.Tensor) -> torch.Tensor:
    return x.exp().exp().exp().sum()


def test_peak_activation_frees_intermediates_at_inference() -> None:
    x = torch.randn(64, 64)  # 16 KiB, an input: never counted
    with torch.no_grad(), flopwise.counting() as c:
        _chain(x)
    # at most two 64×64 fp32 intermediates are alive at once: an exp's input and its output
    assert c.report.peak_activation_bytes == 2 * 64 * 64 * 4


def test_peak_activation_keeps_tensors_saved_for_backward() -> None:
    x = torch.randn(64, 64, requires_grad=True)
    with flopwise.counting() as c:
        _chain(x)
    # each exp saves its output for the backward: three intermediates plus the 4-byte sum
    assert c.report.peak_activation_bytes == 3 * 64 * 64 * 4 + 4


def test_views_and_in_place_ops_allocate_nothing() -> None:
    x = torch.randn(32, 32)
    with torch.no_grad(), flopwise.counting() as c:
        y = x.exp()  # 4 KiB
        y.relu_()  # in place: same storage
        y.t()[:10].unsqueeze(0)  # views
        torch.exp(y, out=y)  # out= into the same storage
    assert c.report.peak_activation_bytes == 32 * 32 * 4


def test_peak_of_a_model_in_each_mode_agrees() -> None:
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    x = torch.randn(3, 4)
    peaks = {mode: flopwise.count(model, x, mode=mode).peak_activation_bytes for mode in ("real", "fake", "meta")}
    # the first Linear's output (3×8 fp32) and the ReLU's output are alive together
    assert peaks == {"real": 2 * 3 * 8 * 4, "fake": 2 * 3 * 8 * 4, "meta": 2 * 3 * 8 * 4}


def test_no_callback_outlives_the_count() -> None:
    import gc
    import weakref

    x = torch.randn(16, 16)
    with flopwise.counting() as c:
        kept = torch.relu(x @ x)
    assert c.report.peak_activation_bytes >= kept.numel() * 4
    from flopwise.engine.memory import ActivationMemory

    def ours(ref: weakref.ref) -> bool:  # type: ignore[type-arg]
        return isinstance(getattr(ref.__callback__, "__self__", None), ActivationMemory)

    gc.collect()
    assert not [r for r in weakref.getweakrefs(kept.untyped_storage()) if ours(r)]
