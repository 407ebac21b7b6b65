"""Contraction formulas: matmul family, convolution, attention kernels, fused fast paths. MACs by hand."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import flopwise
from tests.models import MatmulInForward


def macs_of(fn, *args) -> int:
    with torch.no_grad(), flopwise.counting() as c:
        fn(*args)
    assert c.report.unsupported == {}
    return c.report.macs


def test_mm_addmm_and_bias_is_not_a_mac() -> None:
    a, b, bias = torch.randn(4, 5), torch.randn(5, 6), torch.randn(6)
    assert macs_of(torch.mm, a, b) == 4 * 5 * 6  # M·K·N
    with flopwise.counting() as c:
        torch.addmm(bias, a, b)
    assert c.report.macs == 4 * 5 * 6  # M·K·N; the bias adds are FLOPs, not MACs
    assert c.report.flops == 2 * 4 * 6 * 5 + 4 * 6  # 2 per MAC + one add per output
    with flopwise.counting(convention="contractions") as c:
        torch.addmm(bias, a, b)
    assert c.report.flops == 2 * 4 * 6 * 5


def test_batched_and_broadcast_matmuls() -> None:
    assert macs_of(torch.bmm, torch.randn(3, 4, 5), torch.randn(3, 5, 6)) == 3 * 4 * 6 * 5  # B·M·N·K
    assert macs_of(torch.baddbmm, torch.randn(3, 4, 6), torch.randn(3, 4, 5), torch.randn(3, 5, 6)) == 3 * 4 * 6 * 5
    # (2, 3, 4, 5) @ (5, 6): broadcast weight, 2·3 batches of 4×5 @ 5×6
    assert macs_of(torch.matmul, torch.randn(2, 3, 4, 5), torch.randn(5, 6)) == 2 * 3 * 4 * 6 * 5
    assert macs_of(torch.matmul, torch.randn(4, 5), torch.randn(5)) == 4 * 5  # matrix · vector: M·K
    assert macs_of(torch.matmul, torch.randn(5), torch.randn(5)) == 5  # dot: K
    assert macs_of(torch.einsum, "bij,bjk->bik", torch.randn(3, 4, 5), torch.randn(3, 5, 6)) == 3 * 4 * 6 * 5
    assert macs_of(torch.addbmm, torch.randn(4, 6), torch.randn(3, 4, 5), torch.randn(3, 5, 6)) == 3 * 4 * 6 * 5


def test_linear_on_3d_input_counts_every_row() -> None:
    layer = nn.Linear(256, 128)
    r = flopwise.count(layer, torch.randn(2, 10, 256))
    assert r.macs == 2 * 10 * 256 * 128  # B·S·I·O
    assert r.flops == 2 * r.macs + 2 * 10 * 128  # + bias add per output


def test_matmuls_written_in_forward_are_seen() -> None:
    r = flopwise.count(MatmulInForward(), torch.randn(2, 4, 6))
    assert r.macs == 2 * 4 * 5 * 6 + 2 * 4 * 4 * 5 + 2 * 4 * 5 * 4  # x@W + a·aᵀ + einsum(b, a)


@pytest.mark.parametrize(
    ("conv", "shape", "expected"),
    [
        (nn.Conv2d(1, 16, 3, padding=1), (1, 1, 28, 28), 28 * 28 * 3 * 3 * 1 * 16),  # H·W·K·K·Cin·Cout
        (nn.Conv2d(3, 8, 3, stride=2), (2, 3, 15, 15), 2 * 7 * 7 * 3 * 3 * 3 * 8),  # N·Ho·Wo·K·K·Cin·Cout
        (nn.Conv2d(4, 6, 3, padding=2, dilation=2), (1, 4, 9, 9), 9 * 9 * 3 * 3 * 4 * 6),  # dilation keeps 9×9
        (nn.Conv2d(8, 8, 3, padding=1, groups=8), (1, 8, 10, 10), 10 * 10 * 3 * 3 * 1 * 8),  # depthwise
        (nn.Conv2d(8, 16, 1), (1, 8, 10, 10), 10 * 10 * 1 * 1 * 8 * 16),  # pointwise
        (nn.Conv2d(8, 12, 3, padding=1, groups=4), (1, 8, 6, 6), 6 * 6 * 3 * 3 * (8 // 4) * 12),  # grouped
        (nn.Conv1d(4, 6, 5), (3, 4, 20), 3 * 16 * 5 * 4 * 6),  # N·Lo·K·Cin·Cout
        (nn.Conv3d(2, 4, 3), (1, 2, 6, 6, 6), 4 * 4 * 4 * 3 * 3 * 3 * 2 * 4),  # Do·Ho·Wo·K³·Cin·Cout
        # transposed: every input element × kernel elements × C_out/groups
        (nn.ConvTranspose2d(4, 6, 3, stride=2), (1, 4, 5, 5), 5 * 5 * 3 * 3 * 4 * 6),
        (nn.ConvTranspose2d(4, 6, 2, stride=2, groups=2), (2, 4, 5, 5), 2 * 5 * 5 * 2 * 2 * 4 * (6 // 2)),
        (nn.ConvTranspose1d(3, 5, 4), (1, 3, 7), 7 * 4 * 3 * 5),
    ],
)
def test_convolutions(conv: nn.Module, shape: tuple[int, ...], expected: int) -> None:
    r = flopwise.count(conv, torch.randn(shape))
    assert r.macs == expected
    out = conv(torch.randn(shape))
    assert r.flops == 2 * expected + out.numel()  # bias: one add per output element


def test_conv_backward_is_twice_the_forward() -> None:
    conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    with flopwise.counting() as c:
        conv(x).sum().backward()
    forward = 2 * 8 * 8 * 3 * 3 * 3 * 8
    assert c.report.macs == forward + 2 * forward  # grad_input and grad_weight each repeat the forward


def test_matmul_backward_is_twice_the_forward() -> None:
    a = torch.randn(4, 5, requires_grad=True)
    b = torch.randn(5, 6, requires_grad=True)
    with flopwise.counting() as c:
        (a @ b).sum().backward()
    assert c.report.macs == 3 * 4 * 6 * 5  # forward + dA = dC·Bᵀ + dB = Aᵀ·dC


def sdpa_macs(b: int, h: int, l: int, s: int, e: int, ev: int) -> int:
    return b * h * l * s * e + b * h * l * s * ev  # QKᵀ + attention·V


@pytest.mark.parametrize("mask", [False, True])
def test_sdpa_on_cpu(mask: bool) -> None:
    q, k, v = torch.randn(2, 4, 6, 8), torch.randn(2, 4, 7, 8), torch.randn(2, 4, 7, 8)
    attn_mask = torch.randn(6, 7) if mask else None
    with torch.no_grad(), flopwise.counting() as c:
        F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
    assert c.report.macs == sdpa_macs(2, 4, 6, 7, 8, 8)


def test_sdpa_grouped_query_attention() -> None:
    q, k, v = torch.randn(2, 8, 6, 16), torch.randn(2, 2, 6, 16), torch.randn(2, 2, 6, 16)
    with torch.no_grad(), flopwise.counting() as c:
        F.scaled_dot_product_attention(q, k, v, enable_gqa=True, is_causal=True)
    assert c.report.macs == sdpa_macs(2, 8, 6, 6, 16, 16)  # every query head attends: H_q, not H_kv


def test_cpu_flash_kernel_is_costed() -> None:
    q = torch.randn(1, 2, 16, 8)
    with torch.no_grad(), flopwise.counting() as c:
        F.scaled_dot_product_attention(q, q, q, is_causal=True)
    assert "aten._scaled_dot_product_flash_attention_for_cpu" in c.report.operator_calls()
    assert c.report.macs == sdpa_macs(1, 2, 16, 16, 8, 8)
    (call,) = [x for x in c.report.calls if x.op.endswith("flash_attention_for_cpu")]
    assert "causal" in call.work.note
    with torch.no_grad(), flopwise.counting(convention="causal") as c:
        F.scaled_dot_product_attention(q, q, q, is_causal=True)
    pairs = 16 * 17 // 2  # query i attends keys 0..i
    assert c.report.macs == 1 * 2 * pairs * 8 + 1 * 2 * pairs * 8  # B·H·P·E + B·H·P·E_v


def meta(*shape: int) -> torch.Tensor:
    return torch.empty(shape, device="meta")


def test_gpu_attention_kernels_from_their_shapes() -> None:
    # the CUDA kernels cannot run here; their formulas are pure functions of shapes, checked on meta tensors
    from flopwise.formulas import attention

    b, h, l, s, e = 2, 4, 6, 7, 8
    heads_first = (meta(b, h, l, e), meta(b, h, s, e), meta(b, h, s, e))
    assert attention.flash(None, *heads_first).mac_count == sdpa_macs(b, h, l, s, e, e)
    assert attention.efficient(None, *heads_first, None, False).mac_count == sdpa_macs(b, h, l, s, e, e)
    # cuDNN's schema puts q, k, v, attn_bias, compute_log_sumexp first, as the efficient kernel's does
    from flopwise.formulas.registry import lookup

    assert lookup("aten._scaled_dot_product_cudnn_attention") is attention.efficient
    seq_first = (meta(b, l, h, e), meta(b, s, h, e), meta(b, s, h, e))
    assert attention.flash_forward(None, *seq_first, None, None, l, s, 0.0, False).mac_count == sdpa_macs(
        b, h, l, s, e, e
    )
    assert attention.efficient_forward(None, *seq_first, None).mac_count == sdpa_macs(b, h, l, s, e, e)


def test_multihead_attention_fast_path() -> None:
    b, l, e, h = 2, 5, 16, 4
    mha = nn.MultiheadAttention(e, h, batch_first=True).eval()
    x = torch.randn(b, l, e)
    fast = flopwise.count(mha, (x, x, x))
    assert "aten._native_multi_head_attention" in fast.operator_calls()
    expected = 4 * b * l * e * e + 2 * b * l * l * e  # Q, K, V, out projections + QKᵀ + AV over all heads
    assert fast.macs == expected
    slow = flopwise.count(mha.train(), (x, x, x))  # train mode takes the composite path: same products
    assert "aten._native_multi_head_attention" not in slow.operator_calls()
    assert slow.macs == expected


def test_transformer_encoder_layer_fast_path() -> None:
    b, l, e, h, f = 2, 5, 16, 4, 32
    layer = nn.TransformerEncoderLayer(e, h, f, batch_first=True).eval()
    x = torch.randn(b, l, e)
    fast = flopwise.count(layer, x)
    assert list(fast.operator_calls()) == ["aten._transformer_encoder_layer_fwd"]
    expected = 4 * b * l * e * e + 2 * b * l * l * e + 2 * b * l * e * f  # attention + FFN (E→F→E)
    assert fast.macs == expected
    assert flopwise.count(layer.train(), x).macs == expected


T, B, I, H = 5, 3, 8, 16


@pytest.mark.parametrize(("cls", "gates"), [(nn.LSTM, 4), (nn.GRU, 3), (nn.RNN, 1)])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_recurrent_layers(cls: type[nn.Module], gates: int, bidirectional: bool) -> None:
    rnn = cls(I, H, num_layers=2, batch_first=True, bidirectional=bidirectional)
    directions = 2 if bidirectional else 1
    first = T * B * gates * H * (I + H)  # layer 1: input I and hidden H into G·H gates, every step
    second = T * B * gates * H * (directions * H + H)  # layer 2 reads the concatenated directions
    r = flopwise.count(rnn, torch.randn(B, T, I))
    assert r.macs == directions * (first + second)
    assert r.unsupported == {}


def test_lstm_runs_as_the_mkldnn_kernel_on_cpu() -> None:
    r = flopwise.count(nn.LSTM(I, H), torch.randn(T, B, I))
    assert list(r.unsupported) == []
    assert r.operator_calls()["aten.mkldnn_rnn_layer"] == 1
    assert r.macs == T * B * 4 * H * (I + H)


def test_packed_sequences() -> None:
    rnn = nn.LSTM(I, H)
    lengths = torch.tensor([5, 3, 2])
    packed = nn.utils.rnn.pack_padded_sequence(torch.randn(T, B, I), lengths)
    r = flopwise.count(rnn, packed)  # packed input takes the cell-by-cell path on CPU
    assert r.macs == (5 + 3 + 2) * 4 * H * (I + H)  # only the real steps of each sequence


@pytest.mark.parametrize(("cls", "gates"), [(nn.LSTMCell, 4), (nn.GRUCell, 3), (nn.RNNCell, 1)])
def test_recurrent_cells(cls: type[nn.Module], gates: int) -> None:
    r = flopwise.count(cls(I, H), torch.randn(B, I))
    assert r.macs == B * gates * H * (I + H)
