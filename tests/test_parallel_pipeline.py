"""Pipeline parallelism in parallel plans: stages cut from the model, micro-batches, the schedule's order from
torch.distributed.pipelining, the sends and receives at stage boundaries (flopwise.parallel)."""

from __future__ import annotations

import pytest
import torch
from test_parallel import tiny_llama
from torch import nn

import flopwise
from flopwise.core.cost import Cost
from flopwise.parallel import plan
from flopwise.parallel.planner import in_flight
from flopwise.parallel.stages import shares

D, T = 64, 16  # the tiny Llama's width, and the sequence length of its inputs


def test_two_stages_split_the_layers_and_send_hidden_states_each_micro_batch() -> None:
    model, ids = tiny_llama(batch=4, layers=4)
    inputs = {"input_ids": ids, "labels": ids}
    single = flopwise.count(model, inputs, step="train", mode="meta")
    p = plan(model, inputs, {"pp": 2}, step="train")  # 2 micro-batches of 2 sequences (default: as many as stages)
    first, last = p.ranks
    assert p.counted == 2 and (first.stage, last.stage) == (0, 1) and first.microbatches == 2
    # stage 0 runs the embedding and layers 0-1, stage 1 layers 2-3, the norm and the head; each counts one
    # micro-batch (half the batch), and MACs are linear in the batch: two micro-batches make the module's count
    for stage, own, other in ((first, "model.layers.1", "model.layers.2"), (last, "model.layers.3", "model.layers.0")):
        assert 2 * stage.report[own].macs == single[own].macs and stage.report[other].macs == 0
    assert 2 * last.report["lm_head"].macs == single["lm_head"].macs
    assert first.macs + last.macs == p.macs == single.macs
    # each micro-batch's hidden states, 2·16·64 float32 = 8,192 bytes, go forward; their gradient comes back
    hidden = 2 * T * D * 4
    assert first.collectives == [
        {"kind": "recv", "mesh_dim": "pp", "group_size": 2, "calls": 2, "bytes": 2 * hidden},
        {"kind": "send", "mesh_dim": "pp", "group_size": 2, "calls": 2, "bytes": 2 * hidden},
    ]
    assert last.collectives == first.collectives
    # torch's Schedule1F1B: stage 0 warms up with one forward more than the last stage before alternating
    assert p.pipeline_order == {
        0: ["0F0", "0F1", "0B0", "0B1", "0REDUCE_GRAD"],
        1: ["1F0", "1B0", "1F1", "1B1", "1REDUCE_GRAD"],
    }
    assert [in_flight(p.pipeline_order[s]) for s in (0, 1)] == [2, 1]
    # stage 0 holds two micro-batches' saved activations at once, the last stage one
    assert first.activation_bytes > first.report.peak_activation_bytes  # type: ignore[operator]
    assert last.activation_bytes == last.report.peak_activation_bytes


def test_gpipe_holds_every_micro_batch_and_a_sequential_splits_by_children() -> None:
    model = nn.Sequential(*[nn.Linear(8, 8, bias=False) for _ in range(4)])
    p = plan(model, torch.randn(4, 8), {"pp": 2}, microbatches=4, schedule="ScheduleGPipe")
    assert p.pipeline_order[0][:4] == ["0F0", "0F1", "0F2", "0F3"]
    # forward only: 4 micro-batches of one row, two 8×8 layers per stage: 4·2·64 = 512 MACs, one row of 8
    # float32 (32 bytes) sent per micro-batch
    assert [r.macs for r in p.ranks] == [512, 512]
    assert p.ranks[0].collectives == [{"kind": "send", "mesh_dim": "pp", "group_size": 2, "calls": 4, "bytes": 128}]
    assert p.ranks[1].collectives == [{"kind": "recv", "mesh_dim": "pp", "group_size": 2, "calls": 4, "bytes": 128}]
    assert (p.ranks[0].params, p.ranks[1].params) == (128, 128)


def test_pipeline_with_data_and_tensor_parallel_gathers_once_per_step() -> None:
    model, ids = tiny_llama(batch=8, layers=4)
    p = plan(model, {"input_ids": ids, "labels": ids}, {"dp": 2, "pp": 2, "tp": 2}, step="train")
    assert p.world == 8 and p.counted == 2  # one program per stage, shared by its 2×2 dp×tp ranks
    assert p.ranks[0].ranks == (0, 1, 2, 3) and p.ranks[4].ranks == (4, 5, 6, 7)
    dp = {c["kind"]: c["calls"] for c in p.ranks[0].collectives if c["mesh_dim"] == "dp"}
    # FSDP2 keeps stage 0's 3 units (2 layers, the root) gathered across micro-batches and reduce-scatters once
    assert dp == {"all_gather": 3, "reduce_scatter": 3}
    tp = next(c for c in p.ranks[0].collectives if c["mesh_dim"] == "tp")
    # per micro-batch: forward the embedding's and 2 per layer (5), backward one per attention and MLP input (4)
    assert tp["calls"] == 2 * (5 + 4)


def _two_stage_mlp() -> nn.Sequential:
    # stage 0: Linear(8, 16) and its ReLU, 8·16 + 16 = 144 parameters; stage 1: Linear(16, 4) and its ReLU,
    # 16·4 + 4 = 68
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4), nn.ReLU())


def test_each_micro_batch_after_the_first_adds_its_gradients_into_the_earlier_ones() -> None:
    p = plan(_two_stage_mlp(), torch.randn(8, 8), {"pp": 2}, step="train", microbatches=4)
    # autograd's AccumulateGrad: `grad += new_grad`, one aten.add_ per gradient tensor (weight and bias), for each
    # of the 3 micro-batches after the first: one FLOP per element, float32: 8 bytes read, 4 written
    # stage 0: 3·144 = 432 FLOPs, 432·8 = 3,456 bytes read, 432·4 = 1,728 written;
    # stage 1: 3·68 = 204 FLOPs, 204·8 = 1,632 bytes read, 204·4 = 816 written
    expected = {0: Cost(0, 432, 3_456, 1_728), 1: Cost(0, 204, 1_632, 816)}
    for r in p.ranks:
        assert r.stage is not None and r.accumulation is not None
        assert [c.op for c in r.accumulation.calls] == ["aten.add_", "aten.add_"]
        one = r.report.phases
        assert (
            r.phases["backward"]
            == Cost(
                4 * one["backward"].macs,
                4 * one["backward"].flops,
                4 * one["backward"].bytes_read,
                4 * one["backward"].bytes_written,
            )
            + expected[r.stage]
        )
        assert r.flops == 4 * one["forward"].flops + 4 * one["backward"].flops + expected[r.stage].flops
    forward = plan(_two_stage_mlp(), torch.randn(8, 8), {"pp": 2}, microbatches=4)  # no backward, no gradients
    assert all(r.accumulation is None for r in forward.ranks)


def test_under_fsdp2_a_pipeline_accumulates_the_unsharded_gradients() -> None:
    # FSDP2 under a pipeline keeps the parameters gathered and syncs gradients once a step (PipelineStage turns
    # gradient sync off until the last micro-batch): autograd accumulates into the unsharded gradients, 144
    # elements on stage 0 though the rank keeps 72 (Linear(8, 16) sharded over dp=2: 8·8 + 8)
    p = plan(_two_stage_mlp(), torch.randn(16, 8), {"dp": 2, "pp": 2}, step="train", microbatches=4)
    first = p.ranks[0]
    assert first.stage == 0 and first.gradient_bytes == 72 * 4 and first.accumulation is not None
    assert first.accumulation.total == Cost(0, 144, 144 * 8, 144 * 4)


def test_under_fsdp2_a_pipeline_gathers_and_reduces_once_a_step() -> None:
    # stage 0's one FSDP2 unit with parameters (Linear(8, 16)): in the first micro-batch's forward its parameters
    # are copied into the gather buffer, all-gathered and copied out; after the last backward its gradients are
    # copied into the reduce buffer and reduce-scattered. The other 3 micro-batches find them gathered and skip
    # the sync (a real run: tests/test_parallel_real.py, pp=2,dp=2)
    p = plan(_two_stage_mlp(), torch.randn(16, 8), {"dp": 2, "pp": 2}, step="train", microbatches=4)
    first = p.ranks[0]
    once = [
        (c.op, phase)
        for c, taken, phase in zip(first.report.calls, first.once_per_step, first.phase_of_calls, strict=True)
        if taken
    ]
    assert once == [
        ("fsdp.all_gather_copy_in", "forward"),
        ("c10d._allgather_base_", "forward"),
        ("fsdp.split_with_sizes_copy", "forward"),
        ("fsdp.chunk_cat", "backward"),
        ("c10d._reduce_scatter_base_", "backward"),
    ]
    calls = zip(first.report.calls, first.once_per_step, first.phase_of_calls, strict=True)
    fsdp_forward = sum((c.cost for c, taken, phase in calls if taken and phase == "forward"), Cost())
    program = first.report.phases["forward"]
    assert first.phases["forward"] == Cost(
        4 * program.macs,
        4 * program.flops,
        4 * (program.bytes_read - fsdp_forward.bytes_read) + fsdp_forward.bytes_read,
        4 * (program.bytes_written - fsdp_forward.bytes_written) + fsdp_forward.bytes_written,
    )
    assert fsdp_forward.bytes_read > 0  # the copies and the gather move bytes: taking them 4 times would show


def test_stage_shares_and_refusals() -> None:
    assert shares(10, 4) == [(0, 3), (3, 6), (6, 8), (8, 10)]
    with pytest.raises(ValueError, match="cannot fill 4 stages"):
        plan(nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2)), torch.randn(4, 2), {"pp": 4})
    with pytest.raises(ValueError, match="neither"):
        plan(nn.Linear(2, 2), torch.randn(4, 2), {"pp": 2})
    with pytest.raises(ValueError, match="micro-batches are a pipeline's"):
        plan(nn.Linear(2, 2), torch.randn(4, 2), {"dp": 2}, microbatches=2)
