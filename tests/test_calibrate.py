"""CPU calibration: trials with a spread, threads pinned and restored, a per-machine cache on disk.

No assert here depends on how fast the machine is: only on how many trials ran, what was cached, and where.
"""

from __future__ import annotations

import json
import statistics
import sys

import pytest
import torch

from flopwise.hardware import calibrate
from flopwise.hardware.calibrate import pinned_threads
from flopwise.hardware.peak_cache import ENV, cache_file

QUICK = {"matmul_n": 64, "copy_mib": 1, "repeats": 3, "budget_s": 0.03, "warmup_s": 0.0}


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, str(tmp_path))
    # the check that a cached result was not measured under load finds none here, whatever the load now (it is
    # tested in tests/test_measure_output.py)
    monkeypatch.setattr(sys.modules["flopwise.hardware.calibrate"], "_spot_check", lambda *args: 0.0)
    return tmp_path


def stored(cache_dir) -> dict:
    return json.loads((cache_dir / "calibration.json").read_text())


def test_median_of_trials_with_their_spread(cache_dir):
    c = calibrate(**QUICK, cache=False)
    assert len(c.matmul.samples) == 3 and len(c.copy.samples) == 3  # one sample per trial
    median = statistics.median(c.matmul.samples)
    assert c.flops_per_s == pytest.approx(2 * 64**3 / median)  # 2·n³ FLOPs over the median trial
    assert c.bytes_per_s == pytest.approx(2 * (1 << 20) / statistics.median(c.copy.samples))  # read + write
    assert c.flops_spread == pytest.approx((max(c.matmul.samples) - min(c.matmul.samples)) / median)
    assert f"spread {c.flops_spread:.1%}" in c.source and f"spread {c.bytes_spread:.1%}" in c.source
    assert "median of 3 trials of a 64×64·64×64 float32 matmul" in c.source and "1 MiB copy" in c.source
    assert not (cache_dir / "calibration.json").exists()  # cache=False neither reads nor writes


def test_threads_are_pinned_for_the_calibration_and_restored(cache_dir):
    before = torch.get_num_threads()
    c = calibrate(**QUICK, threads=1, cache=False)
    assert c.threads == 1 and "1 threads" in c.source
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError, match="inside"), pinned_threads(1):
        assert torch.get_num_threads() == 1
        raise RuntimeError("inside")
    assert torch.get_num_threads() == before  # restored on an exception too


def test_a_result_is_cached_with_its_date_and_read_back(cache_dir):
    first = calibrate(**QUICK)
    assert not first.cached and "calibrated now" in first.source
    [(key, entry)] = stored(cache_dir).items()
    assert f"{torch.get_num_threads()} threads" in key and f"torch {torch.__version__}" in key and "float32" in key
    assert entry["machine"] in key and entry["measured_at"] == first.measured_at
    again = calibrate(**QUICK)
    assert again.cached and (again.flops_per_s, again.bytes_per_s) == (first.flops_per_s, first.bytes_per_s)
    assert again.matmul == first.matmul  # the trials themselves come back, so the spread does too
    assert f"calibrated on this machine at {first.measured_at[:10]}" in again.source
    assert "from the cache" in again.source


def test_recalibrate_replaces_the_cached_result(cache_dir):
    calibrate(**QUICK)
    entries = stored(cache_dir)
    [key] = entries
    entries[key]["flops_per_s"] = 1.0  # a marker no real machine measures
    (cache_dir / "calibration.json").write_text(json.dumps(entries))
    assert calibrate(**QUICK).flops_per_s == 1.0  # read from the cache, not measured
    fresh = calibrate(**QUICK, recalibrate=True)
    assert not fresh.cached and fresh.flops_per_s != 1.0
    assert stored(cache_dir)[key]["flops_per_s"] == fresh.flops_per_s


def test_another_configuration_misses_the_cache(cache_dir, monkeypatch):
    calibrate(**QUICK)
    assert not calibrate(**QUICK, dtype=torch.float64).cached
    assert not calibrate(**QUICK, threads=torch.get_num_threads() + 1).cached
    monkeypatch.setattr(torch, "__version__", "0.0.0-another")
    assert not calibrate(**QUICK).cached
    assert len(stored(cache_dir)) == 4  # one entry each; the first is still there


def test_an_unreadable_cache_is_measured_again_and_rewritten(cache_dir):
    (cache_dir / "calibration.json").write_text("{ not json")
    c = calibrate(**QUICK)
    assert not c.cached and len(stored(cache_dir)) == 1
    entries = stored(cache_dir)
    [key] = entries
    (cache_dir / "calibration.json").write_text(json.dumps({key: {"flops_per_s": 5.0}}))  # an older layout
    assert not calibrate(**QUICK).cached


def test_cache_folder(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV, str(tmp_path / "mine"))
    assert cache_file() == tmp_path / "mine" / "calibration.json"
    monkeypatch.delenv(ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_file() == tmp_path / "xdg" / "flopwise" / "calibration.json"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_file() == tmp_path / "home" / ".cache" / "flopwise" / "calibration.json"
