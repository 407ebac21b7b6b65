"""What `--measure` prints (issue 28): stderr quiet by default (the profiler's own lines only with -v), the table at
--depth, a utilisation over 100 % reported as unknown with its reason, a stale cached calibration measured again."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest
import torch
from test_cli import SCRIPT  # the console script beside this interpreter
from torch import nn

from flopwise import measure
from flopwise.cli import main as cli_main
from flopwise.hardware import calibrate
from flopwise.hardware.peak_cache import ENV

QUICK = {"matmul_n": 64, "copy_mib": 1, "repeats": 3, "budget_s": 0.03, "warmup_s": 0.0}


def test_measure_keeps_library_noise_off_stderr_unless_verbose(tmp_path):
    args = [SCRIPT, "guides:SimpleLinearModel", "--measure"]
    quiet = subprocess.run(args, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    assert "MFU" in quiet.stdout
    assert all(line.startswith("flopwise: ") for line in quiet.stderr.splitlines()), quiet.stderr  # ours only
    if torch.autograd.kineto_available():  # the profiler's C++ side prints its start and stop to fd 2
        verbose = subprocess.run([*args, "-v"], capture_output=True, text=True, timeout=600, cwd=tmp_path)
        assert verbose.returncode == 0 and "profiler_start" in verbose.stderr, verbose.stderr


def test_the_measure_table_follows_depth(capsys):
    assert cli_main(["guides:SimpleConv", "--measure", "--depth", "0", "-q"]) == 0
    out = capsys.readouterr().out
    rows = out.split("by module (inclusive time from module hooks):")[1].split("by operator")[0].strip().splitlines()
    assert [row.split()[0] for row in rows[2:]] == ["SimpleConv"]  # header, rule, then the total row alone
    assert cli_main(["guides:SimpleConv", "--measure", "--depth", "1", "-q"]) == 0
    out = capsys.readouterr().out
    rows = out.split("by module (inclusive time from module hooks):")[1].split("by operator")[0].strip().splitlines()
    assert [row.split()[0] for row in rows[2:]] == ["SimpleConv", "conv1", "conv2", "fc"]


def test_a_utilisation_over_100_percent_is_unknown_with_its_reason():
    model, x = nn.Linear(64, 64), torch.rand(16, 64)
    m = measure(model, x, peak_tflops=1e-9, peak_gbs=1.0, repeats=2, profile_repeats=1)  # a peak of 1 kFLOP/s
    assert m.peaks.flops_per_s == pytest.approx(1e3) and m.model_flops / m.seconds > 1e3  # faster than that peak
    assert m.mfu is None and m.hfu is None
    assert "is above the peak used" in m.utilisation_note and "--peak-tflops" in m.utilisation_note
    assert "MFU unknown, HFU unknown — achieved" in m.table()
    assert m.to_dict()["mfu"] is None and "above the peak" in m.to_dict()["utilisation_note"]
    calibrated = dataclasses.replace(m, peaks=dataclasses.replace(m.peaks, calibration=calibrate(**QUICK, cache=False)))
    assert "calibration ran under load or is stale (--recalibrate" in calibrated.utilisation_note
    real_peak = dataclasses.replace(m, peaks=dataclasses.replace(m.peaks, flops_per_s=1e18))
    assert real_peak.mfu is not None and 0 < real_peak.mfu <= 1 and real_peak.utilisation_note == ""


def test_a_calibration_cached_under_load_is_measured_again(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, str(tmp_path))
    first = calibrate(**QUICK)
    cache = tmp_path / "calibration.json"
    entries = json.loads(cache.read_text())
    [key] = entries
    entries[key]["flops_per_s"] = first.flops_per_s / 100  # as if another process had kept the CPUs busy
    cache.write_text(json.dumps(entries))
    again = calibrate(**QUICK)
    assert not again.cached and again.flops_per_s > first.flops_per_s / 10
    assert "measured again: the calibration cached at" in again.source and "measured under load" in again.source
    stored = json.loads(cache.read_text())[key]
    assert stored["flops_per_s"] == again.flops_per_s and stored["note"] == ""  # replaced; the note is not kept
    monkeypatch.setattr(sys.modules["flopwise.hardware.calibrate"], "_spot_check", lambda *args: again.flops_per_s)
    assert calibrate(**QUICK).cached  # as fast as a check now: kept


def test_the_load_average_is_recorded_and_said_when_high(monkeypatch):
    c = calibrate(**QUICK, cache=False)
    loaded = dataclasses.replace(c, load_average=64.0)
    assert (
        "under load (load average 64 on" in loaded.source
        and "under load" not in dataclasses.replace(c, load_average=0.0).source
    )
