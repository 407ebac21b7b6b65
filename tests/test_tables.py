"""Richer tables: "(self)" rows that make the rows add up, % of FLOPs, parameters as people write them, memory."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import flopwise
from flopwise.cli import main
from flopwise.examples import SimpleAttentionBlock, SimpleConv
from flopwise.render.tree import SELF, tree_rows
from flopwise.render.units import binary_bytes, count_text


def attention_report() -> flopwise.Report:
    x = torch.rand(1, 10, 256)
    return flopwise.count(SimpleAttentionBlock(256, 8), (x, x, x, None))


def test_attention_products_appear_in_the_blocks_self_row():
    report = attention_report()
    rows = tree_rows(report, depth=2)
    assert [r.label for r in rows] == ["SimpleAttentionBlock (total)", "values", "keys", "queries", "fc_out", SELF]
    own = rows[-1]
    assert own.is_self and own.name == "" and own.depth == 1
    assert own.macs == 2 * 10 * 10 * 32 * 8  # QKᵀ and AV: L·S·E_head·heads each = 25,600
    assert own.flops == 2 * 2 * 25_600 + 8 * 10 * (3 * 10 - 1)  # 2 FLOPs per MAC + softmax R·(3n−1)
    projection = 10 * 256 * 256  # tokens·E_in·E_out = 655,360
    assert sum(r.macs for r in rows[1:]) == 4 * projection + 51_200 == report.macs == 2_672_640
    assert sum(r.flops for r in rows[1:]) == report.flops  # the FLOPs add up too


def test_printed_table_has_the_self_row_and_shares():
    text = attention_report().table()
    self_line = next(line for line in text.splitlines() if line.strip().startswith(SELF))
    assert "51.2 k" in self_line  # 25,600 + 25,600 MACs
    assert self_line.split()[-3] == f"{104_720 / 5_350_160:.1%}"  # self FLOPs / total FLOPs = 2.0%
    values_line = next(line for line in text.splitlines() if line.strip().startswith("values"))
    assert f"{1_310_720 / 5_350_160:.1%}" in values_line  # 2·655,360 / 5,350,160 = 24.5%
    assert "100.0%" in text.splitlines()[2]  # the root row


class Inner(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(4, 4, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.proj(x)
        return y @ y.transpose(-1, -2)  # (3, 4) @ (4, 3), outside proj


class Outer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(4))  # a parameter of Outer itself, in no child
        self.inner = Inner()
        self.head = nn.Linear(3, 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.inner(x * self.scale))


def test_self_rows_at_every_level_and_own_parameters():
    report = flopwise.count(Outer(), torch.rand(3, 4), convention="contractions")
    rows = tree_rows(report, depth=None)
    assert [(r.label, r.depth) for r in rows] == [
        ("Outer (total)", 0),
        ("inner", 1),
        ("proj", 2),
        (SELF, 2),
        ("head", 1),
        (SELF, 1),
    ]
    inner_self, outer_self = rows[3], rows[5]
    assert (inner_self.name, inner_self.macs, inner_self.params) == ("inner", 3 * 3 * 4, 0)  # M·N·K of y·yᵀ
    assert outer_self.macs == 0 and outer_self.params == 4  # Outer's own `scale`: 4 elements, no MACs
    assert outer_self.cost.bytes > 0  # x * scale reads and writes (a multiply: not a MAC)
    assert rows[1].macs == 3 * 4 * 4 + 3 * 3 * 4  # inner = proj (M·K·N) + its self row
    assert rows[1].macs + rows[4].macs + outer_self.macs == report.macs == 48 + 36 + 3 * 3 * 2
    assert rows[2].params + rows[4].params + outer_self.params == report.params == 16 + 6 + 4


def test_depth_limit_leaves_no_self_row_below_it():
    report = flopwise.count(Outer(), torch.rand(3, 4))
    labels = [r.label for r in tree_rows(report, depth=1)]
    assert labels == ["Outer (total)", "inner", "head", SELF]  # inner's own matmul stays inside its row


def test_modules_that_do_no_own_work_get_no_self_row():
    report = flopwise.count(nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2)), torch.rand(1, 4))
    assert SELF not in [r.label for r in tree_rows(report)]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (8_030_261_248, "8.03 B"),  # Llama-3-8B
        (25_557_032, "25.6 M"),  # ResNet-50
        (255_690, "256 k"),  # the guides' SimpleConv
        (999, "999"),
        (999_500, "1 M"),  # rounds up into the next prefix
        (1_750_000_000_000, "1.75 T"),
        (0, "0"),
    ],
)
def test_parameters_as_people_write_them(value, text):
    assert count_text(value) == text


def test_llama_3_8b_prints_8_03_b_parameters():
    transformers = pytest.importorskip("transformers")
    config = transformers.LlamaConfig(
        vocab_size=128256,
        hidden_size=4096,
        intermediate_size=14336,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=8,
    )
    with torch.device("meta"):
        model = transformers.LlamaForCausalLM(config)
    report = flopwise.count(model, {"input_ids": torch.zeros(1, 2, dtype=torch.long)}, mode="meta")
    per_layer = 2 * 4096 * 4096 + 2 * 4096 * 1024 + 3 * 4096 * 14336 + 2 * 4096  # q,o + k,v + MLP + 2 norms
    assert report.params == 2 * 128256 * 4096 + 32 * per_layer + 4096 == 8_030_261_248  # embed + head + final norm
    root = report.table(depth=0).splitlines()[2]
    assert "8.03 B" in root and "8.03 G" not in root
    assert "G" in root  # MACs and FLOPs keep SI prefixes


def test_cli_table_footer_gives_weight_and_activation_memory(capsys):
    assert main(["guides:SimpleConv", "-q"]) == 0
    out = capsys.readouterr().out
    weights = (16 * 1 * 9 + 16 + 32 * 16 * 9 + 32 + 25088 * 10 + 10) * 4  # 255,690 float32 parameters
    assert f"weight memory: {weights:,} bytes (999 KiB, float32)" in out
    # the peak is during relu(conv2(x)): relu1's output x, conv2's output and relu2's output are alive together
    peak = (16 + 32 + 32) * 28 * 28 * 4
    assert f"activation memory: {peak:,} bytes at the peak" in out
    report = flopwise.count(SimpleConv(), torch.rand(1, 1, 28, 28))
    assert (report.param_memory, report.peak_activation_bytes) == (weights, peak)
    assert main(["guides:SimpleConv", "-q", "--format", "json"]) == 0
    memory = json.loads(capsys.readouterr().out)["memory"]
    assert memory == {"weights": weights, "weights_by_dtype": {"float32": weights}, "peak_activations": peak}


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1023, "1023 B"),
        (1024, "1 KiB"),
        (1536, "1.5 KiB"),  # 1.5 × 1024
        (12_582_912, "12 MiB"),  # 12 × 1024²
        (3 * 1024**3 + 512 * 1024**2, "3.5 GiB"),
    ],
)
def test_bytes_in_binary_units(value, text):
    assert binary_bytes(value) == text


def test_table_bytes_column_is_in_binary_units():
    lines = flopwise.count(SimpleConv(), torch.rand(1, 1, 28, 28)).table().splitlines()
    conv1 = next(line for line in lines if line.strip().startswith("conv1"))
    moved = (28 * 28 + 16 * 9 + 16) * 4 + 16 * 28 * 28 * 4  # reads input, weight, bias; writes 16×28×28 (fp32)
    assert conv1.endswith(f"{moved / 1024:.3g} KiB") and moved == 53_952  # 52.7 KiB, not 54 kB


class Repeated(nn.Module):
    """A conv, then one Linear applied three times: its shapes are those of its first call, marked."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 16, kernel_size=3, padding=1)
        self.fc = nn.Linear(28, 28)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.conv(x)
        return y, self.fc(self.fc(self.fc(y[:, 0])))


@pytest.mark.parametrize("mode", ["real", "fake", "meta"])
def test_each_module_keeps_the_shapes_of_its_first_call(mode):
    report = flopwise.count(Repeated(), torch.rand(1, 3, 28, 28), mode=mode)
    conv = report["conv"]
    assert conv.input_shapes == ((1, 3, 28, 28),)
    assert conv.output_shapes == ((1, 16, 28, 28),)  # k3 p1 s1 keeps 28: (28 + 2·1 − 3) / 1 + 1
    fc = report["fc"]  # y[:, 0] is channel 0 of the conv's output: 1×28×28, a Linear over its last 28
    assert (fc.input_shapes, fc.output_shapes, fc.calls) == (((1, 28, 28),), ((1, 28, 28),), 3)
    assert report[""].output_shapes == ((1, 16, 28, 28), (1, 28, 28))  # both outputs of the tuple, in order
    doc = report.to_dict()["modules"]
    assert (doc[1]["name"], doc[1]["input_shapes"], doc[1]["output_shapes"]) == (
        "conv",
        [[1, 3, 28, 28]],
        [[1, 16, 28, 28]],
    )


def test_shape_columns_are_opt_in():
    report = flopwise.count(Repeated(), torch.rand(1, 3, 28, 28))
    assert "Input shape" not in report.table()
    lines = report.table(shapes=True).splitlines()
    assert lines[0].split()[:6] == ["Module", "Type", "Input", "shape", "Output", "shape"]
    conv = next(line for line in lines if line.strip().startswith("conv"))
    assert conv.split()[2:4] == ["1×3×28×28", "1×16×28×28"]
    fc = next(line for line in lines if line.strip().startswith("fc"))
    assert "1×28×28 (1st of 3)  1×28×28 (1st of 3)" in fc
    markdown = report.to_markdown(shapes=True)
    assert "| `conv` | Conv2d | 1×3×28×28 | 1×16×28×28 |" in markdown


def test_cli_shapes_flag(capsys):
    assert main(["guides:SimpleConv", "--shapes", "-q"]) == 0
    lines = capsys.readouterr().out.splitlines()
    conv2 = next(line for line in lines if line.strip().startswith("conv2"))
    assert conv2.split()[2:4] == ["1×16×28×28", "1×32×28×28"]  # 16 → 32 channels, k3 p1 keeps 28×28
    fc = next(line for line in lines if line.strip().startswith("fc"))
    assert fc.split()[2:4] == ["1×25088", "1×10"]  # flattened 32·28·28 = 25,088 features → 10 classes
    assert main(["guides:SimpleConv", "--shapes", "--format", "csv", "-q"]) == 2
    assert "--shapes adds columns to --format table or markdown" in capsys.readouterr().err
