"""Monitor across processes: `torchrun --nproc-per-node 2` on gloo (CPU), DDP and FSDP2, a tiny model, 4 steps."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

TORCHRUN = Path(sys.executable).parent / "torchrun"
SCRIPT = Path(__file__).parent / "distributed_step.py"
K, H, M = 16, 32, 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.skipif(not TORCHRUN.exists(), reason="torchrun is not installed beside this Python")
@pytest.mark.parametrize("wrapper", ["ddp", "fsdp"])
def test_two_ranks_each_count_their_micro_batch(wrapper: str, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [
            str(TORCHRUN),
            "--nproc-per-node",
            "2",
            "--master-port",
            str(free_port()),
            str(SCRIPT),
            str(tmp_path),
            wrapper,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"{done.stderr[:3000]}\n…\n{done.stderr[-3000:]}"  # the first error, and the end
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    for r in ranks:
        n = r["rows"]
        # contractions: 2·(forward N·K·H + N·H·M; backward both weight gradients + the second input gradient)
        assert r["summary"]["flops"] == r["single_flops"] == 2 * (2 * n * K * H + 3 * n * H * M)
        assert r["unsupported"] == {}
    cluster = ranks[0]["summary"]
    for key in ("world_size", "ranks", "slowest_rank", "cluster_flops", "cluster_tflops_per_s", "cluster_mfu"):
        assert cluster[key] == ranks[1]["summary"][key]  # every rank gets the same cluster figures
    assert cluster["world_size"] == 2
    assert [r["flops"] for r in cluster["ranks"]] == [ranks[0]["single_flops"], ranks[1]["single_flops"]]
    assert cluster["cluster_flops"] == ranks[0]["single_flops"] + ranks[1]["single_flops"]
    times = [r["step_time_s"] for r in cluster["ranks"]]
    assert cluster["slowest_rank"] == times.index(max(times))
    assert cluster["cluster_tflops_per_s"] == pytest.approx(cluster["cluster_flops"] / max(times) / 1e12)
    params = K * H + H + H * M + M  # 676 float32 parameters
    traffic = cluster["ranks"][0]["collective_bytes"]
    if wrapper == "ddp":
        assert traffic == {"c10d.allreduce_": 4 * params}  # one gradient bucket, all-reduced in place
    else:
        # each layer's parameters all-gathered in forward and again in backward (reshard after forward): the
        # local half and the full output buffer, twice; gradients reduce-scattered once (full in, half out)
        assert traffic == {
            "c10d._allgather_base_": 2 * (4 * params + 2 * params),
            "c10d._reduce_scatter_base_": 4 * params + 2 * params,
        }
