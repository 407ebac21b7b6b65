"""Costs split by the dtype each op computed in (`report.by_dtype()`), and the energy estimate built on them."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import flopwise
from flopwise.core.cost import Cost

BF16_ADD, BF16_MULT = 0.4, 1.1  # pJ: Horowitz's fp16 figures, which bfloat16 borrows
FP32_ADD = 0.9
DRAM_LOW, DRAM_HIGH = 1300 / 8, 2600 / 8  # pJ per byte: 1.3–2.6 nJ per 64-bit access


class _Autocast(nn.Module):
    """A Linear under CPU autocast bfloat16, then a float32 op outside it."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = self.fc(x)
        return torch.relu(y.float())


# Hand split of _Autocast on a 4×16 input. Autocast casts x (4×16), W (8×16) and b (8) to bfloat16 (each cast
# counts under the dtype it produces), then addmm multiplies in bfloat16; y.float() and relu are float32.
BF16 = Cost(
    macs=4 * 16 * 8,  # R·K·N = 512
    flops=2 * 4 * 16 * 8 + 4 * 8,  # 2 per MAC + one bias add per output = 1,056
    bytes_read=(8 + 8 * 16 + 4 * 16) * 4 + (8 + 4 * 16 + 16 * 8) * 2,  # casts read float32; addmm reads bf16: 1,200
    bytes_written=(8 + 8 * 16 + 4 * 16) * 2 + 4 * 8 * 2,  # casts write bf16; addmm writes 4×8 bf16: 464
)
FP32 = Cost(
    macs=0,
    flops=4 * 8,  # relu: 1 per element
    bytes_read=4 * 8 * 2 + 4 * 8 * 4,  # y.float() reads bf16; relu reads float32: 192
    bytes_written=4 * 8 * 4 + 4 * 8 * 4,  # both write float32: 256
)


@pytest.mark.parametrize("mode", ["real", "fake", "meta"])
def test_autocast_splits_bfloat16_from_float32(mode: str) -> None:
    r = flopwise.count(_Autocast(), torch.rand(4, 16), mode=mode)
    assert r.by_dtype() == {"bfloat16": BF16, "float32": FP32}
    assert sum(r.by_dtype().values(), Cost()) == r.total  # every op that costs something has a dtype
    assert r.param_bytes == {"float32": (8 * 16 + 8) * 4}  # weights stay float32: autocast casts copies


def test_energy_estimate_from_the_split() -> None:
    e = flopwise.count(_Autocast(), torch.rand(4, 16)).energy()
    bf16_pj = 512 * (BF16_MULT + BF16_ADD) + (1056 - 2 * 512) * BF16_ADD  # MACs·(mult + add) + other FLOPs·add
    fp32_pj = 32 * FP32_ADD  # relu: 32 adds' worth
    assert e.compute_j == pytest.approx((bf16_pj + fp32_pj) * 1e-12)
    moved = 1200 + 464 + 192 + 256  # every byte read or written, all dtypes
    assert e.memory_j == pytest.approx((moved * DRAM_LOW * 1e-12, moved * DRAM_HIGH * 1e-12))
    assert e.total_j[0] == pytest.approx(e.compute_j + e.memory_j[0])
    assert e.complete and e.process_node == "45 nm" and "Horowitz, ISSCC 2014" in e.source
    assert any("bfloat16 not in the source" in note for note in e.notes)  # the borrowed figure is said
    assert str(e).startswith("ESTIMATE")


def test_scaled_mm_counts_float8_products() -> None:
    a = torch.randn(16, 32).to(torch.float8_e4m3fn)
    b = torch.randn(64, 32).to(torch.float8_e5m2).t()  # e4m3 × e5m2, as in a backward pass: both "float8"
    with flopwise.counting() as c:
        torch._scaled_mm(a, b, torch.tensor(1.0), torch.tensor(2.0), out_dtype=torch.bfloat16)
    split = c.report.by_dtype()
    assert list(split) == ["float8"]  # not the bfloat16 output, not the float32 scales
    assert split["float8"].macs == 16 * 32 * 64  # M·K·N
    assert split["float8"].bytes_read == 16 * 32 + 32 * 64 + 2 * 4  # a, b at one byte each, two float32 scales
    assert split["float8"].bytes_written == 16 * 64 * 2  # bfloat16 output
    e = c.report.energy()
    assert not e.complete and "float8" in e.left_out  # no float8 figure in the source: refused, not guessed
    assert e.compute_j == 0
    moved = 16 * 32 + 32 * 64 + 8 + 16 * 64 * 2
    assert e.memory_j[0] == pytest.approx(moved * DRAM_LOW * 1e-12)  # its bytes still cost DRAM energy


def test_int_mm_is_int8() -> None:
    a = torch.randint(-8, 8, (32, 64), dtype=torch.int8)
    b = torch.randint(-8, 8, (64, 32), dtype=torch.int8)
    with flopwise.counting() as c:
        torch._int_mm(a, b)
    assert c.report.by_dtype()["int8"].macs == 32 * 64 * 32  # M·K·N, int32 accumulators
    e = c.report.energy()
    assert e.compute_j == pytest.approx(32 * 64 * 32 * (0.2 + 0.03) * 1e-12)  # int8 mult + add per MAC


def test_weight_only_int8_and_int4_multiply_in_the_activation_dtype() -> None:
    x = torch.randn(4, 64, dtype=torch.bfloat16)
    w8 = torch.randint(-8, 8, (16, 64), dtype=torch.int8)
    packed4 = torch.ops.aten._convert_weight_to_int4pack_for_cpu(torch.randint(0, 16, (16, 64), dtype=torch.int32), 2)
    scales_and_zeros = torch.rand(64 // 32, 16, 2, dtype=torch.bfloat16)  # groups of 32 along K
    with flopwise.counting() as c:
        torch.ops.aten._weight_int8pack_mm(x, w8, torch.rand(16, dtype=torch.bfloat16))
    split = c.report.by_dtype()
    assert list(split) == ["bfloat16"]  # the int8 weight is converted to bfloat16 before the products
    assert split["bfloat16"].macs == 4 * 64 * 16  # M·K·N
    assert split["bfloat16"].bytes_read == 4 * 64 * 2 + 16 * 64 * 1 + 16 * 2  # x, the int8 weight, scales
    with flopwise.counting() as c:
        torch.ops.aten._weight_int4pack_mm_for_cpu(x, packed4, 32, scales_and_zeros)
    split = c.report.by_dtype()
    assert split["bfloat16"].macs == 4 * 64 * 16
    assert split["bfloat16"].bytes_read == 4 * 64 * 2 + 16 * 64 // 2 + 2 * 16 * 2 * 2  # x, 4 bits a weight, scales


def test_dynamic_quantized_linear_multiplies_int8() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torch.ao import quantization as tq

        model = tq.quantize_dynamic(nn.Sequential(nn.Linear(64, 128)), {nn.Linear}, dtype=torch.qint8)
    for mode in ("real", "fake"):
        r = flopwise.count(model, torch.rand(4, 64), mode=mode)
        split = r.by_dtype()
        assert split["int8"].macs == 4 * 64 * 128 == r.macs  # rows·K·N: the products are int8, the tensors float
        assert r.param_bytes == {"qint8": 64 * 128, "float32": 128 * 4}  # weight memory by dtype
        linear = next(c for c in r.calls if c.op == "quantized.linear_dynamic")
        assert linear.dtype == "int8"
        assert linear.cost.bytes_read == 4 * 64 * 4 + 64 * 128 + 128 * 4  # x, the packed int8 weight, float bias


def test_comparisons_count_under_their_inputs_and_bool_ops_under_bool() -> None:
    x = torch.rand(3, 5, dtype=torch.float16)
    with flopwise.counting() as c:
        mask = x > 0.5  # float16 compare, bool output
        mask & mask
    split = c.report.by_dtype()
    assert split["float16"].bytes_read == 3 * 5 * 2 and split["float16"].bytes_written == 3 * 5  # bool out
    assert split["bool"].bytes_read == 3 * 5 and split["bool"].bytes_written == 3 * 5  # x & x reads x once
