"""`flopwise compare` for many models (issue 28): --format html is one page with the comparison table first (ratios to
the baseline, sortable, each model linked to its report) and every model's report below; --plot names at most
LABELLED models, so that 80 stay readable, and draws every one as a point."""

from __future__ import annotations

import math
import subprocess
from types import SimpleNamespace

import pytest
from test_cli import SCRIPT  # the console script beside this interpreter

from flopwise.cli.plot import LABELLED, labelled, scatter_figure
from tests.browser import Browser, find_chromium


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    (root / "broken.py").write_text("from torch import nn\n\ndef broken():\n    return nn.Linear(4, 2), None\n")
    args = [
        "compare",
        "guides:SimpleConv",
        "guides:SimpleLinearModel",
        "broken.py:broken",
        "guides:SimpleAttentionBlock",
    ]
    result = subprocess.run(
        [SCRIPT, *args, "--format", "html", "-o", "zoo.html", "-q"],
        capture_output=True,
        text=True,
        cwd=root,
        timeout=600,
    )
    assert result.returncode == 1, result.stderr  # one model failed: its row says so, the others counted
    return root / "zoo.html"


def test_the_page_holds_the_comparison_then_each_report(page):
    if find_chromium() is None:
        pytest.fail("chromium is missing: `make test` installs it (apt-get install -y chromium)")
    with Browser() as b:
        b.open(page)
        assert b.evaluate("document.documentElement.dataset.ready") == "true" and b.errors == []
        rows = "#comparison tbody tr"
        names = f"[...document.querySelectorAll('{rows}')].map(e => e.dataset.name)"
        specs = ["guides:SimpleConv", "guides:SimpleLinearModel", "broken.py:broken", "guides:SimpleAttentionBlock"]
        assert b.evaluate(names) == specs  # the command line's order
        assert b.evaluate("[...document.querySelectorAll('section.report')].map(s => s.dataset.title)") == [
            "guides:SimpleConv",
            "guides:SimpleLinearModel",
            "guides:SimpleAttentionBlock",
        ]
        cells = b.evaluate(
            f"[...document.querySelectorAll('{rows}')].map(r => [...r.children].map(c => c.textContent))"
        )
        header = b.evaluate("[...document.querySelectorAll('#comparison th')].map(h => h.dataset.key)")
        column = {key: i for i, key in enumerate(header)}
        conv, linear, broken, attention = cells
        assert conv[column["macs"]] == "3,976,448" and conv[column["flops_ratio"]] == "1×"  # the baseline
        assert linear[column["macs_ratio"]] == f"{float(f'{515 / 3_976_448:.3g}'):g}×"  # 515 MACs / 3,976,448
        assert attention[column["macs_ratio"]] == f"{float(f'{2_672_640 / 3_976_448:.3g}'):g}×"
        assert broken[column["note"]].startswith("FAILED: broken.py:broken") and broken[column["macs"]] == ""
        link = "document.querySelector('#comparison tr[data-name=\"guides:SimpleAttentionBlock\"] a')"
        assert b.evaluate(f"{link}.getAttribute('href')") == "#report-2"  # its report, the third section
        b.click("#comparison th[data-key=macs]")  # sortable: most MACs first, the failed model last
        assert b.evaluate(names) == [
            "guides:SimpleConv",
            "guides:SimpleAttentionBlock",
            "guides:SimpleLinearModel",
            "broken.py:broken",
        ]
        assert b.errors == []


def report(params: int, flops: int) -> SimpleNamespace:
    return SimpleNamespace(params=params, flops=flops, complete=True, convention=SimpleNamespace(name="default"))


def test_a_plot_of_80_models_names_a_readable_few_and_draws_every_point():
    points = [
        (f"torchvision:model_{i}", report(10 ** (6 + i % 20 / 7), 10 ** (8 + (i * 7) % 30 / 9))) for i in range(80)
    ]
    axes = scatter_figure(points).axes[0]
    assert len(axes.collections[0].get_offsets()) == 80
    texts = [t.get_text() for t in axes.texts]
    chosen = labelled([p.params for _, p in points], [p.flops for _, p in points])
    assert texts == [f"model_{i}" for i in chosen] and 5 <= len(chosen) <= LABELLED
    assert f"80 models ({len(chosen)} named" in axes.get_title()
    flops = [p.flops for _, p in points]
    assert [flops[i] for i in chosen[:2]] == [max(flops), min(flops)]  # both ends are named first
    logs = [(math.log10(points[i][1].params), math.log10(points[i][1].flops)) for i in chosen]
    for a in range(len(logs)):
        for b in range(a):
            assert abs(logs[a][0] - logs[b][0]) > 0.1 or abs(logs[a][1] - logs[b][1]) > 0.1  # no two names collide


def test_a_plot_of_a_few_models_names_them_all():
    points = [(f"guides:m{i}", report(10 ** (3 + i), 10 ** (5 + i))) for i in range(6)]
    axes = scatter_figure(points).axes[0]
    assert sorted(t.get_text() for t in axes.texts) == [f"m{i}" for i in range(6)]
