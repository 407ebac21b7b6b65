"""A plan on the fake process group against the same plan run for real: `torchrun --nproc-per-node 2` on gloo,
a tiny Llama's train step, tensor parallel and FSDP2. Each real rank counts its own program; the plan's per-rank
counts and collectives must equal them exactly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_distributed import TORCHRUN, free_port
from test_parallel import tiny_llama

from flopwise.parallel import plan

SCRIPT = Path(__file__).parent / "parallel_rank_step.py"


@pytest.mark.skipif(not TORCHRUN.exists(), reason="torchrun is not installed beside this Python")
@pytest.mark.parametrize("dim", ["tp", "dp"])
def test_the_fake_group_plan_equals_a_real_two_process_run(dim: str, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [str(TORCHRUN), "--nproc-per-node", "2", "--master-port", str(free_port()), str(SCRIPT), str(tmp_path), dim],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"{done.stderr[:3000]}\n…\n{done.stderr[-3000:]}"
    real = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    model, _ = tiny_llama(batch=4)
    torch.manual_seed(0)
    ids = torch.randint(0, 128, (4, 16))  # what the script draws (the same seed; the count needs only the shapes)
    p = plan(model, {"input_ids": ids, "labels": ids}, {dim: 2}, step="train")
    for rank, counted in enumerate(real):
        mine = p.ranks[rank]
        assert counted["unsupported"] == {}
        # left out of the real count: gloo's own split and copy after each reduce-scatter (parallel_rank_step.py)
        assert counted["backend_ops"] == ["aten.split", "aten.copy_"] * counted["reduce_scatters"]
        assert counted["reduce_scatters"] == (3 if dim == "dp" else 0)  # FSDP2's units: 2 layers and the root
        assert (mine.macs, mine.flops, mine.bytes_read, mine.bytes_written) == (
            counted["macs"],
            counted["flops"],
            counted["bytes_read"],
            counted["bytes_written"],
        )
        assert [[c.kind, c.mesh_dim, c.group_size, c.bytes, c.backward] for c in mine.program_collectives] == counted[
            "collectives"
        ]
