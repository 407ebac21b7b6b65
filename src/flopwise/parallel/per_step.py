"""FSDP2's own work under a pipeline: once a step, not once per micro-batch.

With pipeline parallelism FSDP2 keeps a stage's parameters gathered between micro-batches
(`reshard_after_forward=False`), and torch's schedule runs every backward without gradient sync
(`PipelineStage.backward_maybe_with_nosync`), then reduce-scatters the accumulated gradients once, after the last
micro-batch (torchtitan's setup: the stage's module is the FSDP2 root). So a stage gathers its parameters in the
first micro-batch's forward and reduces its gradients once. A plan counts one micro-batch and multiplies it by
the micro-batches; the calls marked here are taken once: FSDP2's copies into and out of its buffers (`fsdp.*`)
and its collectives (those on the FSDP2 groups, `layout.FSDP_DIMS`).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..report.report import Report
from .layout import FSDP_DIMS
from .local import CollectiveCall


def once_per_step(report: Report, collectives: Sequence[CollectiveCall]) -> list[bool]:
    """For each of `report.calls`, whether FSDP2 runs it once a step. `collectives` are the program's, in the
    order it ran them: the k-th call of a collective op in the report is the k-th of that op there."""
    on_fsdp_group: dict[str, list[bool]] = {}
    for c in collectives:
        on_fsdp_group.setdefault(c.op, []).append(c.mesh_dim in FSDP_DIMS)
    seen: dict[str, int] = {}
    once: list[bool] = []
    for call in report.calls:
        groups = on_fsdp_group.get(call.op)
        if groups is None:
            once.append(call.op.startswith("fsdp."))
            continue
        index = seen[call.op] = seen.get(call.op, 0) + 1
        if index > len(groups):
            raise RuntimeError(f"{call.op}: the count has more calls than the collectives recorded ({len(groups)})")
        once.append(groups[index - 1])
    return once
