"""Complex tensors are counted in real arithmetic: 1 complex multiply-add = 4 real MACs; a complex multiply is
6 real FLOPs, a complex add 2; a complex convolution runs as 3 real convolutions (Gauss's trick)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import flopwise

C = torch.cfloat


def counted(fn, *args, convention: str = "default", **kwargs) -> flopwise.Report:
    with torch.no_grad(), flopwise.counting(convention) as c:
        fn(*args, **kwargs)
    assert c.report.unsupported == {}
    return c.report


def test_complex_linear_is_four_real_macs_per_complex_mac() -> None:
    layer = nn.Linear(32, 16, dtype=C)
    r = flopwise.count(layer, torch.randn(4, 32, dtype=C))
    assert r.macs == 4 * (4 * 32 * 16)  # 2,048 complex MACs (rows·in·out) = 8,192 real MACs
    assert r.flops == 2 * 8_192 + 2 * 4 * 16  # 2 per real MAC + a complex bias add (2 real adds) per output
    call = next(c for c in r.calls if c.op == "aten.addmm")
    assert call.work.macs is not None and call.work.macs.expr == "4·M·K·N"  # the factor is shown
    r = flopwise.count(layer, torch.randn(4, 32, dtype=C), convention="exact")
    # each complex output is 2 real dot products of length 2·K: 2·(2·2·32 − 1) FLOPs, plus 2 for the bias
    assert r.flops == 4 * 16 * (2 * (2 * 2 * 32 - 1) + 2)


def test_complex_matmul_family() -> None:
    def z(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, dtype=C)

    assert counted(torch.mm, z(4, 5), z(5, 6)).macs == 4 * 4 * 5 * 6  # 4·M·K·N
    assert counted(torch.bmm, z(3, 4, 5), z(3, 5, 6)).macs == 4 * 3 * 4 * 5 * 6  # 4·B·M·K·N
    assert counted(torch.baddbmm, z(3, 4, 6), z(3, 4, 5), z(3, 5, 6)).macs == 4 * 3 * 4 * 5 * 6
    assert counted(torch.matmul, z(2, 3, 4, 5), z(5, 6)).macs == 4 * 2 * 3 * 4 * 5 * 6
    assert counted(torch.einsum, "bij,bjk->bik", z(3, 4, 5), z(3, 5, 6)).macs == 4 * 3 * 4 * 5 * 6
    assert counted(torch.mv, z(4, 5), z(5)).macs == 4 * 4 * 5  # 4·M·K
    assert counted(torch.dot, z(5), z(5)).macs == 4 * 5  # 4·K
    assert counted(torch.mm, torch.randn(4, 5), torch.randn(5, 6)).macs == 4 * 5 * 6  # real: unchanged


def test_complex_elementwise() -> None:
    a, b = torch.randn(10, dtype=C), torch.randn(10, dtype=C)
    assert counted(torch.mul, a, b).flops == 10 * 6  # (ac − bd) + (ad + bc)i: 4 multiplies, 2 adds
    assert counted(torch.add, a, b).flops == 10 * 2  # real and imaginary adds
    assert counted(torch.add, a, b, alpha=2).flops == 10 * (2 + 6)  # alpha·b is a complex multiply
    assert counted(torch.mul, a, 2.0).flops == 10 * 6  # the scalar is promoted: the kernel multiplies complex
    assert counted(torch.div, a, b).flops == 10 * 11  # 6 multiplies, 3 adds, 2 divides
    assert counted(torch.mul, a.real, b.real).flops == 10  # real parts: 1 each


def test_complex_convolution_runs_as_three_real_ones() -> None:
    x, w = torch.randn(1, 2, 5, 5, dtype=C), torch.randn(3, 2, 3, 3, dtype=C)
    r = counted(F.conv2d, x, w)
    convs = [c for c in r.calls if c.op == "aten.convolution"]
    assert len(convs) == 3 and all(c.work.note == "" for c in convs)  # real convolutions, not complex
    assert r.macs == 3 * (3 * 3 * 3 * 3 * 2 * 3)  # 3 × H_out·W_out·K_h·K_w·C_in·C_out = 3 × 486
