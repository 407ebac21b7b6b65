"""Expert and context parallelism planned on the fake process group against the same plans run for real:
`torchrun` on gloo (tests/parallel_rank_experts.py). A tiny Mixtral's train step under `dp=2,ep=2` (FSDP2 for the
dense layers, transformers' AllToAllEP for the experts), the router made balanced in the real run; a tiny Llama's
under `cp=2`. Each real rank counts its own program; the plan's per-rank counts and collectives must equal them
exactly. Four-process layouts (ep with tp, ep < dp, cp with dp) run with FLOPWISE_PARALLEL_REAL=all."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_distributed import TORCHRUN, free_port

pytest.importorskip("transformers")

from parallel_rank_experts import tiny_llama, tiny_mixtral  # noqa: E402  (after the importorskip)

from flopwise.parallel import parse, plan  # noqa: E402

SCRIPT = Path(__file__).parent / "parallel_rank_experts.py"


ALL = os.environ.get("FLOPWISE_PARALLEL_REAL", "") == "all"
FOUR = pytest.mark.skipif(not ALL, reason="4 processes: set FLOPWISE_PARALLEL_REAL=all")


@pytest.mark.skipif(not TORCHRUN.exists(), reason="torchrun is not installed beside this Python")
@pytest.mark.parametrize(
    ("model", "layout"),
    [
        ("mixtral", "dp=2,ep=2"),
        ("llama", "cp=2"),
        pytest.param("mixtral", "dp=2,ep=2,tp=2", marks=FOUR),
        pytest.param("mixtral", "dp=4,ep=2", marks=FOUR),
        pytest.param("llama", "dp=2,cp=2", marks=FOUR),
    ],
)
def test_the_fake_group_plan_equals_a_real_run(model: str, layout: str, tmp_path: Path) -> None:
    world = parse(layout).world
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    command = [str(TORCHRUN), "--nproc-per-node", str(world), "--master-port", str(free_port())]
    done = subprocess.run(
        [*command, str(SCRIPT), str(tmp_path), model, layout], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{done.stderr[:3000]}\n…\n{done.stderr[-3000:]}"
    real = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(world)]
    torch.manual_seed(0)
    # what the script draws (the same seed; the count needs only the shapes)
    ids = torch.randint(0, 128, (4, 8) if model == "mixtral" else (4, 16))
    built = tiny_mixtral() if model == "mixtral" else tiny_llama()
    p = plan(built, {"input_ids": ids, "labels": ids}, layout, step="train")
    for rank, counted in enumerate(real):
        mine = p.ranks[rank]
        assert counted["unsupported"] == {}
        # left out of the real count: gloo's own split and copy after each reduce-scatter (the rank script)
        assert counted["backend_ops"] == ["aten.split", "aten.copy_"] * counted["reduce_scatters"]
        # FSDP2's units: 2 layers and the root; with ep < dp, each layer's experts too (over edp)
        assert counted["reduce_scatters"] == 3 + (2 if "edp" in parse(layout).mesh_dims else 0)
        # the experts' products: a rank's 32 tokens / (dp·tp) (dp slices the batch, transformers the rows over tp),
        # top-2, so 64 / (dp·tp) rows a layer (balanced: as many received as sent) through 3·H·I = 6,144 MACs each,
        # forward and twice in backward, 2 layers: dp=2: 3·2·32·6,144 = 1,179,648; dp=2,tp=2 and dp=4: 589,824
        sizes = parse(layout).sizes
        rows = 64 // (sizes["dp"] * sizes["tp"])
        assert counted["grouped_mm_macs"] == (3 * 2 * rows * 6_144 if model == "mixtral" else 0)
        assert (mine.macs, mine.flops, mine.bytes_read, mine.bytes_written) == (
            counted["macs"],
            counted["flops"],
            counted["bytes_read"],
            counted["bytes_written"],
        )
        assert [[c.kind, c.mesh_dim, c.group_size, c.bytes, c.backward] for c in mine.program_collectives] == counted[
            "collectives"
        ]
