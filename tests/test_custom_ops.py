"""Custom ops: a formula registered globally with the decorator, or per count with `overrides`.

This is the example of docs/costs.md ("Costing your own ops"), run as a test.
"""

from __future__ import annotations

import torch

import flopwise
from flopwise.formulas.registry import FORMULAS


@torch.library.custom_op("flopwise_example::fused_scale_shift", mutates_args=())
def fused_scale_shift(x: torch.Tensor, scale: float, shift: float) -> torch.Tensor:
    return x * scale + shift


@fused_scale_shift.register_fake
def _(x: torch.Tensor, scale: float, shift: float) -> torch.Tensor:
    return torch.empty_like(x)


class Block(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fused_scale_shift(x, 2.0, 1.0)


def scale_shift_formula(result, x, scale, shift) -> flopwise.Work:
    # one multiply and one add per element
    return flopwise.Work(flops=(flopwise.Flops("elementwise", flopwise.Term("2·E", E=x.numel())),))


OP = torch.ops.flopwise_example.fused_scale_shift
X = torch.randn(4, 8)


def test_an_unknown_custom_op_is_reported_not_zeroed() -> None:
    r = flopwise.count(Block(), X)
    assert r.unsupported == {"flopwise_example.fused_scale_shift": 1}
    assert not r.complete


def test_per_count_override_costs_or_ignores_the_op() -> None:
    r = flopwise.count(Block(), X, overrides={OP: scale_shift_formula})
    assert r.flops == 2 * 4 * 8  # 2·E
    assert r.unsupported == {}
    ignored = flopwise.count(Block(), X, overrides={OP: None})  # explicitly ignored: 0, and not unsupported
    assert ignored.flops == 0 and ignored.unsupported == {}
    assert ignored.bytes_read == 4 * 8 * 4  # its bytes still count


def test_global_decorator_registers_the_formula() -> None:
    try:
        flopwise.formula(OP)(scale_shift_formula)
        r = flopwise.count(Block(), X, mode="fake")
        assert r.flops == 2 * 4 * 8
        assert r.by_operator()["flopwise_example.fused_scale_shift"].flops == 2 * 4 * 8
    finally:
        FORMULAS.pop("flopwise_example.fused_scale_shift", None)  # leave the registry as other tests expect
