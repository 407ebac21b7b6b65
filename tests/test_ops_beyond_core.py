"""Formulas added by the all-ops triage: foreach and fused optimizers, quantized products, out= and backend
forms of costed ops, prims and collectives reusing aten entries. Arithmetic by hand."""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F

import flopwise
from flopwise.formulas.registry import FORMULAS, ZERO_COST


def by_op(fn):  # type: ignore[no-untyped-def]
    with torch.no_grad(), flopwise.counting() as c:
        fn()
    return c.report


def test_foreach_costs_the_per_tensor_op_summed() -> None:
    xs, ys = [torch.randn(3, 4), torch.randn(5)], [torch.randn(3, 4), torch.randn(5)]
    r = by_op(lambda: torch._foreach_add_(xs, ys, alpha=2.0))
    assert r.by_operator()["aten._foreach_add_"].flops == (12 + 5) * 2  # a ± alpha·b: 2 per element, 17 elements
    assert r.by_operator()["aten._foreach_add_"].bytes_written == (12 + 5) * 4  # in place: the tensors updated
    r = by_op(lambda: torch._foreach_sqrt(xs))
    assert r.flops == 12 + 5 and r.unsupported == {}  # one evaluation per element


def test_fused_adam_and_adamw_per_element() -> None:
    params = [torch.nn.Parameter(torch.randn(4, 3)), torch.nn.Parameter(torch.randn(6))]
    for p in params:
        p.grad = torch.randn_like(p)
    for optimizer, per_element in (
        (torch.optim.Adam(params, fused=True), 13),
        (torch.optim.AdamW(params, weight_decay=0.1, fused=True), 13 + 1),
    ):
        r = by_op(optimizer.step)
        op = "aten._fused_adamw_" if isinstance(optimizer, torch.optim.AdamW) else "aten._fused_adam_"
        assert r.by_operator()[op].flops == (12 + 6) * per_element  # lerp 3, v 4, denom 3, update 3 (+ decay 1)


def test_quantized_linear_counts_int8_macs() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # quantized tensors are deprecated in torch 2.14
        x = torch.quantize_per_tensor(torch.randn(5, 8), 0.1, 0, torch.quint8)
        w = torch.quantize_per_tensor(torch.randn(16, 8), 0.1, 0, torch.qint8)
        packed = torch.ops.quantized.linear_prepack(w, None)
        r = by_op(lambda: torch.ops.quantized.linear(x, packed, 0.2, 0))
        assert r.macs == 5 * 8 * 16  # rows·K·N
        wc = torch.quantize_per_tensor(torch.randn(6, 2, 3, 3), 0.1, 0, torch.qint8)
        pc = torch.ops.quantized.conv2d_prepack(wc, None, [1, 1], [1, 1], [1, 1], 2)
        xc = torch.quantize_per_tensor(torch.randn(1, 4, 5, 5), 0.1, 0, torch.quint8)
        r = by_op(lambda: torch.ops.quantized.conv2d.new(xc, pc, 0.2, 0))
        assert r.macs == 5 * 5 * 3 * 3 * (4 // 2) * 6 * 1  # H·W·K_h·K_w·(C_in/groups)·C_out·N


def test_linear_out_and_softmax_out_are_costed() -> None:
    x, w, b = torch.randn(4, 8), torch.randn(16, 8), torch.randn(16)
    out = torch.empty(4, 16)
    r = by_op(lambda: torch.ops.aten.linear.out(x, w, b, out=out))
    assert r.macs == 4 * 8 * 16 and r.unsupported == {}  # rows·K·N; 64 bias adds
    assert r.flops == 2 * 4 * 8 * 16 + 4 * 16
    r = by_op(lambda: torch.ops.aten.softmax.int_out(x, 1, None, out=torch.empty(4, 8)))
    assert r.flops == 4 * (3 * 8 - 1)  # 3n − 1 per row


def test_bilinear_layer_through_trilinear() -> None:
    x1, x2, w = torch.randn(3, 5), torch.randn(3, 7), torch.randn(4, 5, 7)
    r = by_op(lambda: F.bilinear(x1, x2, w))
    assert r.by_operator()["aten._trilinear"].macs == 3 * 4 * 5 * 7  # N·O·I₁·I₂


def test_backend_convolution_reads_groups_from_shapes() -> None:
    x, w = torch.randn(1, 4, 6, 6), torch.randn(8, 2, 3, 3)  # groups 2
    dense = w.repeat(1, 2, 1, 1)  # 8×4×3×3: groups 1
    r = by_op(lambda: torch.ops.aten._slow_conv2d_forward(x, dense, [3, 3], None, [1, 1], [0, 0]))
    assert r.macs == 4 * 4 * 3 * 3 * 4 * 8  # H_out·W_out·K·K·C_in·C_out
    r = by_op(lambda: torch.ops.aten.mkldnn_convolution(x, w, None, [0, 0], [1, 1], [1, 1], 2))
    assert r.macs == 4 * 4 * 3 * 3 * (4 // 2) * 8  # H_out·W_out·K·K·(C_in/groups)·C_out


def test_prims_reuse_the_aten_entries() -> None:
    assert FORMULAS["prims.add"] is FORMULAS["aten.add"]
    assert FORMULAS["prims.svd"] is FORMULAS["aten._linalg_svd"]
    assert ZERO_COST["prims.rev"] == ZERO_COST["aten.flip"]
    a = torch.randn(3, 4)
    r = by_op(lambda: torch.ops.prims.mul(a, a))
    assert r.flops == 12 and r.unsupported == {}  # one multiply per element


def test_collectives_are_communication() -> None:
    assert ZERO_COST["_c10d_functional.all_reduce"].startswith("communication")
    assert "_c10d_functional.wait_tensor" in ZERO_COST


def test_quantized_conv1d_unpacks_its_2d_packed_kernel() -> None:
    """A 1-d quantized kernel is packed as (C_out, C_in, 1, K): the count uses K, not the unit dimension."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # quantized tensors are deprecated in torch 2.14
        w = torch.quantize_per_tensor(torch.randn(6, 4, 3), 0.1, 0, torch.qint8)
        packed = torch.ops.quantized.conv1d_prepack(w, None, [1], [0], [1], 1)
        x = torch.quantize_per_tensor(torch.randn(2, 4, 9), 0.1, 0, torch.quint8)
        r = by_op(lambda: torch.ops.quantized.conv1d(x, packed, 0.2, 0))
        assert r.macs == 7 * 3 * 4 * 6 * 2  # L_out·K·C_in·C_out·N, L_out = 9 − 3 + 1


def test_mixed_dtypes_linear_reads_n_from_the_output() -> None:
    """CUDA-only kernel (int8/int4 weight in CUTLASS's layout): called on TensorSpecs as a count would."""
    from flopwise.formulas.registry import specs

    meta = {"device": "meta"}
    out, x = torch.empty(6, 16, **meta), torch.empty(6, 32, dtype=torch.float16, **meta)
    weight, scale = torch.empty(32, 16, dtype=torch.int8, **meta), torch.empty(16, dtype=torch.float16, **meta)
    work = FORMULAS["aten._mixed_dtypes_linear"](*specs((out, x, weight, scale)), bias=specs(scale), activation="relu")
    assert work.mac_count == 6 * 32 * 16  # rows·K·N
    assert sum(f.term.value for f in work.flops) == 6 * 16 * 3  # per output: column scale, bias add, ReLU compare
