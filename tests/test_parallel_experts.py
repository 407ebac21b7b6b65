"""Expert parallelism in parallel plans: transformers' own EP on a tiny Mixtral, on torch's fake process group.
Every figure is derived by hand beside it, under the routing assumption the plan states (balanced top-k)."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("transformers")

from parallel_rank_experts import tiny_mixtral  # noqa: E402  (after the importorskip)

from flopwise.parallel import RankReport, parse, plan  # noqa: E402
from flopwise.parallel.experts import BALANCED, balanced_sizes, local_rows  # noqa: E402

# the tiny Mixtral: hidden H = 32, expert width I = 64, E = 4 experts, top-k = 2, 2 layers, vocabulary 128;
# attention 4 heads of 8, 2 key/value heads
H, I, E, K, LAYERS, V = 32, 64, 4, 2, 2, 128
BATCH, SEQ = 4, 8  # the global batch: 32 tokens; dp = 2 gives each rank 16
T = BATCH * SEQ // 2  # tokens per rank
P = T * K  # (token, expert) pairs per rank: 32


def inputs() -> dict[str, torch.Tensor]:
    ids = torch.randint(0, V, (BATCH, SEQ))
    return {"input_ids": ids, "labels": ids}


def ep_collectives(rank: RankReport) -> list[tuple[str, int, bool]]:
    return [(c.op, c.bytes, c.backward) for c in rank.program_collectives if c.mesh_dim == "ep"]


def test_ep2_forward_each_rank_runs_its_pairs_through_half_the_experts() -> None:
    p = plan(tiny_mixtral(), inputs(), {"dp": 2, "ep": 2})
    r = p.ranks[0]
    # balanced routing: each rank's P = 16·2 = 32 pairs, 16 to each ep rank; it receives 16 from each: 32 rows,
    # through gate and up (H→2I) and down (I→H): 3·32·32·64 = 196,608 MACs per layer, 2 layers
    assert r.report.by_operator()["aten._grouped_mm"].macs == LAYERS * 3 * P * H * I == 393_216
    # per layer: the counts exchange, E int64 = 4·8 = 32 bytes; the tokens out (dispatch) and back (combine), P rows
    # of H float32 = 32·32·4 = 4,096 bytes each
    per_layer = [
        ("c10d.alltoall_base_", E * 8, False),
        ("_c10d_functional.all_to_all_single", P * H * 4, False),
        ("_c10d_functional.all_to_all_single", P * H * 4, False),
    ]
    assert ep_collectives(r) == per_layer * LAYERS
    assert {"kind": "all_to_all", "mesh_dim": "ep", "group_size": 2, "calls": 6, "bytes": 2 * (32 + 2 * 4_096)} in (
        r.collectives
    )
    # parameters per rank: the dense ones FSDP2-sharded in two, a layer's 3,264 (q 32·32, k and v 32·16 each, o 32·32,
    # router 4·32, two norms 32 each) and the root's 8,224 (embedding and LM head 128·32 each, final norm 32); the
    # experts' split by ep: per layer 2 of the 4, each gate_up 2I×H and down H×I: 2·(128·32 + 32·64) = 12,288
    dense_per_layer, root, experts_per_layer = 3_264, 8_224, 12_288
    assert r.params == (LAYERS * dense_per_layer + root) // 2 + LAYERS * experts_per_layer == 31_952
    # the routing assumption is said, never silent
    assert BALANCED in r.notes and any(BALANCED in n for n in str(p).splitlines())


def test_ep2_train_step_all_to_alls_and_the_experts_left_out_of_fsdp() -> None:
    p = plan(tiny_mixtral(), inputs(), {"dp": 2, "ep": 2}, step="train")
    r = p.ranks[0]
    # forward 3 all-to-alls a layer; backward the autograd ones again (combine's, then dispatch's), the counts
    # exchange none: 2·(3 + 2) = 10 calls, 2·(32 + 4·4,096) = 32,832 bytes
    assert {"kind": "all_to_all", "mesh_dim": "ep", "group_size": 2, "calls": 10, "bytes": 32_832} in r.collectives
    assert [b for _, b, back in ep_collectives(r) if back] == [P * H * 4] * 4
    # FSDP2 reduce-scatters the dense gradients only: a layer's 3,264 float32 = 13,056 bytes (q 32·32, k and v
    # 32·16 each, o 32·32, router 4·32, two norms 32 each), the root's 8,224 = 32,896 (embedding and LM head 128·32
    # each, final norm 32); the experts' gradients stay on their one rank
    reduced = sorted(c.bytes for c in r.program_collectives if c.kind == "reduce_scatter")
    assert reduced == [13_056, 13_056, 32_896]
    # experts forward and backward: backward is twice forward (input and weight gradients)
    assert r.report.by_operator()["aten._grouped_mm"].macs == 3 * LAYERS * 3 * P * H * I == 1_179_648


def test_ranks_holding_different_experts_count_alike() -> None:
    """Symmetry: rank 1 holds experts 2 and 3, rank 0 experts 0 and 1, at the same shapes; counting every rank
    gives the same figures."""
    shared = plan(tiny_mixtral(), inputs(), {"dp": 2, "ep": 2})
    each = plan(tiny_mixtral(), inputs(), {"dp": 2, "ep": 2}, symmetry=False)
    assert shared.counted == 1 and each.counted == 2
    assert [r.macs for r in each.ranks] == [r.macs for r in shared.ranks]
    assert [r.collectives for r in each.ranks] == [r.collectives for r in shared.ranks]


def test_ep_layout_borrows_from_dp() -> None:
    layout = parse("dp=4,ep=2,tp=2")
    assert layout.world == 8  # ep adds no ranks: pp·dp·tp = 4·2
    assert layout.mesh_dims == ("edp", "ep", "tp") and layout.mesh_shape == (2, 2, 2)
    # rank 3: dp coordinate 3 // 2 = 1, tp 1; ep coordinate 1 % 2 = 1
    assert layout.coords(3) == {"pp": 0, "dp": 1, "cp": 0, "tp": 1, "ep": 1}
    assert layout.group(3, "ep") == (1, 3)  # dp coordinates 0 and 1, tp 1
    assert layout.group(3, "edp") == (3, 7)  # dp coordinates 1 and 3
    assert layout.describe() == "dp=4, ep=2, tp=2"
    assert parse("dp=2,ep=2").mesh_dims == ("ep", "tp")  # tp of size 1 kept: transformers asks for it
    with pytest.raises(ValueError, match="ep must divide dp"):
        parse("ep=2")
    with pytest.raises(ValueError, match="ep must divide dp"):
        parse("dp=6,ep=4")


def test_what_ep_refuses() -> None:
    from test_parallel import tiny_llama

    llama, _ = tiny_llama(batch=4)
    ids = torch.randint(0, 128, (4, 16))
    with pytest.raises(ValueError, match="no expert-parallel plan"):
        plan(llama, {"input_ids": ids}, {"dp": 2, "ep": 2})


def test_ep_smaller_than_dp_shards_the_experts_over_the_rest_of_dp() -> None:
    """dp=4, ep=2: ranks 0 and 1 share experts out (an ep group), ranks 0 and 2 hold the same two (an edp group):
    each experts module is an FSDP2 unit over edp, the dense layers one over all four."""
    p = plan(tiny_mixtral(), inputs(), {"dp": 4, "ep": 2}, step="train")
    r = p.ranks[0]
    # 32 tokens / 4 = 8 per rank, P = 16 pairs: 16 rows through each layer's experts, forward and twice backward
    assert r.report.by_operator()["aten._grouped_mm"].macs == 3 * LAYERS * 3 * 16 * H * I == 589_824
    # a layer's 2 local experts, 12,288 float32 = 49,152 bytes, gathered over edp in forward and backward and their
    # gradients reduce-scattered; the dense layers' as before (13,056 a layer, 32,896 the root) over dp
    by_dim = [(c.kind, c.mesh_dim, c.bytes) for c in r.program_collectives if c.mesh_dim in ("edp", "dp")]
    assert sorted(b for k, d, b in by_dim if d == "edp" and k == "all_gather") == [49_152] * 4
    assert sorted(b for k, d, b in by_dim if d == "edp" and k == "reduce_scatter") == [49_152] * 2
    assert sorted(b for k, d, b in by_dim if d == "dp" and k == "reduce_scatter") == [13_056, 13_056, 32_896]
    # parameters: the dense ones in four, (2·3,264 + 8,224) / 4 = 3,688; the experts' 2·12,288 in two: 12,288
    assert r.params == 3_688 + 12_288 == 15_976
    assert {c["mesh_dim"]: c["group_size"] for c in r.collectives} == {"dp": 4, "edp": 2, "ep": 2}


def test_balanced_split_sizes() -> None:
    assert balanced_sizes(32, 2) == [16, 16]
    assert balanced_sizes(7, 3) == [3, 2, 2]  # 7 = 3 + 2 + 2: the first takes the one left over
    assert local_rows(5, 2, 0) == 3 and local_rows(5, 2, 1) == 2  # torch.chunk: chunks of ⌈5/2⌉ = 3
    assert local_rows(2, 4, 3) == 0  # chunks of 1: the fourth is empty


def test_the_estimate_times_the_all_to_alls_exposed() -> None:
    e = plan(tiny_mixtral(), inputs(), {"dp": 2, "ep": 2}, step="train").estimate()
    assert "ep" in e.links and e.ranks[0].comm_s["ep"] > 0
    assert any("expert-parallel all-to-alls exposed" in a for a in e.assumptions)


def test_the_experts_fsdp2_runs_once_a_step_under_a_pipeline() -> None:
    ids = torch.randint(0, V, (8, SEQ))  # 8 sequences: 2 per dp rank, one per micro-batch
    p = plan(tiny_mixtral(), {"input_ids": ids, "labels": ids}, {"dp": 4, "ep": 2, "pp": 2}, step="train")
    calls = {(c["mesh_dim"], c["kind"]): c["calls"] for c in p.ranks[0].collectives}
    # one layer a stage, 2 micro-batches: its 3 all-to-alls forward and 2 backward each time, 2·(3 + 2) = 10; the
    # experts' gather and gradient reduce-scatter once a step (FSDP2 keeps them gathered across micro-batches under
    # a pipeline, reshard_after_forward=False), as the dense layers' on dp
    assert calls[("ep", "all_to_all")] == 10
    assert calls[("edp", "all_gather")] == calls[("edp", "reduce_scatter")] == 1
