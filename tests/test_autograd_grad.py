"""torch.autograd.grad with respect to a leaf input (gradient penalties, saliency maps) under counting."""

from __future__ import annotations

import torch
from torch import nn

import flopwise


def mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 4))


def test_gradient_with_respect_to_the_input_only() -> None:
    model, x = mlp(), torch.randn(3, 8, requires_grad=True)
    with flopwise.counting(model=model) as c:
        (grad,) = torch.autograd.grad(model(x).sum(), x)
    assert grad.shape == x.shape
    r = c.report
    # forward: N·in·out per Linear; backward w.r.t. the input only: grad_input = g·W, N·out·in per Linear,
    # and no weight gradient (the engine skips the mm of grad_weight when only x's gradient is asked for)
    assert r["0"].macs == 3 * 8 * 16 + 3 * 16 * 8
    assert r["2"].macs == 3 * 16 * 4 + 3 * 4 * 16
    assert r.macs == r["0"].macs + r["2"].macs
    assert r.operator_calls()["aten.mm"] == 2  # the two grad_input products; the forwards are addmm


def test_gradient_penalty_step_runs_and_rows_sum_to_the_total() -> None:
    model, x = mlp(), torch.randn(3, 8, requires_grad=True)
    with flopwise.counting(model=model) as c:
        out = model(x)
        (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
        (out.mean() + grad.pow(2).sum()).backward()  # the penalty differentiates through the gradient
    r = c.report
    assert r.macs >= 2 * (3 * 8 * 16 + 3 * 16 * 4)  # at least a forward and the input gradient
    assert sum(row.self_cost.macs for row in r.by_module()) == r.macs
    assert model[0].weight.grad is not None


def test_a_module_returning_a_parameter_as_is() -> None:
    class Position(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.table = nn.Parameter(torch.randn(4, 8))

        def forward(self) -> torch.Tensor:
            return self.table  # a leaf output: backward enters this module from a leaf's gradient

    model = Position()
    with flopwise.counting(model=model) as c:
        (grad,) = torch.autograd.grad((model() * 2).sum(), model.table)
    assert torch.equal(grad, torch.full((4, 8), 2.0))
    assert c.report.macs == 0
