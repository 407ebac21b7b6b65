"""Edge sources (issue 26): ExecuTorch programs (.pte) and LiteRT flatbuffers (.tflite) counted from their files,
Ultralytics model YAMLs built by ultralytics and counted as PyTorch models. Each count is checked against the
PyTorch count of the same network, with every difference explained, or against a hand count.

The .pte and .tflite files in tests/fixtures were made by tests/fixtures/make_edge_fixtures.py (executorch 1.5.1
and litert-torch 0.10.0 in a venv of their own; how, in its docstring): the ResNet-18 and MobileNetV3-Large
programs keep their weights in a separate file that is not committed, so they hold only the execution plan.
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

import flopwise
from flopwise.cli import main
from flopwise.cli.spec import parse_spec
from flopwise.edge import count_pte, count_tflite
from flopwise.edge.flatbuffer import Table, root

FIXTURES = Path(__file__).resolve().parent / "fixtures"
sys.path.insert(0, str(FIXTURES))
from make_edge_fixtures import Tiny  # noqa: E402

# The tiny network's MACs by hand (tests/fixtures/make_edge_fixtures.py: Tiny, input 1×3×32×32):
#   conv 3→8, k3, s2, 16×16 out     16·16·8·(3·3·3)  = 55,296
#   depthwise 8, k3, 16×16          16·16·8·(3·3)    = 18,432
#   pointwise 16→16, 8×8            8·8·16·16        = 16,384
#   z @ zᵀ, z 1×16×64               16·16·64         = 16,384
#   fc 16→10                        16·10            =    160
TINY_MACS = 55_296 + 18_432 + 16_384 + 16_384 + 160  # 106,656


def pytorch_count(model: nn.Module, size: tuple[int, ...]) -> flopwise.Report:
    return flopwise.count(model.eval(), torch.empty(size, device="meta"), mode="fake")


def json_of(capsys: pytest.CaptureFixture[str], *args: str, code: int = 0) -> dict:
    assert main([*args, "--format", "json", "--quiet"]) == code, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_specs_name_the_new_sources():
    assert parse_spec("m.pte").kind == "pte" and parse_spec("dir/m.tflite").kind == "tflite"
    spec = parse_spec("ultralytics:yolo11n.yaml")
    assert (spec.kind, spec.target) == ("ultralytics", "yolo11n.yaml")


# — ExecuTorch —


def test_resnet18_pte_equals_the_pytorch_count():
    pte = count_pte(FIXTURES / "resnet18.pte")
    torch_count = pytorch_count(torchvision.models.resnet18(weights=None), (1, 3, 224, 224))
    assert pte.macs == torch_count.macs == 1_814_073_344 and pte.complete
    assert pte.flops == torch_count.flops  # batch norm is not folded without a backend: every op is there
    assert pte.params == torch_count.params + 2 * 4_800  # BN running mean and var: constants of the program
    permuted_fc = 512 * 1000 * 4  # the fc weight transposed by a real copy (permute_copy), not a view
    assert pte.bytes_read == torch_count.bytes_read + permuted_fc
    assert pte.bytes_written == torch_count.bytes_written + permuted_fc
    assert pte.inputs == "input 0=1×3×224×224 float32"


def test_mobilenet_v3_pte_equals_the_pytorch_count():
    pte = count_pte(FIXTURES / "mobilenet_v3_large.pte")
    model = torchvision.models.mobilenet_v3_large(weights=None)
    torch_count = pytorch_count(model, (1, 3, 224, 224))
    assert pte.macs == torch_count.macs == 216_589_760 and pte.complete
    # hardswish and hardsigmoid are decomposed (x·clamp(x+3, 0, 6)/6: add, clamp twice, mul, div) into the
    # 5 FLOPs per element the hardswish formula counts; the totals agree to the FLOP
    assert pte.flops == torch_count.flops
    assert "executorch.aten::clamp.out" in pte.by_operator()
    statistics = sum(2 * m.num_features for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    assert pte.params == torch_count.params + statistics == torch_count.params + 24_400


def test_tiny_pte_by_hand():
    pte = count_pte(FIXTURES / "tiny.pte")
    assert pte.macs == TINY_MACS and pte.complete
    assert pte.by_operator()["executorch.aten::bmm.out"].macs == 16 * 16 * 64
    torch.manual_seed(0)
    torch_count = pytorch_count(Tiny(), (1, 3, 32, 32))
    assert pte.flops == torch_count.flops == 247_399
    assert pte.params == torch_count.params + 2 * 8  # BN running mean and var of 8 channels


def test_delegated_work_is_unsupported_never_zero(capsys):
    pte = count_pte(FIXTURES / "tiny_xnnpack.pte")
    assert pte.unsupported == {"executorch.delegate.XnnpackBackend": 3}
    assert any("XnnpackBackend delegate" in w for w in pte.warnings)
    doc = json_of(capsys, str(FIXTURES / "tiny_xnnpack.pte"), code=1)  # a lower bound: exit 1
    assert doc["complete"] is False


def test_pte_from_the_command_line(capsys, tmp_path):
    doc = json_of(capsys, str(FIXTURES / "tiny.pte"), "--convention", "contractions")
    assert doc["total"]["macs"] == TINY_MACS and doc["total"]["flops"] == 2 * TINY_MACS
    assert main([str(FIXTURES / "tiny.pte"), "--input", "1x3x64x64"]) == 2
    assert "has the sizes and dtypes it was exported with" in capsys.readouterr().err
    fake = tmp_path / "fake.pte"
    fake.write_bytes(b"\x10\x00\x00\x00PK\x03\x04 not a program")
    assert main([str(fake)]) == 2
    assert "not an ExecuTorch program" in capsys.readouterr().err
    truncated = tmp_path / "truncated.pte"
    truncated.write_bytes((FIXTURES / "tiny.pte").read_bytes()[:4000])
    assert main([str(truncated)]) == 2
    assert "outside the file" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["tiny.pte", "tiny.tflite"])
def test_flags_that_run_pytorch_are_refused_on_a_graph_file(capsys, name):
    for flags in (["--measure"], ["--step", "train"]):
        assert main([str(FIXTURES / name), *flags]) == 2
        refused = capsys.readouterr().err
        assert f"{name}: {flags[0]}" in refused and "needs a PyTorch model" in refused, refused
        assert ".onnx" not in refused  # the message names the file given, not another format


# — LiteRT —


def test_tiny_tflite_against_the_pytorch_count():
    lite = count_tflite(FIXTURES / "tiny.tflite")
    torch.manual_seed(0)
    torch_count = pytorch_count(Tiny(), (1, 3, 32, 32))
    assert lite.macs == torch_count.macs == TINY_MACS and lite.complete
    # the converter folds batch norm into the convolution before it: its 4 FLOPs per output go (the convolution
    # already had a bias, so no bias FLOPs are added), and its weight and bias (8 + 8) leave the parameters
    assert lite.flops == torch_count.flops - 4 * 8 * 16 * 16
    assert lite.params == torch_count.params - 16
    ops = lite.by_operator()
    assert ops["tflite.RELU6 (fused)"].flops == 2 * 8 * 16 * 16  # hardtanh's 2 compares, on the conv's output
    assert ops["tflite.RELU6 (fused)"].bytes_read == 0  # fused: nothing read or written of its own
    assert ops["tflite.DEPTHWISE_CONV_2D"].macs == 18_432
    assert lite.inputs == "serving_default_args_0=1×3×32×32 float32"
    # rows are modules: litert-torch names each tensor by the module path it came from
    assert (lite["conv"].type, lite["conv"].macs, lite["dw"].macs, lite["pw"].macs) == (
        "Conv2d",
        55_296,
        18_432,
        16_384,
    )
    assert lite["fc"].macs == 160 and lite["fc"].params == 16 * 10 + 10
    assert lite.modules[""].type == "Tiny"


def test_tflite_from_the_command_line(capsys, tmp_path):
    doc = json_of(capsys, str(FIXTURES / "tiny.tflite"))
    assert doc["total"]["macs"] == TINY_MACS and doc["unsupported"] == {}
    wrong = tmp_path / "wrong.tflite"
    wrong.write_bytes((FIXTURES / "tiny.pte").read_bytes())
    assert main([str(wrong)]) == 2
    assert "no TFL3 file identifier" in capsys.readouterr().err


def test_flatbuffer_fields_by_schema_number():
    """A table with 3 fields written by hand: an int32 (field 0), an absent field 1, a string (field 2)."""
    vtable = struct.pack("<HHHHH", 10, 12, 4, 0, 8)  # vtable size, table size, field offsets
    table_at = 4 + len(vtable)
    body = struct.pack("<iiI", table_at - 4, 7, 4)  # soffset back to the vtable; field 0 = 7; the string, 4 on
    buf = struct.pack("<I", table_at) + vtable + body + struct.pack("<I", 2) + b"hi\x00\x00"
    table = root(buf)
    assert isinstance(table, Table) and table.scalar(0, "<i") == 7 and table.string(2) == "hi"
    assert table.scalar(1, "<i", default=-1) == -1 and not table.has(1) and table.tables(1) == []
    with pytest.raises(ValueError, match="outside the file"):
        root(buf[:12])


# — Ultralytics —


def thop_flops(model: nn.Module) -> int:
    """model.info()'s GFLOPs, as ultralytics computes them (thop at 640), in FLOPs."""
    from ultralytics.utils.torch_utils import get_flops

    return round(get_flops(model, 640) * 1e9)


@pytest.mark.parametrize(
    ("name", "macs", "params", "bmm_macs"),
    [
        ("yolo11n.yaml", 3_271_251_200, 2_624_080, 30_720_000),  # C2PSA attention: (QᵀK) and (V·Aᵀ), 2 heads
        ("yolov8n.yaml", 4_371_993_600, 3_157_200, 0),
    ],
)
def test_yolo_complete_and_reconciled_with_model_info(name, macs, params, bmm_macs):
    pytest.importorskip("ultralytics")
    from flopwise.edge import count_ultralytics, ultralytics_model

    report = count_ultralytics(name)
    assert report.complete and report.macs == macs and report.params == params
    assert report.inputs == "1×3×640×640 float32"
    ops = report.by_operator()
    assert ops["aten.convolution"].macs + ops.get("aten.bmm", flopwise.Cost()).macs == macs
    assert ops.get("aten.bmm", flopwise.Cost()).macs == bmm_macs
    # model.info(): thop's "MACs" are the convolutions' and the matmuls' MACs plus 4 per batch-norm element,
    # doubled into GFLOPs. The batch-norm elements are counted here with hooks, apart from flopwise.
    model, _ = ultralytics_model(name)
    elements = []
    hooks = [
        m.register_forward_hook(lambda m, i, o: elements.append(i[0].numel()))
        for m in model.modules()
        if isinstance(m, nn.BatchNorm2d)
    ]
    with torch.no_grad():
        model(torch.rand(1, 3, 640, 640))
    for hook in hooks:
        hook.remove()
    assert ops["aten.native_batch_norm"].flops == 4 * sum(elements)
    assert thop_flops(model) == 2 * (macs + 4 * sum(elements))


def test_ultralytics_from_the_command_line(capsys):
    pytest.importorskip("ultralytics")
    doc = json_of(capsys, "ultralytics:yolov8n-cls.yaml")
    assert doc["inputs"] == "1×3×224×224 float32" and doc["unsupported"] == {}  # classification: 224
    assert main(["ultralytics:yolo11q.yaml"]) == 2
    err = capsys.readouterr().err
    assert "ships no model YAML 'yolo11q.yaml'" in err and "yolo11n.yaml" in err


def test_torchvision_backbones_are_built_without_downloading(monkeypatch):
    """yolo11-cls-resnet18.yaml asks torchvision for ResNet-18's pretrained weights (a download): flopwise builds it
    with random weights, and the network is refused while ultralytics builds."""
    pytest.importorskip("ultralytics")
    import socket

    from flopwise.edge import count_ultralytics

    def no_network(*args, **kwargs):
        raise AssertionError("the network was asked")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    report = count_ultralytics("yolo11n-cls-resnet18.yaml")
    # ResNet-18 without its pool and fc (1,814,073,344 − 512·1000), then ultralytics' Classify head at 7×7:
    # a 1×1 convolution 512 → 1280 (7·7·512·1280) and a linear layer 1280 → 1000
    assert report.macs == 1_814_073_344 - 512 * 1000 + 7 * 7 * 512 * 1280 + 1280 * 1000 == 1_846_953_984
    assert report.complete


def test_rtdetr_yaml_builds_as_rtdetr():
    pytest.importorskip("ultralytics")
    from flopwise.edge import count_ultralytics

    report = count_ultralytics("rtdetr-l.yaml")  # ultralytics.YOLO refuses RT-DETR YAMLs; RTDETR builds them
    assert report.complete and report.macs > 50e9
