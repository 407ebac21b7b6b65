"""Quantized models counted: integer MACs of the quantized products, packed weights counted as parameters by
dtype, module types as torch names them, repeated counts stable in every mode."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import flopwise

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # torch.ao.quantization is deprecated in favour of torchao
    from torch.ao import quantization as tq


def _dynamic_linear() -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tq.quantize_dynamic(nn.Sequential(nn.Linear(64, 128)), {nn.Linear}, dtype=torch.qint8)


@pytest.mark.parametrize("mode", ["real", "fake", "meta"])
def test_dynamic_quantized_linear(mode: str) -> None:
    model, x = _dynamic_linear(), torch.rand(4, 64)
    for _ in range(2):  # a second fake count used to crash in fake tensors' dispatch cache
        r = flopwise.count(model, x, mode=mode)
        assert r.complete, r.unsupported
        assert r.macs == 4 * 64 * 128 == 32_768  # rows·K·N int8 MACs
        assert r.params == 64 * 128 + 128 == 8_320  # packed weight + bias
        assert r.trainable_params == 0
        assert r.param_bytes == {"qint8": 64 * 128 * 1, "float32": 128 * 4}
        assert r["0"].type == "DynamicQuantizedLinear"


class _Static(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.quant, self.dequant = tq.QuantStub(), tq.DeQuantStub()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 8 * 8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(self.quant(x))
        return self.dequant(self.fc(x.flatten(1)))


def test_static_quantized_conv_and_linear() -> None:
    model = _Static().eval()
    model.qconfig = tq.get_default_qconfig("x86")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tq.prepare(model, inplace=True)
        model(torch.rand(2, 3, 8, 8))  # calibration
        tq.convert(model, inplace=True)
    r = flopwise.count(model, torch.rand(2, 3, 8, 8))
    conv = 2 * 8 * 8 * 3 * 3 * 3 * 8  # N·H_out·W_out·K_h·K_w·C_in·C_out
    fc = 2 * 512 * 10  # rows·K·N
    assert r["conv"].macs == conv == 27_648
    assert r["fc"].macs == fc == 10_240
    assert r["conv"].params == 8 * 3 * 3 * 3 + 8  # packed weight + bias
    assert r["fc"].params == 512 * 10 + 10
    assert r["conv"].type == "QuantizedConv2d"
    assert r["fc"].type == "QuantizedLinear"
    assert r.param_bytes["qint8"] == 8 * 27 + 5120


def test_int_mm_counts_int8_macs() -> None:
    a = torch.randint(-8, 8, (32, 64), dtype=torch.int8)
    b = torch.randint(-8, 8, (64, 32), dtype=torch.int8)
    with flopwise.counting() as c:
        torch._int_mm(a, b)
    assert c.report.macs == 32 * 64 * 32  # M·K·N
