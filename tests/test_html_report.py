"""The HTML report in a real headless Chromium (Debian's `chromium`): it renders, the icicle and the tables show
the guides' numbers, clicking a header sorts, typing filters, the explanation folds out, nothing is fetched and
nothing is logged as an error. Without chromium these tests fail, saying how to install it (`make test` does)."""

from __future__ import annotations

import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import flopwise
from flopwise.cli import main
from flopwise.examples import SimpleConv
from flopwise.render.html_report import render_html_report
from flopwise.render.svg import roofline_svg
from tests.browser import Browser, find_chromium, guides_page
from tests.models import Uncosted

CONV1_MACS = 28 * 28 * 3 * 3 * 1 * 16  # H_out·W_out·K_h·K_w·C_in·C_out = 112,896
CONV2_MACS = 28 * 28 * 3 * 3 * 16 * 32  # 3,612,672
FC_MACS = 32 * 28 * 28 * 10  # 250,880
QK_MACS = 10 * 10 * 32 * 8  # L·S·E_head·heads = 25,600 (and AV the same)


@pytest.fixture(scope="module")
def browser():
    if find_chromium() is None:  # a failure, never a skip: a missing browser must not pass as a green run
        pytest.fail(
            "chromium is missing: `make test` installs it (apt-get install -y chromium), or set "
            "FLOPWISE_CHROMIUM to a Chromium binary"
        )
    with Browser() as b:
        yield b


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    return guides_page(tmp_path_factory.mktemp("html") / "guides.html")


@pytest.fixture
def opened(browser, page):
    browser.errors.clear()
    browser.open(page)
    assert browser.evaluate("document.documentElement.dataset.ready") == "true"  # the script ran to its end
    yield browser
    assert browser.errors == []  # no console error, no uncaught exception, on load or after any interaction


def names(b: Browser, selector: str) -> list[str]:
    return b.evaluate(f"[...document.querySelectorAll({selector!r})].map(e => e.dataset.name)")


def cell(b: Browser, section: int, name: str, column: int) -> str:
    return b.evaluate(
        f"document.querySelector('#report-{section} .modules tr[data-name=\"{name}\"]').children[{column}].textContent"
    )


MACS_COLUMN = 3  # Module, Type, Params, MACs, …


def test_page_is_one_file_that_fetches_nothing(opened, page):
    html = page.read_text()
    assert "<script src" not in html and '<link rel="stylesheet"' not in html and "@import" not in html
    assert re.findall(r"https?://[^\s\"')]+", html) == []  # no URL at all (the SVG namespace comes with a roofline)
    assert opened.requests == [page.resolve().as_uri()]  # the browser asked for the page itself and nothing else
    assert opened.evaluate("document.querySelectorAll('section.report h2').length") == 3
    headings = opened.evaluate("[...document.querySelectorAll('section.report h2')].map(h => h.textContent)")
    assert headings == ["SimpleLinearModel", "SimpleConv", "SimpleAttentionBlock"]


def test_summary_states_the_convention_inputs_and_totals(opened):
    text = opened.evaluate("document.querySelector('#report-1 .summary').textContent")
    assert "1×1×28×28 float32" in text
    assert "default — 2 FLOPs per MAC plus every non-contraction op" in text
    assert f"{CONV1_MACS + CONV2_MACS + FC_MACS:,} MACs" in text
    assert "3,976,448 MACs" in text
    assert opened.evaluate("document.querySelectorAll('pre.incomplete').length") == 0  # all three are complete


def test_table_shows_the_guides_numbers(opened):
    assert cell(opened, 1, "conv1", MACS_COLUMN) == "112,896" == f"{CONV1_MACS:,}"
    assert cell(opened, 1, "conv2", MACS_COLUMN) == f"{CONV2_MACS:,}"
    assert cell(opened, 1, "fc", MACS_COLUMN) == f"{FC_MACS:,}"
    assert cell(opened, 1, "SimpleConv (total)", MACS_COLUMN) == "3,976,448"
    assert cell(opened, 0, "fc2", MACS_COLUMN) == f"{20 * 15:,}"  # the guide's fc2: 20·15
    # the attention block's own QKᵀ and AV sit in its (self) row, so the rows under the total add up
    assert cell(opened, 2, "SimpleAttentionBlock (self)", MACS_COLUMN) == f"{2 * QK_MACS:,}"
    values = opened.evaluate(
        "[...document.querySelectorAll('#report-2 .modules tbody tr:not(.root) "
        f"td:nth-child({MACS_COLUMN + 1})')].map(td => +td.dataset.value)"
    )
    assert sum(values) == 4 * 10 * 256 * 256 + 2 * QK_MACS == 2_672_640


def test_icicle_widths_follow_flops_and_zoom(opened):
    node = '#report-1 .icicle .node[data-name="{}"]'
    conv1 = opened.evaluate(f"document.querySelector('{node.format('conv1')}').dataset.value")
    assert int(conv1) == 2 * CONV1_MACS + 16 * 28 * 28  # FLOPs: 2 per MAC + one bias add per output
    tip = opened.evaluate(f"document.querySelector('{node.format('conv1')}').title")
    assert "MACs 112,896" in tip and "Conv2d 1→16" in tip

    def width(name: str) -> float:
        return opened.evaluate(f"document.querySelector('{node.format(name)}').getBoundingClientRect().width")

    root, conv2 = width("SimpleConv (total)"), width("conv2")
    assert conv2 / root == pytest.approx((2 * CONV2_MACS + 32 * 784) / 8_028_170, abs=2 / root)
    opened.click(node.format("conv2"))  # zoom in: conv2 spans the whole width, its siblings are hidden
    assert opened.evaluate("new Promise(r => setTimeout(r, 400))") is None  # the CSS transition
    assert width("conv2") == pytest.approx(root, abs=1)
    assert opened.evaluate(f"getComputedStyle(document.querySelector('{node.format('conv1')}')).display") == "none"
    opened.click(node.format("conv2"))  # the zoomed block again: back out
    opened.evaluate("new Promise(r => setTimeout(r, 400))")
    assert width("conv2") == pytest.approx(conv2, abs=1)


def test_clicking_a_header_sorts(opened):
    rows = "#report-1 .modules tbody tr"
    assert names(opened, rows) == ["SimpleConv (total)", "conv1", "conv2", "fc", "SimpleConv (self)"]  # tree order
    opened.click("#report-1 .modules th[data-key=macs]")
    assert names(opened, rows) == ["SimpleConv (total)", "conv2", "fc", "conv1", "SimpleConv (self)"]
    assert opened.evaluate("document.querySelector('#report-1 .modules th[data-key=macs]').ariaSort") == "descending"
    opened.click("#report-1 .modules th[data-key=macs]")  # again: smallest first
    assert names(opened, rows) == ["SimpleConv (self)", "conv1", "fc", "conv2", "SimpleConv (total)"]
    opened.click("#report-1 .modules th[data-key=module]")  # text columns sort alphabetically
    assert names(opened, rows)[:2] == ["conv1", "conv2"]
    opened.click("#report-1 .operators th[data-key=calls]")
    assert names(opened, "#report-1 .operators tbody tr")[0] in ("aten.convolution", "aten.relu")  # 2 calls each


def test_typing_filters(opened):
    opened.type("#report-2 .modules input", "Linear")  # by type
    assert names(opened, "#report-2 .modules tbody tr") == ["values", "keys", "queries", "fc_out"]
    assert opened.evaluate("document.querySelector('#report-2 .modules .count').textContent").startswith("4 of 6")
    opened.type("#report-1 .modules input", "fc")  # by name
    assert names(opened, "#report-1 .modules tbody tr") == ["fc"]
    opened.type("#report-2 .operators input", "bmm")
    assert names(opened, "#report-2 .operators tbody tr") == ["aten.bmm"]
    bmm = opened.evaluate("[...document.querySelectorAll('#report-2 .operators tbody td')].map(td => td.textContent)")
    assert bmm[1:3] == ["2", f"{2 * QK_MACS:,}"]  # QKᵀ and AV: 2 calls, 51,200 MACs
    opened.click("#report-1 .modules .controls button")  # "tree order" clears the filter
    assert len(names(opened, "#report-1 .modules tbody tr")) == 5


def test_explanation_folds_out_per_module(opened):
    details = '#report-1 .explain details[data-name="conv1"]'
    assert opened.evaluate(f"document.querySelector('{details}').open") is False
    opened.click(f"{details} summary")
    assert opened.evaluate(f"document.querySelector('{details}').open") is True
    text = opened.evaluate(f"document.querySelector('{details} pre').innerText")
    assert "28·28·3·3·1·16·1 = 112,896" in text
    own = opened.evaluate(
        "document.querySelector('#report-2 .explain details[data-name=\"SimpleAttentionBlock "
        "(self)\"] pre').textContent"
    )
    assert "aten.bmm (QKᵀ)" in own and "8·10·10·32 = 25,600" in own  # B·M·N·K with B = heads


def test_incomplete_count_and_measurement_are_shown(browser, tmp_path):
    odd = flopwise.count(Uncosted(), torch.rand(3))  # the tests' own op: no formula, now or later
    assert odd.unsupported == {"flopwise_tests.never_costed": 1}
    # report.warnings (DESIGN.md: what the count could not keep as found or had to assume) is shown when present
    object.__setattr__(odd, "warnings", ["an assumption the count made"])
    model, x = SimpleConv(), torch.rand(1, 1, 28, 28)
    measured = flopwise.measure(model, x, peak_tflops=0.1, peak_gbs=10, repeats=2, warmup=1, profile_repeats=1)
    path = tmp_path / "two.html"
    path.write_text(render_html_report([odd, measured.report], [None, measured]))
    browser.errors.clear()
    browser.open(path)
    banner = browser.evaluate("document.querySelector('#report-0 pre.incomplete').textContent")
    assert banner.startswith("INCOMPLETE") and "flopwise_tests.never_costed" in banner
    warning = browser.evaluate("document.querySelector('#report-0 p.warning').textContent")
    assert warning == "warning: an assumption the count made"
    assert browser.evaluate("document.querySelectorAll('#report-1 svg.roofline circle').length") >= 2
    assert browser.evaluate("document.querySelector('#report-1 svg.roofline').getBoundingClientRect().width") > 300
    assert browser.errors == []


def test_roofline_svg_places_the_ridge():
    doc = {
        "peaks": {"flops_per_s": 1e12, "bytes_per_s": 1e11, "unknown": None},
        "operators": [
            {"name": "aten.mm", "intensity": 100.0, "flops_per_s": 5e11, "share": 0.9},
            {"name": "aten.add", "intensity": 0.1, "flops_per_s": 5e9, "share": 0.1},
        ],
    }
    svg = roofline_svg(doc)
    assert svg.count("<circle") == 2 and "ridge at 10 FLOPs/byte" in svg  # 1e12 FLOP/s ÷ 1e11 B/s
    assert roofline_svg({**doc, "peaks": {"flops_per_s": None, "bytes_per_s": 1e11}}) == ""


def test_screenshot(opened, tmp_path):
    png = opened.screenshot(tmp_path / "guides.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk
    assert width == 1280 and height > 1500  # the full page: three sections
    opened.resize(1280, 900)


def test_cli_writes_the_html_report(tmp_path):
    out = tmp_path / "report.html"
    flopwise_script = Path(sys.executable).with_name("flopwise")
    done = subprocess.run(
        [str(flopwise_script), "--format", "html", "-o", str(out), "-q"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    html = out.read_text()
    assert html.startswith("<!DOCTYPE html>") and html.count('<section class="report"') == 3
    assert '"macs": 112896' in html  # conv1, in the data the page draws from
    assert "SimpleConv — the guide counts 3,976,448 MACs by hand" in html  # each section's title
    compared = tmp_path / "compare.html"
    assert (
        main(
            ["compare", "guides:SimpleConv", "guides:SimpleLinearModel", "--format", "html", "-o", str(compared), "-q"]
        )
        == 0
    )
    titles = re.findall(r'data-title="([^"]+)"', compared.read_text())
    assert titles == ["guides:SimpleConv", "guides:SimpleLinearModel"]  # a section per model, in the order given
    single = flopwise.count(SimpleConv(), torch.rand(1, 1, 28, 28)).to_html()
    assert single.count('<section class="report"') == 1 and "<nav></nav>" in single  # one model: no navigation
