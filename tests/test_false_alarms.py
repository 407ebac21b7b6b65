"""Cheap ops that used to mark an exact count INCOMPLETE: each has a cost entry, and the count is complete."""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F

import flopwise


def counted(fn, *args, **kwargs) -> flopwise.Report:
    with torch.no_grad(), flopwise.counting() as c:
        fn(*args, **kwargs)
    assert c.report.unsupported == {}, c.report.unsupported
    return c.report


def test_one_hot_is_integer_work() -> None:
    r = counted(F.one_hot, torch.tensor([0, 2, 1, 2]), 3)  # aminmax of the ids, then a scatter of ones
    assert "aten.aminmax" in r.by_operator()
    assert r.flops == 0  # integer compares and a scatter: no floating point


def test_aminmax_on_floats_is_two_reductions_of_compares() -> None:
    r = counted(torch.aminmax, torch.randn(4, 5), dim=1)
    assert r.flops == 2 * (4 * 5 - 4)  # min and max: (n − 1) compares per row each, 4 rows of 5
    assert counted(torch.aminmax, torch.arange(10)).flops == 0  # integers
    r = counted(torch.ops.aten._aminmax, torch.randn(4, 5), 1)  # the older name of the same kernel
    assert r.flops == 2 * (4 * 5 - 4) and "aten._aminmax" in r.by_operator()
    assert counted(torch.ops.aten._aminmax, torch.randn(6)).flops == 2 * (6 - 1)  # whole tensor: one row of 6


def test_histc() -> None:
    x = torch.randn(10)
    r = counted(torch.histc, x, bins=4, min=-1, max=1)
    assert r.flops == 10 * (2 + 3 + 1)  # per element: 2 range compares, (x − lo)·bins/(hi − lo), add into a bin
    r = counted(torch.histc, x, bins=4)  # min = max = 0: the range is the data's own min and max first
    assert r.flops == 10 * 6 + 2 * (10 - 1)


def test_floor_divide() -> None:
    assert counted(torch.floor_divide, torch.arange(10), 3).flops == 0  # integer division
    assert counted(torch.floor_divide, torch.randn(10), 0.3).flops == 10 * 2  # a divide and a floor each


def test_linalg_check_errors_is_free() -> None:
    r = counted(torch.ops.aten._linalg_check_errors, torch.zeros((), dtype=torch.int32), "linalg.inv", is_matrix=True)
    assert r.flops == 0 and r.by_operator()["aten._linalg_check_errors"].bytes_read == 4  # one int32 read


def test_quantize_and_dequantize() -> None:
    x = torch.randn(4, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # quantized dtypes are deprecated in torch 2.14
        r = counted(lambda: torch.quantize_per_tensor(x, 0.1, 3, torch.qint8).dequantize())
        assert r.flops == 32 * 5 + 32 * 2  # q = clamp(round(x/s) + z): 5; x = (q − z)·s: 2; 32 elements
        scales, zeros = torch.full((4,), 0.1), torch.zeros(4, dtype=torch.long)
        r = counted(lambda: torch.quantize_per_channel(x, scales, zeros, 0, torch.quint8).dequantize())
        assert r.by_operator()["aten.quantize_per_channel"].flops == 32 * 5
        assert r.by_operator()["aten.dequantize"].flops == 32 * 2
