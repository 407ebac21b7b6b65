"""Expert and context parallelism planned on the fake process group against the same plans run for real:
`torchrun --nproc-per-node 2` on gloo (tests/parallel_rank_experts.py). `ep`: a tiny Mixtral's train step under
`dp=2,ep=2` (FSDP2 for the dense layers, transformers' AllToAllEP for the experts), the router made balanced in the
real run. `cp`: a tiny Llama's train step under `cp=2`. Each real rank counts its own program; the plan's per-rank
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

pytest.importorskip("transformers")

from parallel_rank_experts import tiny_llama, tiny_mixtral  # noqa: E402  (after the importorskip)

from flopwise.parallel import plan  # noqa: E402

SCRIPT = Path(__file__).parent / "parallel_rank_experts.py"


@pytest.mark.skipif(not TORCHRUN.exists(), reason="torchrun is not installed beside this Python")
@pytest.mark.parametrize("dim", ["ep", "cp"])
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
    torch.manual_seed(0)
    # what the script draws (the same seed; the count needs only the shapes)
    if dim == "ep":
        ids = torch.randint(0, 128, (4, 8))
        p = plan(tiny_mixtral(), {"input_ids": ids, "labels": ids}, {"dp": 2, "ep": 2}, step="train")
    else:
        ids = torch.randint(0, 128, (4, 16))
        p = plan(tiny_llama(), {"input_ids": ids, "labels": ids}, {"cp": 2}, step="train")
    for rank, counted in enumerate(real):
        mine = p.ranks[rank]
        assert counted["unsupported"] == {}
        # left out of the real count: gloo's own split and copy after each reduce-scatter (the rank script)
        assert counted["backend_ops"] == ["aten.split", "aten.copy_"] * counted["reduce_scatters"]
        assert counted["reduce_scatters"] == 3  # FSDP2's units: 2 layers and the root
        # the experts' products: 32 rows a layer (balanced: 16 kept, 16 received) through 3·H·I = 6,144 MACs each,
        # forward and twice in backward, 2 layers: 3·2·32·6,144 = 1,179,648
        assert counted["grouped_mm_macs"] == (1_179_648 if dim == "ep" else 0)
        assert (mine.macs, mine.flops, mine.bytes_read, mine.bytes_written) == (
            counted["macs"],
            counted["flops"],
            counted["bytes_read"],
            counted["bytes_written"],
        )
        assert [[c.kind, c.mesh_dim, c.group_size, c.bytes, c.backward] for c in mine.program_collectives] == counted[
            "collectives"
        ]
