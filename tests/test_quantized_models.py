"""Quantized models counted: integer MACs of the quantized products, packed weights counted as parameters by
dtype, module types as torch names them, repeated counts stable in every mode."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import flopwise
from flopwise.shortcuts import replay

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


def _static() -> nn.Module:
    model = _Static().eval()
    model.qconfig = tq.get_default_qconfig("x86")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tq.prepare(model, inplace=True)
        model(torch.rand(2, 3, 8, 8))  # calibration
        tq.convert(model, inplace=True)
    return model


@pytest.mark.parametrize("mode", ["real", "fake", "meta"])
def test_static_quantized_conv_and_linear(mode: str) -> None:
    model = _static()
    for _ in range(2):  # repeated counts give the same numbers
        r = flopwise.count(model, torch.rand(2, 3, 8, 8), mode=mode)
        assert r.complete, r.unsupported
        conv = 2 * 8 * 8 * 3 * 3 * 3 * 8  # N·H_out·W_out·K_h·K_w·C_in·C_out
        fc = 2 * 512 * 10  # rows·K·N
        assert r["conv"].macs == conv == 27_648
        assert r["fc"].macs == fc == 10_240
        assert r.by_dtype()["int8"].macs == conv + fc
        # QuantStub: 5 FLOPs per element of the 2×3×8×8 input; DeQuantStub: 2 per element of the 2×10 output
        assert r.by_dtype()["float32"].flops == 5 * 2 * 3 * 8 * 8 + 2 * 2 * 10 == 1_960
        assert r["conv"].params == 8 * 3 * 3 * 3 + 8  # packed weight + bias
        assert r["fc"].params == 512 * 10 + 10
        assert r["conv"].type == "QuantizedConv2d"
        assert r["fc"].type == "QuantizedLinear"
        assert r.param_bytes["qint8"] == 8 * 27 + 5120
        if mode == "real":
            assert r.warnings == []
        else:  # torch has no fake quantized tensors: counted for real, and said so
            assert len(r.warnings) == 1 and "aten.quantize_per_tensor in module 'quant'" in r.warnings[0]
            assert "counting again in real mode" in r.warnings[0]


@pytest.mark.parametrize("mode", ["fake", "meta"])
def test_quantized_input_is_counted_for_real(mode: str) -> None:
    conv = _static().conv
    x = torch.quantize_per_tensor(torch.rand(2, 3, 8, 8), 0.1, 0, torch.quint8)
    r = flopwise.count(conv, x, mode=mode)
    assert r.macs == 2 * 8 * 8 * 3 * 3 * 3 * 8  # N·H_out·W_out·K_h·K_w·C_in·C_out
    assert len(r.warnings) == 1 and "a quantized input" in r.warnings[0]


T, B, I, H = 5, 3, 8, 16  # time steps, batch, input and hidden sizes of the recurrent layers


def _dynamic(layer: nn.Module, dtype: torch.dtype = torch.qint8) -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tq.quantize_dynamic(nn.Sequential(layer), {type(layer)}, dtype=dtype)


@pytest.mark.parametrize("mode", ["real", "fake", "meta"])
def test_dynamic_quantized_lstm(mode: str) -> None:
    model, x = _dynamic(nn.LSTM(I, H, num_layers=2)), torch.rand(T, B, I)
    for _ in range(2):  # a second fake count used to crash on the cell parameters in fake tensors' cache
        r = flopwise.count(model, x, mode=mode)
        assert r.complete, r.unsupported
        # per step and row: layer 1 multiplies I inputs and H hidden into 4H gates, layer 2 reads H inputs
        macs = T * B * (4 * H * (I + H) + 4 * H * (H + H))
        assert r.macs == macs == 53_760
        # gates per hidden unit and step: 30 FLOPs (3 sigmoids, 2 tanh, c' = f·c + i·g, h' = o·tanh c'),
        # and the 2·4H bias adds (b_ih, b_hh), in float on the dequantized products
        gates = T * B * 2 * H * 30 + T * B * 2 * 2 * 4 * H
        assert r.by_dtype()["int8"].macs == macs and r.by_dtype()["int8"].flops == 2 * macs
        assert r.by_dtype()["float32"].macs == 0 and r.by_dtype()["float32"].flops == gates == 18_240
        assert r.flops == 2 * macs + gates
        weights = 4 * H * I + 4 * H * H + 4 * H * H + 4 * H * H  # W_ih, W_hh of both layers
        biases = 2 * 2 * 4 * H  # b_ih, b_hh of both layers
        assert r.params == weights + biases == 3_840
        assert r.trainable_params == 0
        assert r.param_bytes == {"qint8": weights * 1, "float32": biases * 4}
        assert r["0"].type == "DynamicQuantizedLSTM"


class _PackedLSTM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = _dynamic(nn.LSTM(I, H))[0]

    def forward(self, x: nn.utils.rnn.PackedSequence) -> torch.Tensor:
        return self.lstm(x)[0].data


@pytest.mark.parametrize("mode", ["real", "fake", "meta"])
def test_dynamic_quantized_lstm_on_a_packed_sequence(mode: str) -> None:
    packed = nn.utils.rnn.pack_padded_sequence(torch.rand(T, B, I), torch.tensor([5, 3, 2]))
    r = flopwise.count(_PackedLSTM(), (packed,), mode=mode)
    assert r.complete, r.unsupported
    assert r.macs == (5 + 3 + 2) * 4 * H * (I + H) == 15_360  # only the real steps of each sequence


@pytest.mark.parametrize("mode", ["real", "fake", "meta"])
def test_float16_dynamic_lstm_multiplies_in_float32(mode: str) -> None:
    r = flopwise.count(_dynamic(nn.LSTM(I, H), torch.float16), torch.rand(T, B, I), mode=mode)
    macs = T * B * 4 * H * (I + H)  # fbgemm widens the fp16 weights to fp32 before multiplying
    assert r.macs == macs and set(r.by_dtype()) == {"float32"}
    assert r.by_dtype()["float32"].flops == 2 * macs + T * B * H * 30 + T * B * 2 * 4 * H  # + gates and biases
    assert r.param_bytes == {"float16": 4 * H * (I + H) * 2, "float32": 2 * 4 * H * 4}  # weights stored in 16 bits
    assert r["0"].type == "DynamicQuantizedLSTM"


@pytest.mark.parametrize(
    ("layer", "x", "macs", "type_"),
    [
        (
            nn.GRU(I, H, batch_first=True, bidirectional=True),
            torch.rand(B, T, I),
            2 * T * B * 3 * H * (I + H),
            "DynamicQuantizedGRU",
        ),  # 2 directions · T·B steps · 3H gates · (I + H)
        (nn.LSTMCell(I, H), torch.rand(B, I), B * 4 * H * (I + H), "DynamicQuantizedLSTMCell"),
        (nn.GRUCell(I, H), torch.rand(B, I), B * 3 * H * (I + H), "DynamicQuantizedGRUCell"),
        (nn.RNNCell(I, H), torch.rand(B, I), B * H * (I + H), "DynamicQuantizedRNNCell"),
    ],
)
@pytest.mark.parametrize("mode", ["real", "meta"])
def test_dynamic_quantized_gru_and_cells(layer: nn.Module, x: torch.Tensor, macs: int, type_: str, mode: str) -> None:
    model = _dynamic(layer)
    replay.forget()  # the first count starts from empty caches (flopwise's memo, torch's fake kernels' outputs)
    first, second = (flopwise.count(model, x, mode=mode) for _ in range(2))
    assert first.complete, first.unsupported
    assert first.macs == first.by_dtype()["int8"].macs == macs
    assert first["0"].type == type_
    assert first.params == sum(p.numel() for p in layer.parameters())  # the float layer's weights and biases
    assert (first.macs, first.flops, first.bytes_read, first.params) == (
        second.macs,
        second.flops,
        second.bytes_read,
        second.params,
    )


@pytest.mark.parametrize("mode", ["real", "fake", "meta"])
def test_float16_dynamic_linear(mode: str) -> None:
    model = _dynamic(nn.Linear(64, 128), torch.float16)
    r = flopwise.count(model, torch.rand(4, 64), mode=mode)
    assert r.macs == 4 * 64 * 128 and set(r.by_dtype()) == {"float32"}  # rows·K·N, multiplied in fp32
    assert r.param_bytes == {"float16": 64 * 128 * 2, "float32": 128 * 4}
    assert r.bytes_read == 4 * 64 * 4 + 64 * 128 * 2 + 128 * 4  # input, fp16 weight, fp32 bias
    assert r["0"].type == "DynamicQuantizedLinear"


@pytest.mark.parametrize("mode", ["real", "fake", "meta"])
def test_dynamic_quantized_conv(mode: str) -> None:
    # quantize_dynamic has no default mapping for convolutions; the dynamic module exists and is built directly
    conv = nn.Conv2d(3, 8, 3)
    conv.qconfig = tq.default_dynamic_qconfig
    model = torch.ao.nn.quantized.dynamic.Conv2d.from_float(conv)
    for _ in range(2):
        r = flopwise.count(model, torch.rand(2, 3, 8, 8), mode=mode)
        macs = 2 * 6 * 6 * 3 * 3 * 3 * 8  # N·H_out·W_out·K_h·K_w·C_in·C_out
        assert r.macs == r.by_dtype()["int8"].macs == macs == 15_552
        assert r.param_bytes == {"qint8": 8 * 3 * 3 * 3, "float32": 8 * 4}
        assert r[""].type == "DynamicQuantizedConv2d"


@pytest.mark.parametrize("mode", ["fake", "meta"])
def test_dynamic_int8_bert_counts_alike_in_every_mode(mode: str) -> None:
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        vocab_size=100,
        max_position_embeddings=32,
    )
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = tq.quantize_dynamic(transformers.BertModel(config).eval(), {nn.Linear}, dtype=torch.qint8)
    ids = torch.randint(0, 100, (1, 16))
    real = flopwise.count(model, ids)
    S, d, ff, L = 16, 64, 128, 2  # tokens, width, feed-forward width, layers
    linear = L * (4 * S * d * d + 2 * S * d * ff) + d * d  # Q, K, V, O and the two FFN layers; the pooler (1 row)
    attention = L * 2 * S * S * d  # QKᵀ and AV of every head together
    assert real.by_dtype()["int8"].macs == linear == 1_052_672
    assert real.macs == linear + attention == 1_118_208
    for _ in range(2):
        r = flopwise.count(model, ids, mode=mode)
        assert r.complete and r.warnings == []
        assert (r.macs, r.flops, r.params, r.param_bytes) == (real.macs, real.flops, real.params, real.param_bytes)
        assert r.by_dtype() == real.by_dtype()


def test_int_mm_counts_int8_macs() -> None:
    a = torch.randint(-8, 8, (32, 64), dtype=torch.int8)
    b = torch.randint(-8, 8, (64, 32), dtype=torch.int8)
    with flopwise.counting() as c:
        torch._int_mm(a, b)
    assert c.report.macs == 32 * 64 * 32  # M·K·N
