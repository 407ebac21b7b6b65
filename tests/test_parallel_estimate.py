"""The step-time estimate of a parallel plan: NCCL's ring model on the link table, the roofline on the device
table, the pipeline replayed in its schedule's order (flopwise.parallel.estimate)."""

from __future__ import annotations

import pytest
import torch
from test_parallel import MLP, B, D, S, colwise_rowwise

from flopwise.hardware.devices import find_device
from flopwise.parallel import Link, find_link, plan
from flopwise.parallel.estimate import call_seconds, replay
from flopwise.parallel.links import seconds


def test_a_collective_costs_latency_per_ring_step_and_its_bus_bytes() -> None:
    nvlink = find_link("nvlink")
    # all-reduce of 2,560 bytes over 8 ranks: 2·7 = 14 ring steps, 8.4 µs + 14·3.4 µs = 56 µs of latency, and
    # 2,560·14/8 = 4,480 bytes at 450 GB/s
    assert seconds("all_reduce", 8, 2_560, 1, nvlink) == pytest.approx(56e-6 + 4_480 / 450e9)
    # all-gather of 1 GB over 16 ranks on InfiniBand NDR: 15 steps of 9.6 µs, and 1e9·15/16 bytes at 50 GB/s
    ib = find_link("InfiniBand-NDR")
    assert seconds("all_gather", 16, 10**9, 1, ib) == pytest.approx((8.4 + 15 * 9.6) * 1e-6 + 10**9 * 15 / 16 / 50e9)
    # a send: one step, its bytes once; half the bandwidth doubles the transfer
    assert seconds("send", 2, 10**6, 3, ib, efficiency=0.5) == pytest.approx(3 * (8.4 + 9.6) * 1e-6 + 10**6 / 25e9)
    assert seconds("all_reduce", 1, 10**6, 1, ib) == 0.0  # a group of one moves nothing
    custom = Link("my-fabric", 100.0, 2.0, "measured here")
    assert find_link(custom) is custom
    with pytest.raises(ValueError, match="unknown link"):
        find_link("carrier pigeon")


def test_the_pipeline_replay_gives_the_textbook_bubble() -> None:
    # p = 2 stages, m = 2 micro-batches, forward 1 s, backward 2 s, instant sends: both GPipe and 1F1B take
    # (m + p − 1)·(F + B) = 3·3 = 9 s, and each stage idles 9 − 2·3 = 3 s: a bubble of (p − 1)/(m + p − 1) = 1/3
    durations = {0: (1.0, 2.0, 0.0), 1: (1.0, 2.0, 0.0)}
    gpipe = {0: ["0F0", "0F1", "0B0", "0B1"], 1: ["1F0", "1F1", "1B0", "1B1"]}
    one_f_one_b = {0: ["0F0", "0F1", "0B0", "0B1"], 1: ["1F0", "1B0", "1F1", "1B1"]}
    for order in (gpipe, one_f_one_b):
        makespan, timeline = replay(order, durations, train=True)
        assert makespan == 9.0
        assert 1 - sum(end - start for _, _, start, end in timeline) / (2 * makespan) == pytest.approx(1 / 3)
    # stage 0's backward of micro-batch 1 waits for stage 1's (done at 7 s in 1F1B), then takes 2 s
    _, timeline = replay(one_f_one_b, durations, train=True)
    assert timeline[-1] == (0, "0B1", 7.0, 9.0)
    # a send of 0.5 s between the stages delays each hand-over: stage 1's first forward starts at 1.5 s
    _, timeline = replay(gpipe, {0: (1.0, 2.0, 0.5), 1: (1.0, 2.0, 0.0)}, train=True)
    assert (1, "1F0", 1.5, 2.5) in timeline


def test_the_mlp_plan_step_is_its_roofline_compute_plus_its_all_reduce() -> None:
    p = plan(MLP(), torch.randn(B, S, D), {"tp": 8}, colwise_rowwise)
    e = p.estimate(device="H100-SXM")
    spec = find_device("H100-SXM")
    assert spec is not None
    compute = sum(call_seconds(p.ranks[0], spec, set()))
    # the one all-reduce (2,560 bytes over 8 ranks on NVLink) is exposed: nothing hides tensor-parallel traffic
    assert e.step_s == pytest.approx(compute + 56e-6 + 4_480 / 450e9)
    # model FLOPs: 2·MACs over the 8 ranks = 2·327,680; MFU against 8 ranks' float32 peak (67 TFLOP/s each)
    assert e.model_flops == 655_360 and e.dtype == "float32"
    assert e.mfu == pytest.approx(655_360 / e.step_s / (8 * 67e12))
    assert e.links == {"tp": "NVLink4"}
    assert "ESTIMATE" in str(e) and any("overlap" in a for a in e.assumptions)


def test_groups_that_span_nodes_take_the_network_and_dp_traffic_overlaps() -> None:
    model = torch.nn.Sequential(MLP())
    x = torch.randn(16 * B, S, D)

    def fsdp_and_tp(m: torch.nn.Module, mesh: object) -> None:
        from torch.distributed.fsdp import fully_shard

        colwise_rowwise(m[0], mesh)
        fully_shard(m, mesh=mesh["dp"])  # type: ignore[index]

    p = plan(model, x, {"dp": 16, "tp": 8}, fsdp_and_tp)
    assert p.world == 128 and p.counted == 1
    hidden = p.estimate(overlap=1.0)
    exposed = p.estimate(overlap=0.0)
    # tp groups are 8 consecutive ranks (one node), dp groups take one rank from each of 16 nodes
    assert hidden.links == {"tp": "NVLink4", "dp": "InfiniBand-NDR"}
    dp = exposed.ranks[0].comm_s["dp"]
    assert exposed.ranks[0].exposed_dp_s == pytest.approx(dp)
    assert hidden.ranks[0].exposed_dp_s == pytest.approx(max(0.0, dp - hidden.ranks[0].compute_s))
    assert exposed.step_s - hidden.step_s == pytest.approx(dp - hidden.ranks[0].exposed_dp_s)
    with pytest.raises(ValueError, match="unknown device"):
        p.estimate(device="abacus")


def test_the_estimate_draws_its_bars_and_timeline_as_svg() -> None:
    import xml.dom.minidom

    from test_parallel import tiny_llama

    model, ids = tiny_llama(batch=4, layers=2)
    e = plan(model, {"input_ids": ids, "labels": ids}, {"pp": 2}, step="train").estimate()
    svg = e.to_svg()
    rects = xml.dom.minidom.parseString(svg).getElementsByTagName("rect")
    # three bars per distinct rank (compute, communication, exposed), one block per action of the timeline
    assert len(rects) == 3 * len(e.ranks) + len(e.timeline) == 3 * 2 + 2 * 2 * 2
    assert "bubbles" in svg


def test_a_pipelined_step_takes_the_gradient_accumulation_of_its_later_micro_batches() -> None:
    # stage 0: Linear(8, 16) and its ReLU; 4 micro-batches, each after the first adding its gradients into
    # .grad: weight 128 and bias 16 float32 elements, 12 bytes each (8 read, 4 written), 1,728 bytes a micro-batch
    # at 3,350 GB/s (memory-bound: 144 FLOPs at 67 TFLOP/s take far less)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4), torch.nn.ReLU())
    p = plan(model, torch.randn(8, 8), {"pp": 2}, step="train", microbatches=4)
    spec = find_device("H100-SXM")
    assert spec is not None
    first = p.ranks[0]
    program = sum(t for t, label in zip(call_seconds(first, spec, set()), first.phase_of_calls, strict=True))
    e = p.estimate(device="H100-SXM")
    assert e.ranks[0].compute_s == pytest.approx(4 * program + 3 * 1_728 / 3_350e9)


def test_fsdp2_copies_under_a_pipeline_are_timed_once_a_step() -> None:
    # FSDP2's copies and collectives under a pipeline run once a step (parallel/per_step.py): the copies' roofline
    # time (no FLOPs: their bytes at 3,350 GB/s) is the rank's per-step time, outside the micro-batches' forward;
    # the collectives are timed on their links, once a step too
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4), torch.nn.ReLU())
    p = plan(model, torch.randn(16, 8), {"dp": 2, "pp": 2}, step="train", microbatches=4)
    first = p.ranks[0]
    once = [c for c, taken in zip(first.report.calls, first.once_per_step, strict=True) if taken]
    assert len(once) == 5 and all(c.cost.flops == 0 for c in once)
    e = p.estimate(device="H100-SXM")
    copies = [c for c in once if c.op.startswith("fsdp.")]
    assert len(copies) == 3 and e.ranks[0].per_step_s == pytest.approx(sum(c.cost.bytes for c in copies) / 3_350e9)
