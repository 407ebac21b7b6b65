"""A plan on the fake process group against the same plan run for real: `torchrun` on gloo, a tiny Llama's train
step (4 sequences of 16 tokens, 2 layers) under flopwise's default plan. Each real rank counts its own program
(tests/parallel_rank_step.py); the plan's per-rank counts and collectives must equal them exactly, up to what is
listed and derived here.

The default suite runs three 2-process layouts: tp=2, dp=2 (FSDP2) and pp=2 (two stages, Schedule1F1B over two
micro-batches, torch.distributed.pipelining), and pp=2×dp=2 (FSDP2 under a pipeline). The rest of the 4-process
matrix (tp=4, dp=4, dp=2×tp=2, pp=2×tp=2, pp=2×cp=2) takes minutes on two cores: it runs with
FLOPWISE_PARALLEL_REAL=all (`make parallel-real`).

What a real run does that the plan's program does not, each checked exactly:
- gloo has no reduce-scatter kernel: it all-reduces, then splits and copies the rank's part through the
  dispatcher (NCCL runs one kernel, the fake group none); left out of the real count, and listed;
- a pipeline stage's sends and receives are in the plan's collectives (from the stage boundary's size), not in
  its program; left out of the real count, and checked against those collectives;
- gradient accumulation across micro-batches: autograd adds every later micro-batch's gradients into `.grad`
  (`aten.add_`, one add per gradient element: the local shard's, or under FSDP2 the unsharded gradient's); the
  plan counts the same adds (parallel/accumulate.py), checked here against the stage's gradient elements;
- FSDP2 under a pipeline (the stage's module FSDP2's root, as torchtitan builds it: the schedule's backward then
  skips gradient sync until the last micro-batch): parameters gathered once, gradients reduce-scattered once, with
  their copies (parallel/per_step.py); the real run's final reduce-scatters run after autograd's backward.
The plan's program slices the device mesh before its count (rank.py), as the real rank does: on a 2-D mesh the
coordinate lookups (`(mesh == rank).nonzero()`, torch's DeviceMesh) are in neither count.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from test_distributed import TORCHRUN, free_port
from test_parallel import MLP, B, D, S, tiny_llama
from torch import nn
from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel, parallelize_module

import flopwise
from flopwise.parallel import parse, plan
from flopwise.parallel.layout import FSDP_DIMS

SCRIPT = Path(__file__).parent / "parallel_rank_step.py"
ALL = os.environ.get("FLOPWISE_PARALLEL_REAL", "") == "all"
FOUR = pytest.mark.skipif(not ALL, reason="4 processes: set FLOPWISE_PARALLEL_REAL=all (make parallel-real)")

# Each pipeline stage (2 layers on 2 stages): its parameter tensors, local parameter elements, local gradient
# elements after the step, and the gradient elements accumulation adds into. One layer: q 64·64, k and v 64·32
# each (4 KV heads of 8), o 64·64, gate, up, down 3·64·128, two RMSNorms 2·64:
LAYER = 4_096 + 2 * 2_048 + 4_096 + 3 * 8_192 + 2 * 64  # 36,992
HALF = (LAYER - 2 * 64) // 2 + 2 * 64  # a layer under tp=2: every projection halved, the norms whole
FIRST, LAST = 8_192 + LAYER, LAYER + 64 + 8_192  # 45,184 and 45,248
SHARDED = [(10, FIRST // 2, FIRST // 2, FIRST), (11, LAST // 2, LAST // 2, LAST)]
STAGES = {
    # stage 0: the embedding 128·64 and layer 0 (10 tensors); stage 1: layer 1, the final norm 64 and the head
    # 128·64 (11 tensors)
    "pp=2": [(10, FIRST, FIRST, FIRST), (11, LAST, LAST, LAST)],
    # tensor parallel halves the embedding (by vocabulary) and the head too; but the embedding's gradient is whole
    # on each rank, 128·64 (DTensor's backward of the vocabulary-split embedding leaves it so; the plan's
    # gradient_bytes measures it too)
    "pp=2,tp=2": [(10, 4_096 + HALF, 8_192 + HALF, 8_192 + HALF), (11, *[HALF + 64 + 4_096] * 3)],
    # FSDP2 over 2 ranks (dp, or dp and cp flattened) halves the parameters and, after the step, the gradients;
    # between micro-batches a pipeline keeps the stage's parameters gathered and its gradients unsharded, synced
    # once after the last: accumulation adds into the whole gradients
    "pp=2,dp=2": SHARDED,
    "pp=2,cp=2": SHARDED,
}


def _real_run(layout: str, out: Path) -> list[dict[str, Any]]:
    world = parse(layout).world
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    command = [str(TORCHRUN), "--nproc-per-node", str(world), "--master-port", str(free_port())]
    done = subprocess.run(
        [*command, str(SCRIPT), str(out), layout], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{done.stderr[:3000]}\n…\n{done.stderr[-3000:]}"
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(world)]


@pytest.mark.skipif(not TORCHRUN.exists(), reason="torchrun is not installed beside this Python")
@pytest.mark.parametrize(
    "layout",
    [
        "tp=2",
        "dp=2",
        "pp=2",
        "pp=2,dp=2",  # 4 processes, but the one check of FSDP2 under a pipeline: in the default suite
        pytest.param("pp=2,cp=2", marks=FOUR),
        pytest.param("tp=4", marks=FOUR),
        pytest.param("dp=4", marks=FOUR),
        pytest.param("dp=2,tp=2", marks=FOUR),
        pytest.param("pp=2,tp=2", marks=FOUR),
    ],
)
def test_the_fake_group_plan_equals_a_real_run(layout: str, tmp_path: Path) -> None:
    real = _real_run(layout, tmp_path)
    model, _ = tiny_llama(batch=4)
    torch.manual_seed(0)
    ids = torch.randint(0, 128, (4, 16))  # what the script draws (the same seed; the count needs only the shapes)
    p = plan(model, {"input_ids": ids, "labels": ids}, layout, step="train")
    sizes = p.layout.sizes
    for rank, counted in enumerate(real):
        mine = p.ranks[rank]
        assert counted["unsupported"] == {}
        # left out of the real count: gloo's own split and copy after each reduce-scatter
        assert counted["backend_ops"] == ["aten.split", "aten.copy_"] * counted["reduce_scatters"]
        # FSDP2's units, each reduce-scattered once a step: the layers the rank holds (2, or 1 a stage) and the root
        fsdp = sizes["dp"] * sizes["cp"] > 1
        assert counted["reduce_scatters"] == ((2 // sizes["pp"]) + 1 if fsdp else 0)
        m = mine.microbatches
        if sizes["pp"] > 1:
            tensors, params, grads, added = STAGES[layout][mine.stage or 0]
            assert m == 2 and mine.params == params and mine.gradient_bytes == 4 * grads
            # gradient accumulation: one add per gradient element for each micro-batch after the first, float32:
            # 8 bytes read, 4 written; the plan counts one micro-batch's adds, taken m - 1 times
            assert counted["operators"]["aten.add_"] == [(m - 1) * tensors, (m - 1) * added, (m - 1) * added * 12]
            assert mine.accumulation is not None
            assert [c.op for c in mine.accumulation.calls] == ["aten.add_"] * tensors
            assert (mine.accumulation.flops, mine.accumulation.total.bytes) == (added, added * 12)
            # FSDP2's copies into and out of its buffers, once a step: one of each per unit
            for op in ("fsdp.all_gather_copy_in", "fsdp.split_with_sizes_copy", "fsdp.chunk_cat"):
                assert counted["operators"].get(op, [0])[0] == (2 if fsdp else 0)
            # a micro-batch's hidden states: its sequences (the rank's 4 / dp, split in m) · 16 / cp tokens · 64
            hidden = (4 // sizes["dp"] // m) * (16 // sizes["cp"]) * 64 * 4
            _check_stage_traffic(mine, counted, m, hidden)
        else:
            assert counted["boundary_ops"] == [] and counted["sends"] == []
            assert [[c.kind, c.mesh_dim, c.group_size, c.bytes, c.backward] for c in mine.program_collectives] == (
                counted["collectives"]
            )
        assert (counted["macs"], counted["flops"], counted["bytes_read"], counted["bytes_written"]) == (
            mine.macs,
            mine.flops,
            mine.bytes_read,
            mine.bytes_written,
        )


def _check_stage_traffic(mine: Any, counted: dict[str, Any], m: int, hidden: int) -> None:
    """A stage's collectives: its program's, once per micro-batch (forward's and backward's each in order), FSDP2's
    once a step, and the sends and receives at its boundary, as the plan's collectives list them."""
    program = [[c.kind, c.mesh_dim, c.group_size, c.bytes, c.backward] for c in mine.program_collectives]
    real = [c for c in counted["collectives"] if c[1] not in FSDP_DIMS]
    for backward in (False, True):
        per_microbatch = [c for c in program if c[4] == backward and c[1] not in FSDP_DIMS]
        assert [c for c in real if c[4] == backward] == per_microbatch * m
    # FSDP2's gathers in the first micro-batch's forward, its reduce-scatters after the last backward (the
    # schedule runs them after autograd's backward: not flagged backward in the real run)
    gathered = sorted(c[:4] for c in counted["collectives"] if c[1] in FSDP_DIMS)
    assert gathered == sorted(c[:4] for c in program if c[1] in FSDP_DIMS)
    ledger: dict[tuple[str, str, int], list[int]] = {}
    for kind, dim, size, nbytes, _ in counted["sends"]:
        entry = ledger.setdefault((kind, dim, size), [0, 0])
        entry[0] += 1
        entry[1] += nbytes
    planned = {(c["kind"], c["mesh_dim"], c["group_size"]): [c["calls"], c["bytes"]] for c in mine.collectives}
    assert ledger == {k: v for k, v in planned.items() if k[1] == "pp"}
    # each micro-batch's hidden states go forward, their gradient comes back: m of each, `hidden` bytes each
    assert ledger == {("send", "pp", 2): [m, m * hidden], ("recv", "pp", 2): [m, m * hidden]}
    assert sorted(counted["boundary_ops"]) == ["c10d.recv_"] * m + ["c10d.send"] * m


class Block(nn.Module):
    """x + MLP(LayerNorm(x)): the norm and the residual add are no projection, so tensor parallelism repeats
    them."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(D)
        self.mlp = MLP()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = x + self.mlp(self.norm(x))
        return out


def test_tensor_parallel_ranks_sum_to_the_single_count_plus_the_ops_each_rank_repeats() -> None:
    def plan_mlp(model: nn.Module, mesh: Any) -> None:
        parallelize_module(model, mesh["tp"], {"mlp.up": ColwiseParallel(), "mlp.down": RowwiseParallel()})

    x = torch.randn(B, S, D)
    single = flopwise.count(Block(), x)
    p = plan(Block(), x, {"tp": 4}, plan_mlp)
    # every rank runs the LayerNorm and the residual add whole: LayerNorm 7 FLOPs per element and 4 per row
    # (formulas/norm.py) over 2·5 rows of 64, 7·640 + 4·10 = 4,520; the add 640. The projections and the ReLU
    # split four ways; the all-reduce's sums are the collective's, not counted
    repeated = 7 * B * S * D + 4 * B * S + B * S * D
    assert repeated == 5_160
    assert p.macs == single.macs and p.flops == single.flops + (4 - 1) * repeated
