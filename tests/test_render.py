"""Renderers: golden tables of the guides' three models, CSV/Markdown/HTML/DataFrame agree with the report."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

import flopwise
from flopwise.examples import guide_examples
from flopwise.render.operators import render_operator_table
from tests.models import Uncosted, seeded

GOLDEN = Path(__file__).parent / "golden"
EXAMPLES = {e.name: e for e in seeded(guide_examples)}  # seeded weights: the golden tables are the same every run


@pytest.fixture(scope="module")
def reports() -> dict[str, flopwise.Report]:
    return {name: flopwise.count(e.model, e.inputs) for name, e in EXAMPLES.items()}


def check_golden(name: str, text: str, update: bool) -> None:
    path = GOLDEN / name
    if update:
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
        return
    assert path.exists(), f"{path} is missing: run pytest tests/test_render.py --update-golden"
    assert text == path.read_text(), f"{name} differs from its golden file; if intended, rerun with --update-golden"


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_golden_tables(reports, name, update_golden):
    report = reports[name]
    check_golden(f"{name}.table.txt", report.table(depth=2) + "\n", update_golden)
    check_golden(f"{name}.md", report.to_markdown(depth=2, per_operator=True) + "\n", update_golden)
    check_golden(f"{name}.operators.txt", render_operator_table(report) + "\n", update_golden)


def test_golden_tables_hold_the_guides_figures():
    # the golden files are generated, but what they say is checked against the guides here
    conv = (GOLDEN / "SimpleConv.table.txt").read_text()
    assert "3,976,448 MACs" in conv  # 112,896 + 3,612,672 + 250,880 (conv1 + conv2 + fc)
    attention = (GOLDEN / "SimpleAttentionBlock.md").read_text()
    assert "2,672,640 MACs" in attention  # 4 × 655,360 projections + 25,600 QKᵀ + 25,600 AV


def test_csv_one_row_per_module_with_exact_numbers(reports):
    rows = list(csv.DictReader(io.StringIO(reports["SimpleConv"].to_csv())))
    by_name = {r["module"]: r for r in rows}
    assert list(by_name) == ["", "conv1", "conv2", "fc"]
    assert int(by_name["conv1"]["macs"]) == 28 * 28 * 3 * 3 * 1 * 16  # H·W·K·K·Cin·Cout
    assert int(by_name["conv2"]["macs"]) == 28 * 28 * 3 * 3 * 16 * 32
    assert int(by_name["fc"]["macs"]) == 32 * 28 * 28 * 10
    assert int(by_name["fc"]["params"]) == 32 * 28 * 28 * 10 + 10  # weight + bias
    relus = int(by_name[""]["self_flops"])
    assert relus == 28 * 28 * 16 + 28 * 28 * 32  # F.relu runs in the root's forward: 1 FLOP per element
    children = sum(int(r["flops"]) for r in rows if r["depth"] == "1")
    assert children + relus == int(by_name[""]["flops"])  # rows sum to the total


def test_csv_per_operator_rows_sum_to_the_total(reports):
    report = reports["SimpleAttentionBlock"]
    rows = list(csv.DictReader(io.StringIO(report.to_csv(per_operator=True))))
    assert sum(int(r["macs"]) for r in rows) == report.macs == 2_672_640
    assert sum(int(r["flops"]) for r in rows) == report.flops


def test_markdown_renders_as_a_table(reports):
    markdown_it = pytest.importorskip("markdown_it")
    html = markdown_it.MarkdownIt("commonmark").enable("table").render(reports["SimpleLinearModel"].to_markdown())
    assert html.count("<table>") == 1
    assert html.count("<tr>") == 1 + 5  # header + total, fc1, fc2, fc3, (self): the two ReLUs in forward
    assert "<code>fc2</code>" in html
    assert "515 MACs" in html  # 10·20 + 20·15 + 15·1


def test_html_repr_and_dataframe(reports):
    report = reports["SimpleConv"]
    html = report._repr_html_()
    assert html.startswith('<div class="flopwise"><table>')
    assert html.count("<tr>") == 1 + 5  # header + total, conv1, conv2, fc, (self): the ReLUs in forward
    assert 'title="37,632">37.6 k' in html  # the self row's FLOPs: 28·28·16 + 28·28·32 ReLU elements
    assert 'title="3,612,672"' in html  # conv2's exact MACs on hover: 28·28·3·3·16·32
    pd = pytest.importorskip("pandas")
    frame = report.to_dataframe()
    assert isinstance(frame, pd.DataFrame)
    assert frame.loc["conv1", "macs"] == 28 * 28 * 3 * 3 * 1 * 16
    ops = report.to_dataframe(by="operator")
    assert ops["macs"].sum() == report.macs
    with pytest.raises(ValueError, match="by must be 'module' or 'operator'"):
        report.to_dataframe(by="layer")


def test_rich_table(reports):
    pytest.importorskip("rich")
    from rich.console import Console

    console = Console(file=io.StringIO(), width=120, color_system=None)
    console.print(reports["SimpleConv"].rich_table(depth=1))
    text = console.file.getvalue()
    assert "conv2" in text and "3.61 M" in text  # 3,612,672 MACs


def test_operator_table_marks_unsupported_ops():
    import torch

    report = flopwise.count(Uncosted(), torch.rand(3))  # the tests' own op: no formula, now or later
    assert report.unsupported == {"flopwise_tests.never_costed": 1}
    assert "no known cost" in render_operator_table(report)
    assert "INCOMPLETE" in report.to_markdown()


def test_golden_table_holds_with_one_exact_zero_weight():
    # the flake this guards against: an unseeded init put one exact 0.0 among fc's 32·28·28·10 = 250,880 weights
    # (about 1.6 % of runs) and the table gained Density and Effective MACs columns
    import torch

    example = seeded(guide_examples)[1]
    assert example.name == "SimpleConv"
    with torch.no_grad():
        example.model.fc.weight[0, 0] = 0.0
    report = flopwise.count(example.model, example.inputs)
    assert report.effective_macs == 3_976_448 - 1  # the one skipped multiply: fc runs once per input row (N = 1)
    assert report.table(depth=2) + "\n" == (GOLDEN / "SimpleConv.table.txt").read_text()
