"""Quantized kernels outside the contractions (formulas/quantized_elementwise.py): each costs the FLOPs of the float
op it quantizes, under the dtype the x86 kernel computes in; eager, FX-quantized and PT2E-style graphs complete."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import flopwise

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from torch.ao import quantization as tq
    from torch.ao.quantization import fx as _fx  # noqa: F401 - registers torch.ops.quantized_decomposed
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

Q = torch.ops.quantized
N, C, H, W = 2, 3, 4, 4
E = N * C * H * W  # 96 elements


def _q(*shape: int) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.quantize_per_tensor(torch.randn(shape), 0.1, 128, torch.quint8)


def _flops(call: object) -> flopwise.Report:
    with warnings.catch_warnings(), flopwise.counting() as c:
        warnings.simplefilter("ignore")
        call()  # type: ignore[operator]
    assert c.report.complete, c.report.unsupported
    return c.report


A, B, OUT, WIDE = _q(N, C, H, W), _q(N, C, H, W), _q(N, C, H, W), _q(N, 2 * C, H, W)
SLOPES = _q(C)
PER_ELEMENT = [  # (op, call, FLOPs per element, the dtype its FLOPs count under)
    ("add", lambda: Q.add(A, B, 0.2, 0), 1, "float32"),  # dequantize both, add in float32, requantize
    ("add_relu", lambda: Q.add_relu(A, B, 0.2, 0), 2, "float32"),  # the add and the ReLU (a max with 0)
    ("add_out", lambda: Q.add_out(A, B, out=OUT), 1, "float32"),
    ("add.Scalar", lambda: Q.add(A, 2.0), 1, "int8"),  # a scalar is added to the integers
    ("add_scalar", lambda: Q.add_scalar(A, 2.0), 1, "int8"),
    ("add_scalar_relu", lambda: Q.add_scalar_relu(A, 2.0), 2, "int8"),
    ("mul", lambda: Q.mul(A, B, 0.2, 0), 1, "int8"),  # a widening integer multiply, then a requantizing scale
    ("mul_relu", lambda: Q.mul_relu(A, B, 0.2, 0), 2, "int8"),
    ("mul_scalar", lambda: Q.mul_scalar(A, 2.0), 1, "int8"),
    ("hardswish", lambda: Q.hardswish(A, 0.1, 0), 5, "float32"),  # x·clamp(x + 3, 0, 6)/6: add, 2 compares, ÷, ·
    ("sigmoid", lambda: Q.sigmoid(A, 1 / 256, 0), 4, "float32"),  # negate, exp, add, divide
    ("elu", lambda: Q.elu(A, 0.1, 0), 4, "float32"),  # compare, exp, subtract, multiply
    ("celu", lambda: Q.celu(A, 0.1, 0), 4, "float32"),
    ("leaky_relu", lambda: Q.leaky_relu(A, 0.01, False, 0.1, 0), 2, "float32"),  # compare, multiply
    ("prelu", lambda: Q.prelu(A, SLOPES, 0.1, 0), 2, "float32"),
    ("threshold", lambda: Q.threshold(A, 0.5, 0.0), 1, "float32"),  # one compare
    ("relu6", lambda: Q.relu6(A), 2, "int8"),  # clamp to [0, 6]: two compares on the integers
    ("clamp", lambda: Q.clamp(A, 0.0, 1.0), 2, "int8"),  # one compare per bound
    ("clamp, one bound", lambda: Q.clamp(A, 0.0), 1, "int8"),
    (
        "batch_norm2d",
        lambda: Q.batch_norm2d(A, torch.ones(C), torch.zeros(C), torch.zeros(C), torch.ones(C), 1e-5, 0.1, 0),
        4,
        "float32",
    ),  # subtract, divide, scale, shift
    (
        "batch_norm_relu",
        lambda: Q.batch_norm_relu(A, torch.ones(C), torch.zeros(C), torch.zeros(C), torch.ones(C), 1e-5, 0.1, 0),
        5,
        "float32",
    ),
]


@pytest.mark.parametrize(("op", "call", "per_element", "dtype"), PER_ELEMENT, ids=[p[0] for p in PER_ELEMENT])
def test_a_quantized_elementwise_op_costs_its_float_op(op: str, call: object, per_element: int, dtype: str) -> None:
    r = _flops(call)
    assert r.flops == per_element * E
    assert r.by_dtype()[dtype].flops == per_element * E
    assert r.macs == 0


def test_concatenation_copies_and_its_fused_relu_is_one_compare() -> None:
    assert _flops(lambda: Q.cat([A, B], 1, 0.1, 0)).flops == 0
    assert _flops(lambda: Q.cat_out([A, B], 1, out=WIDE)).flops == 0
    assert _flops(lambda: Q.cat_relu([A, B], 1, 0.1, 0)).flops == 2 * E  # a ReLU per output element


def test_quantized_norms_and_softmax_cost_their_float_ops() -> None:
    weight, bias = torch.ones(H, W), torch.zeros(H, W)
    rows = N * C  # LayerNorm over the last two dims: 6 rows of 16
    r = _flops(lambda: Q.layer_norm(A, [H, W], weight, bias, 1e-5, 0.1, 0))
    assert r.flops == 7 * E + 4 * rows == 696  # per element 7 (mean, centre, square, var, ·rstd, ·γ, +β), per row 4
    r = _flops(lambda: Q.layer_norm(A, [H, W], None, None, 1e-5, 0.1, 0))
    assert r.flops == 5 * E + 4 * rows == 504  # no weight and bias: 2 fewer per element
    r = _flops(lambda: Q.group_norm(A, 3, torch.ones(C), torch.zeros(C), 1e-5, 0.1, 0))
    assert r.flops == 7 * E + 4 * N * 3 == 696  # 4 per (sample, group)
    r = _flops(lambda: Q.instance_norm(A, torch.ones(C), torch.zeros(C), 1e-5, 0.1, 0))
    assert r.flops == 7 * E + 4 * N * C == 696  # a group per channel
    r = _flops(lambda: Q.softmax(A, 1, 1 / 256, 0))
    assert r.flops == (E // C) * (3 * C - 1) == 256  # 3n − 1 per row of n = C = 3, 32 rows
    assert r.by_dtype()["float32"].flops == 256


def test_pt2e_reference_ops() -> None:
    qd = torch.ops.quantized_decomposed
    x = torch.randn(4, 8)
    r = _flops(
        lambda: qd.dequantize_per_tensor(
            qd.quantize_per_tensor(x, 0.1, 0, -128, 127, torch.int8), 0.1, 0, -128, 127, torch.int8
        )
    )
    assert r.flops == 5 * 32 + 2 * 32  # quantize 5 per element (÷scale, round, +zp, 2 compares), dequantize 2
    assert _flops(lambda: qd.choose_qparams.tensor(x, -128, 127, 1e-5, torch.int8)).flops == 2 * 32  # min and max


class _Block(nn.Module):
    """A residual block with a LayerNorm, a multiplicative gate and hardswish: what FX quantization turns into
    quantized.layer_norm, quantized.mul, quantized.hardswish and quantized.add."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 1)
        self.norm = nn.LayerNorm([4, 4])
        self.act = nn.Hardswish()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.norm(self.conv(x)))
        return x + y * torch.sigmoid(y)


def _fx_quantized() -> nn.Module:
    x = torch.rand(1, 4, 4, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepared = prepare_fx(_Block().eval(), tq.get_default_qconfig_mapping("x86"), example_inputs=(x,))
        prepared(x)
        return convert_fx(prepared)


@pytest.mark.parametrize("mode", ["real", "fake"])
def test_an_fx_quantized_block_is_complete(mode: str) -> None:
    model, x = _fx_quantized(), torch.rand(1, 4, 4, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = flopwise.count(model, x, mode=mode)
    assert r.complete, r.unsupported
    ops = r.operator_calls()
    assert {"quantized.layer_norm", "quantized.hardswish", "quantized.mul", "quantized.add"} <= set(ops)
    e = 4 * 4 * 4  # 64 elements
    by_op = r.by_operator()
    assert by_op["quantized.layer_norm"].flops == 7 * e + 4 * 4  # 4 rows of 16
    assert by_op["quantized.hardswish"].flops == 5 * e
    assert by_op["quantized.mul"].flops == e and by_op["quantized.add"].flops == e
    assert r.macs == e * 4  # the 1×1 convolution: H·W·C_in·C_out = 16·4·4
