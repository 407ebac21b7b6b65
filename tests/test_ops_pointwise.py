"""Elementwise ops, activations (every one the guide gives), softmax and dropout: FLOPs by hand."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import flopwise


def flops_of(fn, *args, **kwargs) -> int:
    with torch.no_grad(), flopwise.counting() as c:
        fn(*args, **kwargs)
    assert c.report.unsupported == {}
    return c.report.flops


X = torch.randn(2, 3, 4, 5)  # 120 elements
E = 2 * 3 * 4 * 5


@pytest.mark.parametrize(
    ("fn", "per_element"),
    [
        (torch.relu, 1),  # guide: max(x, 0), one compare
        (torch.tanh, 5),  # guide: two exps, a subtract, an add, a divide
        (torch.sigmoid, 4),  # guide: negate, exp, add, divide
        (F.gelu, 5),  # 0.5·x·(1 + erf(x/√2)): divide, erf, add, two multiplies
        (lambda x: F.gelu(x, approximate="tanh"), 13),  # x³ (2), ·c, +x, ·√(2/π), tanh (5), +1, ·x, ·0.5
        (F.silu, 5),  # x · sigmoid(x)
        (F.mish, 9),  # x · tanh(log(1 + eˣ)): exp, add, log, tanh (5), multiply
        (F.leaky_relu, 2),  # compare, multiply
        (F.elu, 4),  # compare, exp, subtract, multiply
        (F.hardtanh, 2),  # two compares
        (F.relu6, 2),  # hardtanh(0, 6)
        (F.hardsigmoid, 4),  # add 3, two compares, divide by 6
        (F.hardswish, 5),  # x · hardsigmoid(x)
        (F.softplus, 3),  # log(1 + eˣ)
        (torch.exp, 1),
        (torch.sqrt, 1),
        (torch.neg, 1),
        (lambda x: x * 2, 1),
        (lambda x: x.clamp(-1, 1), 2),  # two compares
        (lambda x: x.clamp(min=0), 1),
        (lambda x: x.pow(2), 1),
    ],
)
def test_activation_costs_per_element(fn, per_element: int) -> None:
    assert flops_of(fn, X) == E * per_element


def test_binary_ops_broadcast_to_the_output() -> None:
    a, b = torch.randn(4, 5), torch.randn(5)
    assert flops_of(torch.add, a, b) == 4 * 5  # one add per output element
    assert flops_of(torch.add, a, b, alpha=2) == 2 * 4 * 5  # a + 2·b: multiply and add
    assert flops_of(lambda: torch.where(a > 0, a, b)) == 4 * 5 + 4 * 5  # the compare, then the select


def test_integer_and_boolean_ops_are_free_but_move_bytes() -> None:
    a, b = torch.ones(8, dtype=torch.bool), torch.zeros(8, dtype=torch.bool)
    with flopwise.counting() as c:
        torch.logical_and(a, b)
    assert c.report.flops == 0 and c.report.unsupported == {}
    assert (c.report.bytes_read, c.report.bytes_written) == (8 + 8, 8)  # one byte per bool


def test_softmax_is_3n_minus_1_per_row() -> None:
    x = torch.randn(6, 10)
    assert flops_of(torch.softmax, x, dim=-1) == 6 * (3 * 10 - 1)  # guide: n exps, n−1 adds, n divides
    assert flops_of(torch.softmax, x, dim=0) == 10 * (3 * 6 - 1)  # rows along the other dim
    assert flops_of(torch.log_softmax, x, dim=-1) == 6 * 3 * 10  # n exps, n−1 adds, a log, n subtracts


def test_softmax_backward_is_4n_minus_1_per_row() -> None:
    x = torch.randn(6, 10, requires_grad=True)
    y = torch.softmax(x, dim=-1)
    with flopwise.counting() as c:
        y.backward(torch.ones_like(y))
    assert c.report.by_operator()["aten._softmax_backward_data"].flops == 6 * (4 * 10 - 1)


def test_dropout_is_free_at_inference_and_2_per_element_in_training() -> None:
    drop = nn.Dropout(0.5)
    assert flopwise.count(drop.eval(), X).flops == 0  # guide: dropout 0 at inference
    with torch.no_grad(), flopwise.counting() as c:
        drop.train()(X)
    # training: the mask multiply and the 1/(1−p) scale; the random draw (bernoulli) is free
    assert c.report.flops == 2 * E
    assert c.report.unsupported == {}


def test_activation_gradients() -> None:
    x = torch.randn(3, 7, requires_grad=True)
    for fn, name, per_element in [
        (torch.relu, "aten.threshold_backward", 1),  # compare/select
        (torch.sigmoid, "aten.sigmoid_backward", 3),  # g·y·(1 − y)
        (torch.tanh, "aten.tanh_backward", 3),  # g·(1 − y²)
        (F.gelu, "aten.gelu_backward", 11),  # g·(Φ(x) + x·φ(x))
        (F.silu, "aten.silu_backward", 9),  # σ (4), then g·s·(1 + x·(1 − s))
    ]:
        y = fn(x)
        with flopwise.counting() as c:
            y.backward(torch.ones_like(y))
        assert c.report.by_operator()[name].flops == 3 * 7 * per_element, name
        assert c.report.unsupported == {}


@settings(max_examples=25, deadline=None)
@given(
    batch=st.integers(1, 5),
    features=st.integers(1, 9),
    op=st.sampled_from(["relu", "sigmoid", "tanh", "gelu", "silu", "hardswish", "exp", "mul", "add", "clamp"]),
)
def test_in_place_and_functional_variants_agree(batch: int, features: int, op: str) -> None:
    x = torch.randn(batch, features)
    functional = {
        "mul": lambda t: torch.mul(t, 3.0),
        "add": lambda t: torch.add(t, 1.0),
        "clamp": lambda t: torch.clamp(t, -1, 1),
    }.get(op, getattr(torch, op, None) or getattr(F, op))
    in_place = {"mul": lambda t: t.mul_(3.0), "add": lambda t: t.add_(1.0), "clamp": lambda t: t.clamp_(-1, 1)}.get(
        op, lambda t: getattr(t, f"{op}_")()
    )
    if op in ("gelu", "silu", "hardswish"):
        in_place = {
            "gelu": lambda t: t.copy_(F.gelu(t)),
            "silu": lambda t: F.silu(t, inplace=True),
            "hardswish": lambda t: F.hardswish(t, inplace=True),
        }[op]
    with torch.no_grad(), flopwise.counting() as a:
        functional(x.clone())
    y = x.clone()
    with torch.no_grad(), flopwise.counting() as b:
        in_place(y)
    assert a.report.flops == b.report.flops > 0
    with flopwise.counting() as c:  # the out= form too
        torch.sigmoid(x, out=torch.empty_like(x))
    assert c.report.flops == batch * features * 4


@settings(max_examples=20, deadline=None)
@given(batch=st.integers(1, 4), width=st.integers(1, 12))
def test_costs_scale_linearly_with_batch(batch: int, width: int) -> None:
    model = nn.Sequential(nn.Linear(width, 8), nn.GELU(), nn.LayerNorm(8), nn.Softmax(-1))
    one = flopwise.count(model, torch.randn(1, width))
    many = flopwise.count(model, torch.randn(batch, width))
    assert (many.macs, many.flops) == (batch * one.macs, batch * one.flops)
    assert many.bytes_written == batch * one.bytes_written
