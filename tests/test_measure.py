"""measure: timings joined to counts. Asserts shapes, invariants and tolerances, never absolute speeds."""

from __future__ import annotations

import dataclasses
import json
import xml.etree.ElementTree as ET

import pytest
import torch
from torch import nn
from torch.nn.modules import module as module_globals

from flopwise.core.cost import Cost
from flopwise.core.energy import estimate, unsupported_reason
from flopwise.hardware import Timing, calibrate, find_device, measure, resolve_peaks, roofline_plot
from flopwise.hardware.roofline import Peaks


def mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(256, 512, bias=False), nn.ReLU(), nn.Linear(512, 256, bias=False))


@pytest.fixture(scope="module")
def measured():
    return measure(mlp(), torch.randn(64, 256), repeats=5, warmup=1, profile_repeats=2)


# — timings —


def test_timing_statistics():
    t = Timing((3.0, 1.0, 2.0, 10.0))
    assert t.median == 2.5  # (2 + 3) / 2
    assert (t.min, t.max) == (1.0, 10.0)
    assert t.spread == pytest.approx((10.0 - 1.0) / 2.5)
    with pytest.raises(ValueError, match="at least one sample"):
        Timing(())


def test_whole_run_timings_are_positive_and_shaped(measured):
    assert len(measured.total.samples) == 5 and all(s > 0 for s in measured.total.samples)
    assert measured.total.min <= measured.total.median <= measured.total.max
    assert measured.flops_per_s > 0 and measured.bytes_per_s > 0
    assert measured.report.macs == 64 * 256 * 512 + 64 * 512 * 256  # B·in·out per linear


def test_every_module_is_timed_once_per_repeat(measured):
    assert set(measured.module_times) == {"", "0", "1", "2"}
    assert all(len(t.samples) == 5 and t.min > 0 for t in measured.module_times.values())


def test_module_times_sum_to_the_whole(measured):
    # children run inside the root's span, so per run they can never exceed it; the gap is Sequential's own
    # Python and the hooks. Stated tolerance: the depth-1 modules cover at least 80% of the root.
    assert 0.8 <= measured.coverage(1) <= 1.0
    rows = {row.name: row for row in measured.modules(depth=None)}
    assert rows[""].share == pytest.approx(1.0)
    assert all(0 < rows[n].share for n in ("0", "1", "2"))  # medians of parts need not sum below 1; runs do


def test_op_times_join_to_counted_calls(measured):
    counted = {(call.module, call.op) for call in measured.report.calls}
    assert {("0", "aten.mm"), ("2", "aten.mm"), ("1", "aten.relu")} <= set(measured.op_times.seconds)
    assert set(measured.op_times.seconds) <= counted
    assert all(s >= 0 for s in measured.op_times.seconds.values())
    # op time + unattributed aten time fit in the profiled run's wall time
    assert sum(measured.op_times.seconds.values()) + measured.op_times.other_s <= measured.op_times.wall_s * 1.01
    ops = {row.name: row for row in measured.operators()}
    assert ops["aten.mm"].cost.macs == 2 * 64 * 256 * 512  # two linears of B·in·out
    assert ops["aten.mm"].calls == 2


def test_large_matmul_reaches_a_fraction_of_the_calibrated_peak():
    n = 768
    m = measure(nn.Linear(n, n, bias=False), torch.randn(n, n), repeats=3, warmup=1, profile_repeats=1)
    assert m.report.macs == n * n * n  # M·N·K
    mm = next(row for row in m.operators() if row.name == "aten.mm")
    ratio = mm.flops_per_s / m.peaks.flops_per_s
    assert 1 / 20 < ratio < 20  # a factor, not a speed: the calibrated peak is itself a matmul on this machine
    assert mm.bound == "compute"  # 2·n³ FLOPs over 3·n²·4 bytes = n/6 FLOP/B, far right of a CPU ridge


def test_calibration_measures_both_peaks():
    c = calibrate(matmul_n=128, copy_mib=4, repeats=2, budget_s=0.05)
    assert c.flops_per_s > 0 and c.bytes_per_s > 0
    assert "128×128" in c.source and "4 MiB" in c.source


# — roofline and peaks —


def test_roofline_arithmetic():
    p = Peaks("toy", "float32", flops_per_s=100.0, bytes_per_s=10.0, source="test")
    assert p.ridge == 10.0  # 100 FLOP/s ÷ 10 B/s
    assert p.bound(5.0) == "memory" and p.bound(20.0) == "compute"
    assert p.attainable(5.0) == 50.0  # 5 FLOP/B × 10 B/s
    assert p.fraction(flops=100, bytes_moved=20, seconds=4.0) == pytest.approx(25 / 50)  # 25 FLOP/s of 50
    assert p.fraction(flops=0, bytes_moved=20, seconds=4.0) == pytest.approx(5 / 10)  # a copy: 5 B/s of 10


def test_known_devices_resolve_with_a_source():
    assert find_device("NVIDIA H100 80GB HBM3").name == "H100-SXM"
    assert find_device("NVIDIA H100 PCIe").name == "H100-PCIe"
    assert find_device("NVIDIA A100-SXM4-80GB").name == "A100-SXM4-80GB"
    assert find_device("NVIDIA GeForce RTX 4090").name == "RTX-4090"
    assert find_device("NVIDIA H200").name == "H200-SXM"
    peaks = resolve_peaks("NVIDIA L4", "cuda", torch.bfloat16)
    assert peaks.flops_per_s == 121.0e12 and peaks.bytes_per_s == 300.0e9
    assert "datasheet" in peaks.source


def test_unknown_devices_are_refused_not_guessed():
    assert find_device("NVIDIA H100 NVL") is None  # a relative of a known card is not that card
    peaks = resolve_peaks("NVIDIA Imaginary X1", "cuda", torch.float16)
    assert peaks.flops_per_s is None and peaks.bytes_per_s is None
    assert "--peak-tflops" in peaks.unknown
    no_fp64 = resolve_peaks("NVIDIA L4", "cuda", torch.float64)  # the sheet states no FP64 figure
    assert no_fp64.flops_per_s is None and "float64" in no_fp64.unknown
    given = resolve_peaks("NVIDIA Imaginary X1", "cuda", torch.float16, peak_tflops=50.0, peak_gbs=800.0)
    assert given.flops_per_s == 50e12 and given.bytes_per_s == 800e9 and not given.unknown


def test_unknown_peak_gives_unknown_mfu(measured, tmp_path):
    unknown = resolve_peaks("NVIDIA Imaginary X1", "cuda", torch.float32)
    m = dataclasses.replace(measured, peaks=unknown)
    assert m.mfu is None and m.hfu is None
    assert "MFU and HFU unknown" in m.table()
    assert all(row.bound == "unknown" and row.roofline_fraction is None for row in m.modules())
    with pytest.raises(ValueError, match="peak_tflops"):
        roofline_plot(m, tmp_path / "no.png")


def test_mfu_is_model_flops_over_time_and_peak(measured):
    # by hand, mlp() on 64 rows: two bias-free Linears, 64·256·512 + 64·512·256 = 16,777,216 MACs
    model_flops = 2 * (64 * 256 * 512 + 64 * 512 * 256)  # contractions only, 2 FLOPs per MAC: 33,554,432
    hardware_flops = model_flops + 64 * 512  # every FLOP run: the ReLU adds 1 per element of its 64×512 input
    assert measured.model_flops == model_flops == 33_554_432
    assert measured.hardware_flops == hardware_flops == 33_587_200
    peak = measured.peaks.flops_per_s
    assert measured.mfu == pytest.approx(33_554_432 / measured.seconds / peak)
    assert measured.hfu == pytest.approx(33_587_200 / measured.seconds / peak)
    assert measured.hfu / measured.mfu == pytest.approx(33_587_200 / 33_554_432)  # 1 + 32,768 / 33,554,432


def test_roofline_plot_files_are_well_formed(measured, tmp_path):
    png = measured.roofline_plot(tmp_path / "roof.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.pyplot as plt

    assert plt.imread(png).ndim == 3
    svg = roofline_plot(measured, tmp_path / "roof.svg")
    assert ET.parse(svg).getroot().tag.endswith("svg")


# — energy —


def test_energy_estimate_arithmetic():
    e = estimate(Cost(macs=10, flops=25, bytes_read=8, bytes_written=8), "float32")
    compute_pj = 10 * (3.7 + 0.9) + 5 * 0.9  # MACs × (mult + add) + other FLOPs × add
    assert e.compute_j == pytest.approx(compute_pj * 1e-12)
    assert e.memory_j == pytest.approx((16 * 1300 / 8 * 1e-12, 16 * 2600 / 8 * 1e-12))  # 1.3–2.6 nJ per 8 B
    assert estimate(Cost(macs=1, flops=2), "float64") is None
    assert "no figure for float64" in unsupported_reason("float64")


def test_measurement_energy_and_dict(measured):
    low, high = measured.energy.total_j
    assert 0 < low < high
    data = json.loads(json.dumps(measured.to_dict()))
    assert data["schema"] == "flopwise-measure/1" and data["count"]["schema"] == "flopwise/1"
    assert data["time"]["median_s"] > 0 and data["energy_estimate"]["note"].startswith("estimate")
    assert {m["name"] for m in data["modules"]} == {"", "0", "1", "2"}
    assert "ESTIMATE" in measured.table()
    ops = measured.operators()
    per_op = [row.energy.total_j for row in ops]
    assert sum(low for low, _ in per_op) == pytest.approx(low)  # per-op estimates add up to the model's
    assert data["operators"][0]["energy_estimate_j"][0] > 0


# — the model and torch are left as found —


def test_measuring_leaves_model_and_torch_as_found():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Dropout(0.5), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))
    model.train()
    x = torch.randn(2, 3, 8, 8)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    hooks = (len(module_globals._global_forward_hooks), len(module_globals._global_forward_pre_hooks))
    m = measure(model, x, repeats=2, warmup=1, profile_repeats=1, step="train")
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in model.parameters())
    assert model.training and all(mod.training for mod in model.modules())
    assert torch.equal(torch.get_rng_state(), rng)
    assert (len(module_globals._global_forward_hooks), len(module_globals._global_forward_pre_hooks)) == hooks
    assert m.step == "train"


def test_training_step_counts_forward_and_backward():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 16, bias=False), nn.Linear(16, 8, bias=False))
    m = measure(model, torch.randn(4, 32), repeats=2, warmup=1, profile_repeats=1, step="train")
    first, second = 4 * 32 * 16, 4 * 16 * 8  # B·in·out
    # forward both + weight gradients of both + input gradient of the second only (the input needs none)
    assert m.report.macs == 2 * first + 3 * second
    assert m.model_flops == 3 * 2 * (first + second)  # the MFU convention: a training step is 3 forwards
    rows = {row.name: row for row in m.modules(depth=1)}  # forward hooks time forwards: rows are forward work
    assert rows[""].cost.macs == first + second and rows["1"].cost.macs == second
    assert "forward part of the step only" in m.table()


def test_bad_arguments_say_what_to_do():
    with pytest.raises(ValueError, match="step must be one of"):
        measure(mlp(), torch.randn(2, 256), step="inference")
    with pytest.raises(TypeError, match="nn.Module"):
        measure(lambda x: x, torch.randn(2))  # type: ignore[arg-type]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matmul_achieves_a_fraction_of_the_table_peak():
    n = 4096
    m = measure(nn.Linear(n, n, bias=False).cuda().half(), torch.randn(n, n, device="cuda").half(), repeats=10)
    assert m.report.macs == n * n * n  # M·N·K
    if m.peaks.flops_per_s is None:
        pytest.skip(f"device not in the table: {m.peaks.unknown}")
    mm = next(row for row in m.operators() if row.name == "aten.mm")
    assert 0.05 < mm.flops_per_s / m.peaks.flops_per_s <= 1.05


# — profiler attribution, on hand-made event trees —


class Event:
    """The fields of torch.autograd.profiler_util.FunctionEvent that attribution reads (times in µs)."""

    def __init__(self, name, total, children=()):
        self.name, self.cpu_time_total, self.cpu_children, self.cpu_parent = name, total, list(children), None
        self.self_cpu_time_total = total - sum(c.cpu_time_total for c in self.cpu_children)
        for child in self.cpu_children:
            child.cpu_parent = self


def flat(event):
    return [event] + [e for child in event.cpu_children for e in flat(child)]


def test_attribution_takes_outermost_counted_ops_and_their_module():
    from flopwise.hardware.optimes import attribute

    root = Event(
        "flopwise::",
        100,
        [
            Event(
                "flopwise::fc",
                60,
                [
                    Event(
                        "aten::linear", 50, [Event("aten::t", 5), Event("aten::addmm", 40, [Event("aten::copy_", 10)])]
                    )
                ],
            ),
            Event("aten::add", 20),
        ],
    )
    seconds, other, nested, residual = attribute(flat(root), {("fc", "aten.addmm"), ("", "aten.add")}, cuda=False)
    assert seconds == {("fc", "aten.addmm"): 40e-6, ("", "aten.add"): 20e-6}  # inclusive: copy_ stays inside
    assert other == pytest.approx((50 - 5 - 40 + 5) * 1e-6)  # linear's own time + aten::t (a free view)
    assert nested == {("fc", "aten.addmm"): 2, ("", "aten.add"): 1}  # addmm and its copy_; add alone
    assert residual == set()


def test_attribution_gives_a_modules_unmatched_time_to_its_one_untimed_op():
    from flopwise.hardware.optimes import attribute

    bn = Event("flopwise::bn", 30, [Event("aten::batch_norm", 25, [Event("aten::native_batch_norm", 20)])])
    counted = {("bn", "aten._native_batch_norm_legit_no_training")}  # the counting mode's name for it
    seconds, other, _, residual = attribute(flat(bn), counted, cuda=False)
    assert seconds == {("bn", "aten._native_batch_norm_legit_no_training"): pytest.approx(25e-6)}  # 5 + 20 µs
    assert other == 0 and residual == counted


def test_profiler_overhead_is_measured():
    from flopwise.hardware.optimes import overhead_per_event

    assert 0 <= overhead_per_event(torch.device("cpu"), calls=200) < 1e-3  # bookkeeping, not milliseconds


def test_containers_never_called_sum_their_children():
    class Blocks(nn.Module):
        def __init__(self):
            super().__init__()
            self.h = nn.ModuleList([nn.Linear(64, 64), nn.Linear(64, 64)])

        def forward(self, x):
            for block in self.h:
                x = block(x)
            return x

    m = measure(Blocks(), torch.randn(8, 64), repeats=3, warmup=1, profile_repeats=1)
    h = m.timing_of("h")
    assert h.samples == tuple(a + b for a, b in zip(m.module_times["h.0"].samples, m.module_times["h.1"].samples))
    rows = {row.name: row for row in m.modules(depth=1)}
    assert rows["h"].kind == "ModuleList (Σ)" and rows["h"].cost.macs == 2 * 8 * 64 * 64  # two B·in·out
    assert 0 < m.coverage(1) <= 1.0


def test_keyword_inputs_and_meta_models():
    class Keyed(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(16, 4, bias=False)

        def forward(self, *, x):
            return self.fc(x)

    m = measure(Keyed(), {"x": torch.randn(2, 16)}, repeats=2, warmup=0, profile_repeats=1)
    assert m.report.macs == 2 * 16 * 4  # B·in·out
    assert "x=2×16 float32" in m.report.inputs
    with torch.device("meta"):
        on_meta = nn.Linear(4, 4)
    with pytest.raises(ValueError, match="meta device"):
        measure(on_meta, torch.randn(1, 4))


def test_a_module_that_works_outside_the_dispatcher_is_flagged():
    import numpy as np

    class NumpyMatmul(nn.Module):  # work no dispatch-level counter can see
        def forward(self, x):
            a = np.ones((200, 200))
            for _ in range(5):
                a = a @ a / 200.0
            return x + float(a[0, 0])

    model = nn.Sequential(nn.Linear(8, 8, bias=False), NumpyMatmul())
    m = measure(model, torch.randn(2, 8), repeats=3, warmup=1, profile_repeats=1)
    assert m.report.macs == 2 * 8 * 8  # the Linear only: the numpy products are invisible
    flagged = m.opless_modules()
    assert "1" not in flagged  # the numpy module still ran one aten op (the add), so it is not op-less…
    assert "0" not in flagged
    pure = nn.Sequential(nn.Linear(8, 8, bias=False), NumpyOnly())
    m = measure(pure, torch.randn(2, 8), repeats=3, warmup=1, profile_repeats=1)
    assert list(m.opless_modules()) == ["1"]  # …a forward with no aten op at all that takes time is
    assert "ran no aten op yet took time" in m.table()
    assert m.to_dict()["opless_modules"]["1"] >= 1e-4


class NumpyOnly(nn.Module):
    def forward(self, x):
        import numpy as np

        a = np.ones((200, 200))
        for _ in range(5):
            a = a @ a / 200.0
        return x  # returned untouched: no aten op runs in this forward


def test_the_cli_says_whether_its_peak_was_cached_and_recalibrates_on_request(tmp_path, monkeypatch, capsys):
    from flopwise.cli import main

    monkeypatch.setenv("FLOPWISE_CACHE_DIR", str(tmp_path))
    args = ["guides:SimpleLinearModel", "--measure", "--format", "json", "-q"]
    peaks = []
    for extra in ([], [], ["--recalibrate"]):
        assert main(args + extra) == 0
        peaks.append(json.loads(capsys.readouterr().out)["measurement"]["peaks"])
    first, cached, again = (p["calibration"] for p in peaks)
    assert (first["cached"], cached["cached"], again["cached"]) == (False, True, False)
    assert cached["measured_at"] == first["measured_at"] and peaks[1]["flops_per_s"] == peaks[0]["flops_per_s"]
    assert "from the cache" in peaks[1]["source"] and first["measured_at"][:16].replace("T", " ") in peaks[1]["source"]
    assert first["threads"] == torch.get_num_threads() and len(first["matmul"]["samples_s"]) == 9
