"""flopwise.Monitor: a real training loop counted once per input shape, timed every step, MFU/HFU from a peak."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

import flopwise

N, K, H, M = 8, 16, 32, 4  # Linear(K→H) → ReLU → Linear(H→M), with bias


def mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(K, H), nn.ReLU(), nn.Linear(H, M))


def train(mon: flopwise.Monitor, model: nn.Module, rows: list[int]) -> None:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    for n in rows:
        x = torch.randn(n, K)
        with mon.step():
            model(x).sum().backward()
            optimizer.step()
            optimizer.zero_grad()


def step_flops(n: int) -> int:
    # contractions: 2 FLOPs per MAC. forward N·K·H + N·H·M; backward: both weight gradients and the second
    # layer's input gradient (x needs none)
    return 2 * (n * K * H + n * H * M + n * K * H + 2 * n * H * M)


def test_counts_once_per_input_shape_and_times_every_step() -> None:
    model = mlp()
    mon = flopwise.Monitor(model, peak_tflops=1.0)
    train(mon, model, [N, N, N, N, 2 * N, 2 * N])
    assert [r.counted for r in mon.records] == [True, False, False, False, True, False]
    assert len(mon.counts) == 2
    assert [mon.stats(r)["flops"] for r in mon.records] == [step_flops(N)] * 4 + [step_flops(2 * N)] * 2
    assert all(r.time() is not None and r.time() > 0 for r in mon.records)  # type: ignore[operator]
    # nothing is left on the model or in torch's global hooks between steps
    assert not model._forward_pre_hooks
    assert not nn.modules.module._global_forward_pre_hooks and not nn.modules.module._global_forward_hooks


def test_summary_figures_follow_from_flops_time_and_peak() -> None:
    model = mlp()
    mon = flopwise.Monitor(model, peak_tflops=2.0)
    train(mon, model, [N] * 5)
    s = mon.summary()
    assert s["steps"] == 5 and s["timed_steps"] == 4  # the counted first step is not timed
    assert s["flops"] == s["model_flops"] == s["hardware_flops"] == step_flops(N)
    assert s["tflops_per_s"] == pytest.approx(step_flops(N) / s["step_time_s"] / 1e12)
    assert s["mfu"] == pytest.approx(step_flops(N) / s["step_time_s"] / 2e12)
    assert s["peak"] == {"tflops": 2.0, "dtype": "float32", "device": "cpu", "source": "given by the user"}
    assert "peak used: 2 TFLOP/s float32 (given by the user)" in str(mon)


def test_unknown_peak_gives_no_mfu_and_says_why() -> None:
    model = mlp()
    mon = flopwise.Monitor(model)
    train(mon, model, [N, N])
    s = mon.summary()
    assert s["mfu"] is None and s["hfu"] is None and s["flops"] == step_flops(N)
    assert "peak_tflops" in s["notes"][0]


def test_mfu_never_above_100_percent() -> None:
    model = mlp()
    mon = flopwise.Monitor(model, peak_tflops=1e-12)  # 1 FLOP/s: any step beats it, so the peak is wrong
    train(mon, model, [N, N])
    s = mon.summary()
    assert s["mfu"] is None and s["hfu"] is None
    assert "above the peak used" in s["notes"][0]


class Checkpointed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = mlp()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = checkpoint(self.block, x, use_reentrant=False)
        return out


def test_hfu_includes_recompute() -> None:
    model = Checkpointed()
    mon = flopwise.Monitor(model, peak_tflops=1.0)
    train(mon, model, [N, N, N])
    s = mon.summary()
    assert s["model_flops"] == step_flops(N)
    # checkpointing reruns the first Linear (its ReLU output is what the second one's weight gradient needs)
    assert s["hardware_flops"] == step_flops(N) + 2 * N * K * H
    assert s["hfu"] == pytest.approx(s["mfu"] * s["hardware_flops"] / s["model_flops"])


def test_a_failed_step_is_not_recorded() -> None:
    model = mlp()
    mon = flopwise.Monitor(model)
    with pytest.raises(RuntimeError), mon.step():
        model(torch.randn(N, K + 1))
    assert mon.records == [] and mon.counts == {}
    train(mon, model, [N])
    assert mon.summary()["flops"] == step_flops(N)
