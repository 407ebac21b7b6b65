"""The zoo sweep in parts (bench/zoo.py --only/--after/--resume/--earlier): rows of several runs merge into one
table, the newest row of a model winning, and a table written earlier reads back as rows."""

from __future__ import annotations

import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bench"))
import zoo  # noqa: E402
import zoo_hf  # noqa: E402
import zoo_table  # noqa: E402

OLD = {"suite": "transformers", "model": "bart", "status": "crash", "run": "2026-11-24", "note": "RuntimeError: x | y"}
NEW = {
    "suite": "transformers",
    "model": "bart",
    "status": "ok",
    "run": "2026-12-04",
    "macs": 1_234,
    "meta_s": 0.5,
    "mode": "meta",
}
TIMM = {
    "suite": "timm",
    "model": "resnet18",
    "status": "ok",
    "run": "2026-11-24",
    "macs": 5,
    "real_s": 1.0,
    "fake_s": 2.0,
}


def test_an_earlier_table_reads_back_as_its_rows(tmp_path) -> None:
    table = tmp_path / "zoo.md"
    table.write_text(zoo_table.render([OLD, TIMM], 60, 1))
    rows = {row["model"]: row for row in zoo_table.read_rows(str(table))}
    assert rows["bart"] == OLD  # the note keeps its "|", escaped in the table
    assert rows["resnet18"] == {**TIMM, "mode": "real+fake"}


def test_newer_rows_win_and_the_header_says_which_run_each_comes_from() -> None:
    text = zoo_table.render([NEW], 60, 1, earlier=[OLD, TIMM])
    assert "2 models; this run counted 1 of them" in text
    assert "Rows by the run they come from: 2026-11-24: 1, 2026-12-04: 1." in text
    assert "| bart | ok | meta | 1,234 | 0.5 | 2026-12-04 |  |" in text
    assert "crash" not in text.split("## transformers")[1]  # the old row of bart is replaced


def test_a_sweep_in_parts_selects_by_name_by_position_and_skips_what_is_done() -> None:
    cases = [("transformers", name) for name in ("albert", "bart", "bert", "owlv2", "owlv2_vision_model", "phi")]
    assert zoo.select(cases, "bart,phi", "", set()) == [cases[1], cases[5]]
    assert zoo.select(cases, "", "owlv2_vision_model", set()) == [cases[5]]
    assert zoo.select(cases, "", "", {cases[0], cases[2]}) == [cases[1], *cases[3:]]


def test_an_error_the_models_own_code_raises_is_told_apart_from_a_crash() -> None:
    transformers = pytest.importorskip("transformers")
    errors = {}
    for name, call in {
        "own check": lambda: transformers.AutoConfig.for_model("no-such-model"),  # a ValueError there
        "torch": lambda: torch.ones(2) @ torch.ones(3),  # a RuntimeError in torch
        "missing": lambda: torch.nn.Linear(2, 2)(),
    }.items():  # forward() missing an argument
        try:
            call()
        except Exception as error:  # noqa: BLE001 - each call raises; which kind is the point
            errors[name] = error
    assert zoo_hf.rejected_by_the_model(errors["own check"])
    assert zoo_hf.rejected_by_the_model(errors["missing"])
    assert not zoo_hf.rejected_by_the_model(errors["torch"])


class TakesFourFeatures(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


def test_a_failure_a_plain_forward_on_fake_tensors_repeats_is_the_models() -> None:
    import flopwise
    from flopwise.cli.inputs import Shaped, make_inputs
    from flopwise.cli.spec import Loaded

    with torch.device("meta"):  # as hf: builds it: no weights
        model = TakesFourFeatures()
    crash = {"status": "crash"}
    wrong = Loaded("spec", model, Shaped((1, 3)))  # 3 features where the Linear takes 4
    with pytest.raises(RuntimeError) as raised:
        flopwise.count(model, make_inputs(wrong.inputs, real=False))
    row = zoo_hf.confirmed(wrong, raised.value, crash)
    assert row["status"] == "model"
    assert row["note"].startswith("a plain forward (no flopwise) on fake tensors raises the same: RuntimeError")
    # the same model runs on 4 features: an error only the count raised stays a crash
    assert zoo_hf.confirmed(Loaded("spec", model, Shaped((1, 4))), raised.value, crash) == crash
