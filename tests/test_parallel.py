"""Parallel plans on torch's fake process group: each rank's program counted at its local shapes, its collectives,
ranks equal by symmetry counted once (flopwise.parallel). Every figure is derived by hand beside it."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest
import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.tensor import Replicate
from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel, parallelize_module

import flopwise
from flopwise.parallel import parse, plan

B, S, D, F = 2, 5, 64, 256  # batch, sequence, model width, hidden width of the MLP


class MLP(nn.Module):
    def __init__(self, d: int = D, f: int = F) -> None:
        super().__init__()
        self.up = nn.Linear(d, f, bias=False)
        self.down = nn.Linear(f, d, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.down(torch.relu(self.up(x)))
        return out


def colwise_rowwise(model: nn.Module, mesh: Any) -> None:
    parallelize_module(model, mesh["tp"], {"up": ColwiseParallel(), "down": RowwiseParallel()})


def test_tp8_mlp_does_an_eighth_of_the_macs_and_one_all_reduce_of_b_s_d() -> None:
    x = torch.randn(B, S, D)
    single = flopwise.count(MLP(), x)
    assert single.macs == B * S * D * F + B * S * F * D == 327_680  # up, then down: 2·5·64·256 each
    p = plan(MLP(), x, {"tp": 8}, colwise_rowwise)
    # each rank holds 256/8 = 32 of up's output columns and the same 32 of down's input rows:
    # 2·5·64·32 + 2·5·32·64 = 20,480 + 20,480 = 40,960 = 327,680 / 8
    assert [r.macs for r in p.ranks] == [40_960] * 8
    assert p.macs == single.macs
    # down's 8 partial sums are all-reduced once: B·S·d = 2·5·64 = 640 float32 = 2,560 bytes; nothing else moves
    assert p.ranks[5].collectives == [
        {"kind": "all_reduce", "mesh_dim": "tp", "group_size": 8, "calls": 1, "bytes": B * S * D * 4}
    ]
    # weights: up 32×64 + down 64×32 = 4,096 float32 = 16,384 bytes per rank
    assert p.ranks[0].params == 4_096 and p.ranks[0].weight_bytes == 16_384
    # every rank equal by symmetry: one program counted, one report shared by the 8 ranks, and said so
    assert p.counted == 1 and all(r is p.ranks[0] for r in p.ranks)
    assert p.ranks[0].ranks == tuple(range(8)) and p.ranks[0].shared
    assert "1 distinct rank program(s) counted for 8 ranks" in str(p)
    saved = json.loads(json.dumps(p.to_dict()))
    assert saved["schema"] == "flopwise-parallel/1" and saved["world"] == 8 and saved["macs"] == 327_680
    assert saved["ranks"][0]["ranks"] == list(range(8)) and saved["ranks"][0]["collectives"][0]["bytes"] == 2_560


def test_the_counting_mode_alone_sees_dtensor_at_global_shapes() -> None:
    """Why LocalShards exists: under a plain dispatch mode a DTensor op arrives with its global shapes, and what
    FlopCounterMode-style counting then reports is the unsharded work on every rank."""
    from torch.distributed.tensor import DTensor
    from torch.utils._python_dispatch import TorchDispatchMode

    from flopwise.parallel.layout import parse as layout_of
    from flopwise.parallel.world import fake_world

    seen: list[tuple[int, ...]] = []

    class Shapes(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            if func is torch.ops.aten.mm.default and any(issubclass(t, DTensor) for t in types):
                seen.append(tuple(args[1].shape))
            return func(*args, **(kwargs or {}))

    with fake_world(layout_of({"tp": 8}), 3) as mesh:
        model = MLP()
        colwise_rowwise(model, mesh)
        with torch.no_grad(), Shapes():
            model(torch.randn(B, S, D)).wait()  # type: ignore[operator]  # an AsyncCollectiveTensor
    assert seen == [(D, F), (F, D)]  # the whole weights, not the local 64×32 and 32×64 shards


def test_ranks_equal_by_symmetry_are_the_ranks_counted_apart() -> None:
    x = torch.randn(B, S, D)
    shared = plan(MLP(), x, {"tp": 4}, colwise_rowwise)
    apart = plan(MLP(), x, {"tp": 4}, colwise_rowwise, symmetry=False)
    assert (shared.counted, apart.counted) == (1, 4)
    for a in apart.ranks:
        assert a.ranks == (a.rank,)
        one = shared.ranks[a.rank]
        assert (a.macs, a.flops, a.bytes_read, a.bytes_written, a.weight_bytes, a.activation_bytes, a.collectives) == (
            one.macs,
            one.flops,
            one.bytes_read,
            one.bytes_written,
            one.weight_bytes,
            one.activation_bytes,
            one.collectives,
        )


def test_a_two_dimensional_mesh_is_sliced_before_the_count() -> None:
    # slicing a 2-D mesh (mesh["tp"]) looks up the rank's coordinates with ops (torch's DeviceMesh: as_strided,
    # view, eq, nonzero, select, _local_scalar_dense): not the rank's program, so not in its count
    p = plan(MLP(), torch.randn(B, S, D), {"dp": 2, "tp": 2}, colwise_rowwise)
    rank = p.ranks[0]
    linear = ["aten.view", "aten.t", "aten.view", "aten.mm", "aten._unsafe_view"]
    assert [c.op for c in rank.report.calls] == [
        *linear,
        "aten.relu",
        *linear,
        "_c10d_functional.all_reduce",
        "_c10d_functional.wait_tensor",
    ]
    # the rank's 1 of 2 samples, 5 tokens: up (64 → 128 of 256 columns) reads 5·64·4 + 64·128·4 = 34,048 bytes,
    # writes 5·128·4 = 2,560; the ReLU reads and writes 2,560; down (128 of 256 rows → 64) reads 2,560 +
    # 128·64·4 = 35,328, writes 5·64·4 = 1,280; the all-reduce reads and writes its 1,280
    assert rank.bytes_read == 34_048 + 2_560 + 35_328 + 1_280 == 73_216
    assert rank.bytes_written == 2_560 + 2_560 + 1_280 + 1_280 == 7_680


def test_uneven_shards_are_counted_for_each_coordinate() -> None:
    # 250 output features over 4 ranks: torch.chunk gives 63, 63, 63, 61 rows; those ranks run different shapes
    def gathered(model: nn.Module, mesh: Any) -> None:
        parallelize_module(model, mesh["tp"], ColwiseParallel(output_layouts=Replicate()))

    x = torch.randn(B, S, D)
    p = plan(nn.Linear(D, 250, bias=False), x, {"tp": 4}, gathered)
    assert p.counted == 4
    assert [r.macs for r in p.ranks] == [B * S * D * n for n in (63, 63, 63, 61)]
    assert p.macs == flopwise.count(nn.Linear(D, 250, bias=False), x).macs == 160_000  # 2·5·64·250
    # the output gathered whole on every rank: B·S·250 float32, padded to 4 equal shards of 63 (torch's
    # uneven all-gather): 2·5·63·4 float32 · 4 ranks = 10,080 bytes
    assert p.ranks[3].collectives[0]["kind"] == "all_gather"
    assert p.ranks[3].collectives[0]["bytes"] == B * S * 63 * 4 * 4


K, H, M = 16, 32, 4  # tests/distributed_step.py's model: 16 → 32 → 4, 544 + 132 = 676 parameters


def test_fsdp2_gathers_each_parameter_once_in_forward_and_reduce_scatters_each_gradient_once() -> None:
    model = nn.Sequential(nn.Linear(K, H), nn.ReLU(), nn.Linear(H, M))
    p = plan(model, torch.randn(8, K), {"dp": 2}, step="train")
    r = p.ranks[0]
    calls = r.program_collectives
    gathered = [c.bytes for c in calls if c.kind == "all_gather" and not c.backward]
    # forward: one all-gather per FSDP unit, of the unit's whole (float32) parameters: 544·4 and 132·4 bytes
    assert gathered == [(K * H + H) * 4, (H * M + M) * 4] == [2_176, 528]
    # backward: each gradient reduce-scattered once, last layer first
    assert [c.bytes for c in calls if c.kind == "reduce_scatter"] == [528, 2_176]
    assert all(c.backward for c in calls if c.kind == "reduce_scatter")
    # ... and, with no pipeline, FSDP2 resharded after forward, so backward gathers both units again
    assert [c.bytes for c in calls if c.kind == "all_gather" and c.backward] == [528, 2_176]
    # each rank: half the batch (4 rows). Forward 4·16·32 + 4·32·4 = 2,560 MACs; backward both weight gradients
    # (2,560) and the second layer's input gradient 4·4·32 = 512: 5,632 MACs
    assert r.phases["forward"].macs == 2_560 and r.phases["backward"].macs == 3_072 and r.macs == 5_632
    # half of every parameter on each rank: 338 float32; the gradients backward left, the same
    assert (r.params, r.weight_bytes, r.gradient_bytes) == (338, 1_352, 1_352)
    assert p.counted == 1 and p.ranks[1] is r
    # the two ranks together: the single-device step's MACs exactly. Their FLOPs are 37 fewer: a sum over the batch
    # costs one add less per output in each half than over the whole (rows − 1 adds), and the add that joins the
    # halves runs inside the reduce-scatter (a collective's reductions are not counted): the loss (1 output) and
    # the two bias gradients (32 + 4 outputs), once each for the one extra rank
    single = flopwise.count(model, torch.randn(8, K), step="train")
    assert p.macs == single.macs
    assert single.flops - p.flops == (2 - 1) * (1 + H + M) == 37


def test_tiny_llama_tensor_parallel_shards_projections_and_replicates_norms() -> None:
    model, ids = tiny_llama()
    inputs = {"input_ids": ids, "labels": ids}
    single = flopwise.count(model, inputs, mode="meta")
    p = plan(model, inputs, {"tp": 2})
    assert p.macs == single.macs  # every contraction is split, none repeated

    def over_ranks(name: str) -> int:
        return sum(r.report[name].flops for r in p.ranks)

    for sharded in ("model.layers.0.self_attn.q_proj", "model.layers.1.mlp.down_proj", "lm_head"):
        assert over_ranks(sharded) == single[sharded].flops
    # what sharding adds: each tp rank runs the replicated ops whole (the norms here), so their FLOPs appear twice
    for replicated in ("model.layers.0.input_layernorm", "model.norm"):
        assert over_ranks(replicated) == 2 * single[replicated].flops
    # forward all-reduces: the vocabulary-split embedding, then o_proj and down_proj in each of 2 layers, each of
    # B·S·d = 2·16·64 float32 (8,192 bytes); the vocabulary-parallel loss adds 3 of B·S = 32 float32 (max, sum of
    # exponentials, target logit)
    assert p.ranks[0].collectives == [
        {"kind": "all_reduce", "mesh_dim": "tp", "group_size": 2, "calls": 8, "bytes": 5 * 8_192 + 3 * 128}
    ]


def test_tiny_llama_2d_plan_sums_to_the_single_device_train_step() -> None:
    model, ids = tiny_llama(batch=4)
    inputs = {"input_ids": ids, "labels": ids}
    single = flopwise.count(model, inputs, step="train", mode="meta")
    p = plan(model, inputs, {"dp": 2, "tp": 2}, step="train")
    assert p.counted == 1 and p.world == 4
    assert p.macs == single.macs
    assert {c["mesh_dim"] for c in p.ranks[0].collectives} == {"dp", "tp"}


def test_the_model_and_torch_are_left_as_found() -> None:
    model = MLP()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    hook = sys.excepthook
    plan(model, torch.randn(B, S, D), {"tp": 2}, colwise_rowwise)
    assert not dist.is_initialized() and sys.excepthook is hook
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(type(p) is nn.Parameter for p in model.parameters())


def test_a_process_already_in_a_group_is_refused() -> None:
    from torch.testing._internal.distributed.fake_pg import FakeStore

    hook = sys.excepthook
    dist.init_process_group("fake", rank=0, world_size=2, store=FakeStore())
    try:
        with pytest.raises(RuntimeError, match="already belongs to a process group"):
            plan(MLP(), torch.randn(B, S, D), {"tp": 2}, colwise_rowwise)
    finally:
        dist.destroy_process_group()
        sys.excepthook = hook


def test_layout_names_and_errors() -> None:
    layout = parse("dp=16,pp=8,tp=8")
    assert layout.world == 1_024 and layout.mesh_dims == ("pp", "dp", "tp")
    assert (
        layout.coords(1_000) == {"pp": 7, "dp": 13, "cp": 0, "tp": 0} and layout.rank_of({"pp": 7, "dp": 13}) == 1_000
    )
    assert layout.group(9, "tp") == tuple(range(8, 16)) and layout.group(9, "dp")[:2] == (1, 9)
    assert parse({"tp": 2, "cp": 1}).world == 2
    with pytest.raises(ValueError, match="unknown dimension"):
        parse("xp=2")
    with pytest.raises(ValueError, match="NAME=SIZE"):
        parse("dp16")
    with pytest.raises(ValueError, match="does not split into 4"):
        plan(nn.Linear(4, 4), torch.randn(6, 4), {"dp": 4})
    with pytest.raises(ValueError, match="mode must be"):
        plan(nn.Linear(4, 4), torch.randn(4, 4), {"dp": 2}, mode="exact")
    with pytest.raises(ValueError, match="symbolic sizes"):
        plan(nn.Linear(4, 4), torch.randn(4, 4), {"dp": 2}, symbolic={"batch": (0, 0)})
    real = plan(nn.Linear(4, 4), torch.randn(4, 4), {"dp": 2}, mode="real")  # as count() is called by default
    assert real.ranks[0].macs == 2 * 4 * 4 and any("counted as 'fake'" in n for n in real.notes)


def tiny_llama(batch: int = 2, layers: int = 2) -> tuple[nn.Module, torch.Tensor]:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=128,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=layers,
        num_attention_heads=8,
        num_key_value_heads=4,
    )
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    return model, torch.randint(0, 128, (batch, 16))


def test_an_optimizer_factory_steps_on_the_local_shards() -> None:
    model = nn.Sequential(nn.Linear(K, H), nn.ReLU(), nn.Linear(H, M))
    x = torch.randn(8, K)
    p = plan(model, x, {"dp": 2}, step="train", optimizer=lambda params: torch.optim.AdamW(params))
    r = p.ranks[0]
    # the model's own optimizer, as count() takes it: the same class and defaults, over each rank's parameters
    again = plan(model, x, {"dp": 2}, step="train", optimizer=torch.optim.AdamW(model.parameters(), lr=0.1))
    assert again.ranks[0].phases["optimizer"] == r.phases["optimizer"]
    # AdamW's two moments of each of the rank's 338 float32 parameters (its step counters are scalars, left out)
    assert r.optimizer_bytes == 2 * 338 * 4 and not any("optimizer state" in n for n in r.notes)
    # the optimizer runs element by element, so the two halves make the single-device step, plus what each rank
    # repeats: the step counter of each of its 4 parameter tensors, one add each (`state_steps += 1`)
    single = flopwise.count(model, x, step="train", optimizer=torch.optim.AdamW(model.parameters()))
    assert 2 * r.phases["optimizer"].flops == single.phases["optimizer"].flops + (2 - 1) * 4


def test_a_mixtral_under_its_own_tp_plan_shards_attention_and_repeats_the_experts() -> None:
    from transformers import MixtralConfig, MixtralForCausalLM

    config = MixtralConfig(
        vocab_size=128,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=8,
        num_key_value_heads=4,
        num_local_experts=4,
        num_experts_per_tok=2,
    )
    with torch.device("meta"):
        model = MixtralForCausalLM(config)
    ids = torch.randint(0, 128, (4, 16))
    single = flopwise.count(model, {"input_ids": ids}, mode="meta")
    p = plan(model, {"input_ids": ids}, {"tp": 2})
    mine, whole = p.ranks[0].report.by_operator(), single.by_operator()
    # transformers' Mixtral plan names only the attention projections: the experts stay whole on each rank, so
    # both ranks run all of them, 64 tokens · 2 experts each · (2·128·64 + 64·128) · 2 layers = 6,291,456 MACs
    assert mine["aten._grouped_mm"].macs == whole["aten._grouped_mm"].macs == 6_291_456
    # what this plan adds: the experts once more, and the router (64 tokens · 64 · 4 experts · 2 layers), also whole
    router = 64 * 64 * 4 * 2
    assert p.macs == single.macs + 6_291_456 + router == 15_007_744
    # the routing on fake tensors is an estimate, and the plan says so
    assert any("mixture of experts" in n for n in p.ranks[0].notes)
