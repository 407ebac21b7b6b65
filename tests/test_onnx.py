""".onnx files: counted by the registry's formulas over ONNX shape inference, through the console script.

A tiny graph built by hand checks each count against its arithmetic; ResNet-18, exported by both of torch's
exporters, is checked against flopwise's PyTorch count of the same model: equal MACs, and FLOPs, parameters
and bytes that differ by exactly what the export changed (batch norm folded into the convolutions).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

import flopwise
from flopwise.cli import main
from flopwise.onnx_count import count_onnx

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

SCRIPT = shutil.which("flopwise", path=str(Path(sys.executable).parent)) or "flopwise"


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SCRIPT, *map(str, args)], capture_output=True, text=True, timeout=300)


def save(tmp_path: Path, nodes: list, inputs: list, outputs: list, initializers: list = (), name="tiny") -> Path:
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, str(path))
    return path


def gemm_relu(tmp_path: Path, batch: int | str = 4) -> Path:
    """Y = relu(X·Wᵀ + b): X batch×8, W 16×8 (transB), b 16; nodes named as torch.onnx names them."""
    weight = helper.make_tensor("fc.weight", TensorProto.FLOAT, [16, 8], [0.0] * 128)
    bias = helper.make_tensor("fc.bias", TensorProto.FLOAT, [16], [0.0] * 16)
    nodes = [
        helper.make_node("Gemm", ["x", "fc.weight", "fc.bias"], ["h"], name="/fc/Gemm", transB=1),
        helper.make_node("Relu", ["h"], ["y"], name="/act/Relu"),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 16])
    return save(tmp_path, nodes, [x], [y], [weight, bias])


def test_gemm_relu_by_hand(tmp_path):
    r = count_onnx(gemm_relu(tmp_path))
    assert r.macs == 4 * 8 * 16  # M·K·N
    assert r.flops == 2 * 4 * 8 * 16 + 4 * 16 + 4 * 16  # 2·MACs + one bias add and one ReLU compare per output
    assert r.params == 16 * 8 + 16  # weight + bias
    assert r.bytes_read == (4 * 8 + 16 * 8 + 16) * 4 + 4 * 16 * 4  # Gemm reads X, W, b; Relu reads h (float32)
    assert r.bytes_written == 4 * 16 * 4 * 2  # h and y
    assert r["fc"].macs == 4 * 8 * 16 and r["fc"].params == 16 * 8 + 16
    assert r["act"].flops == 4 * 16 and r["act"].params == 0
    assert list(r.modules) == ["", "fc", "act"]  # graph order
    assert r.by_operator()["onnx.Gemm"].macs == 4 * 8 * 16 and r.complete
    assert r.param_bytes == {"float32": (16 * 8 + 16) * 4}


def test_matmul_and_resize_by_hand(tmp_path):
    shapes = {"a": [2, 3, 4, 5], "w": [5, 6], "p": [2, 1, 4, 5], "q": [3, 5, 6], "img": [1, 2, 3, 3]}
    nodes = [
        helper.make_node("MatMul", ["a", "w"], ["aw"], name="/folded/MatMul"),  # batch folded into rows: mm
        helper.make_node("MatMul", ["p", "q"], ["pq"], name="/batched/MatMul"),  # batch (2, 3) broadcast: bmm
        helper.make_node("Resize", ["img", "", "scales"], ["big"], name="/up/Resize", mode="linear"),
    ]
    scales = helper.make_tensor("scales", TensorProto.FLOAT, [4], [1.0, 1.0, 2.0, 2.0])
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in shapes.items()]
    outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("aw", "pq", "big")]
    r = count_onnx(save(tmp_path, nodes, inputs, outputs, [scales], name="products"))
    assert r["folded"].macs == (2 * 3 * 4) * 5 * 6  # rows·K·N
    assert r["batched"].macs == (2 * 3) * 4 * 5 * 6  # batch·M·K·N
    assert r["batched"].bytes_read == (2 * 1 * 4 * 5 + 3 * 5 * 6) * 4  # each operand once, not broadcast
    assert r["up"].flops == 1 * 2 * 6 * 6 * 7  # bilinear: 4 multiplies and 3 adds per output of 1×2×6×6
    assert r.params == 0  # the scales initializer is an argument of the resize, not a weight
    assert r.complete


def test_conventions_apply(tmp_path):
    r = count_onnx(gemm_relu(tmp_path), convention="contractions")
    assert r.flops == 2 * 4 * 8 * 16  # FLOPs = 2·MACs, nothing else


def test_dynamic_batch_needs_sizes(tmp_path, capsys):
    path = gemm_relu(tmp_path, batch="batch")
    assert main([str(path)]) == 2
    refused = capsys.readouterr().err
    assert "input 'x' has dynamic sizes (batch at dim 0)" in refused and "--input x=Nx8" in refused
    for flag in ("x=3x8", "3x8"):  # by name or in order
        assert main([str(path), "--input", flag, "--format", "json"]) == 0
        assert json.loads(capsys.readouterr().out)["total"]["macs"] == 3 * 8 * 16  # M·K·N with M = 3
    assert main([str(path), "--input", "y=3x8"]) == 2  # y is an output, not an input
    assert "the graph has no input 'y'; its inputs are x" in capsys.readouterr().err
    assert main([str(path), "--input", "3x8", "--measure"]) == 2  # nothing to run: a graph, not a PyTorch model


def test_unsupported_op_names_its_node(tmp_path):
    nodes = [
        helper.make_node("Relu", ["x"], ["h"], name="/pre/Relu"),
        helper.make_node("Mystery", ["h"], ["y"], name="/odd/Mystery_7", domain="com.example"),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 5])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 5])
    graph = helper.make_graph(nodes, "odd", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)])
    path = tmp_path / "odd.onnx"
    onnx.save(model, str(path))
    r = count_onnx(path)
    assert r.unsupported == {"com.example.Mystery": 1}
    assert r.unsupported_where == {"com.example.Mystery": {"odd (node /odd/Mystery_7)": 1}}
    assert r.flops == 2 * 5  # the Relu before it is still counted: one compare per element
    result = run(path)
    assert result.returncode == 1  # counted, a lower bound
    assert "com.example.Mystery" in result.stdout and "/odd/Mystery_7" in result.stdout


def test_not_an_onnx_file(tmp_path, capsys):
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"\x0f\xff not a protobuf")
    assert main([str(path)]) == 2
    assert "broken.onnx: not an ONNX model" in capsys.readouterr().err
    assert main([str(tmp_path / "absent.onnx")]) == 2
    assert "absent.onnx: no such file" in capsys.readouterr().err


# — ResNet-18: the exported graph against the PyTorch count —

# MACs at 1×3×224×224, by hand (H_out·W_out·K·K·C_in·C_out per convolution, 512·1000 for fc):
#   conv1    112·112·7·7·3·64                                   = 118,013,952
#   layer1   4 × 56·56·3·3·64·64                                = 462,422,016
#   layer2   28·28·9·64·128 + 3 × 28·28·9·128·128 + 28·28·64·128 = 411,041,792 (the last: the 1×1 downsample)
#   layer3   14·14·9·128·256 + 3 × 14·14·9·256·256 + 14·14·128·256 = 411,041,792
#   layer4   7·7·9·256·512 + 3 × 7·7·9·512·512 + 7·7·256·512      = 411,041,792
#   fc       512·1000                                           = 512,000
RESNET18_MACS = 118_013_952 + 462_422_016 + 3 * 411_041_792 + 512_000
# Every convolution is followed by a batch norm; their outputs, C·H·W summed over the 20 convolutions:
CONV_OUTPUTS = 64 * 112 * 112 + 4 * 64 * 56 * 56 + 5 * 128 * 28 * 28 + 5 * 256 * 14 * 14 + 5 * 512 * 7 * 7
BN_CHANNELS = 64 + 4 * 64 + 5 * 128 + 5 * 256 + 5 * 512  # one batch norm per convolution, C_out each
POOLED = 64 * 56 * 56  # the max pool's outputs


def resnet18() -> torch.nn.Module:
    """Random weights and batch-norm statistics that are not the defaults, so that folding each batch norm into its
    convolution leaves a real (non-zero) bias, as in a trained model."""
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.resnet18().eval()
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            for t in (m.weight.data, m.bias.data, m.running_mean):
                t.copy_(torch.rand(t.shape, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return model


@pytest.mark.parametrize("exporter", ["dynamo", "torchscript"])
def test_resnet18_export_matches_the_pytorch_count(tmp_path, exporter):
    pytest.importorskip("torchvision")
    if exporter == "dynamo":
        pytest.importorskip("onnxscript")
    model, x = resnet18(), torch.randn(1, 3, 224, 224)
    path = tmp_path / "resnet18.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter is deprecated, still shipped
        torch.onnx.export(model, (x,), str(path), dynamo=exporter == "dynamo")
    result = run(path, "--format", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    total = doc["total"]
    pt = flopwise.count(model, x, mode="fake")

    assert total["macs"] == pt.macs == RESNET18_MACS == 1_814_073_344
    # The exporters fold each inference batch norm into its convolution: the 4 FLOPs per element of batch norm
    # go, the folded bias adds 1 per convolution output.
    assert total["flops"] == pt.flops - 4 * CONV_OUTPUTS + 1 * CONV_OUTPUTS
    # Parameters: each batch norm's weight and bias (2·C) become one convolution bias (C).
    assert total["params"] == pt.params - 2 * BN_CHANNELS + BN_CHANNELS == 11_689_512 - BN_CHANNELS
    # Bytes (float32): batch norm read its input and 4 vectors of C and wrote its output; the folded bias is read
    # instead. PyTorch's max pool also writes its int64 indices, which ONNX's MaxPool leaves out.
    assert total["bytes_read"] == pt.bytes_read - (CONV_OUTPUTS + 4 * BN_CHANNELS) * 4 + BN_CHANNELS * 4
    assert total["bytes_written"] == pt.bytes_written - CONV_OUTPUTS * 4 - POOLED * 8
    assert doc["unsupported"] == {}

    rows = {row["name"]: row for row in doc["modules"]}
    for stage in ("layer1", "layer2", "layer3", "layer4", "fc"):  # the module tree, cross-checked stage by stage
        assert rows[stage]["macs"] == pt[stage].macs
    assert rows["layer2"]["macs"] == 411_041_792  # by hand, above
    if exporter == "torchscript":  # its node names carry every module: the convolutions are where PyTorch has them
        assert rows["conv1"]["macs"] == pt["conv1"].macs == 118_013_952
        assert rows["layer1.0.conv1"]["macs"] == 56 * 56 * 3 * 3 * 64 * 64
    else:  # torch.onnx names the folded node after the batch norm it absorbed (its metadata), so it is there
        assert rows["bn1"]["macs"] == pt["conv1"].macs == 118_013_952
        assert rows["layer1.0.bn1"]["macs"] == 56 * 56 * 3 * 3 * 64 * 64
        assert rows[""]["type"] == "ResNet" and rows["layer1.0"]["type"] == "BasicBlock"


class Block(torch.nn.Module):
    """A pre-norm transformer block written out by hand: LayerNorm, fused QKV, QKᵀ, softmax, AV, GELU MLP."""

    def __init__(self, d: int = 64, heads: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = torch.nn.LayerNorm(d), torch.nn.LayerNorm(d)
        self.qkv, self.out = torch.nn.Linear(d, 3 * d), torch.nn.Linear(d, d)
        self.fc1, self.fc2, self.act = torch.nn.Linear(d, 4 * d), torch.nn.Linear(4 * d, d), torch.nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = (
            z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in self.qkv(self.ln1(x)).split(d, dim=-1)
        )
        attention = torch.softmax(q @ k.transpose(-2, -1) / 4.0, dim=-1) @ v
        x = x + self.out(attention.transpose(1, 2).reshape(b, t, d))
        return x + self.fc2(self.act(self.fc1(self.ln2(x))))


def test_transformer_block_export_matches_the_pytorch_count(tmp_path):
    pytest.importorskip("onnxscript")
    torch.manual_seed(0)
    model, x = Block().eval(), torch.randn(2, 10, 64)
    path = tmp_path / "block.onnx"
    torch.onnx.export(model, (x,), str(path), dynamo=True)
    r, pt = count_onnx(path), flopwise.count(model, x, mode="fake")
    tokens = 2 * 10
    projections = tokens * 64 * 3 * 64 + tokens * 64 * 64 + 2 * tokens * 64 * 4 * 64  # qkv, out, fc1, fc2
    scores = 2 * 4 * 10 * 10 * 16  # B·heads·T·T·d_head, once for QKᵀ and once for AV
    assert r.macs == pt.macs == projections + 2 * scores == 1_008_640
    # Linear's addmm becomes MatMul + Add in ONNX: the bias adds are still one per output, so FLOPs agree exactly.
    assert r.flops == pt.flops and r.complete
    assert r.by_operator()["onnx.Softmax"].flops == 2 * 4 * 10 * (3 * 10 - 1)  # rows·(3n−1)
    assert r["fc1"].macs == tokens * 64 * 256
