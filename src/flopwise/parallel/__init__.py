"""Parallel plans: what each rank of a parallel training or inference job runs, counted on its local shards.

```python
plan = flopwise.parallel.plan(model, {"input_ids": ids}, {"dp": 16, "pp": 8, "tp": 8}, step="train")
flopwise.parallel.plan(moe, {"input_ids": ids}, {"dp": 8, "ep": 8})    # 8 ranks: ep borrows them from dp
flopwise.parallel.plan(model, {"input_ids": ids}, {"dp": 4, "cp": 2})  # 8 ranks: each half of every sequence
plan.ranks[0].macs; plan.ranks[0].collectives      # [{kind, bytes, mesh_dim, calls, group_size}]
plan.estimate(device="H100-SXM", link="NVLink4")   # step time per rank and for the step, predicted MFU
```

`plan(model, inputs, parallel, parallelize_fn=None, **options) -> ParallelPlan` applies the plan with torch's own
APIs on torch's fake process group (`init_process_group("fake")`: any world size in one process, no data moved):
`init_device_mesh`, DTensor tensor parallelism (`parallelize_module`), FSDP2 (`fully_shard`), pipeline stages
and a `torch.distributed.pipelining` schedule, transformers' expert parallelism (`"ep"`, ranks borrowed from dp;
experts.py), and context parallelism (`"cp"`, each rank a chunk of the sequence; context.py);
`parallelize_fn(model, mesh)` replaces the default tensor, expert and data parallel plan (styles.py) with the
user's own. layout.py says how the dimensions are ordered. Each distinct rank program is counted once on fake
CPU tensors at its local shapes, with the collectives it runs; ranks equal by symmetry share that count
(planner.py).

Options: `step` ("forward" or "train": forward, loss, backward, then the optimizer's step when `optimizer=` is
given: the model's own optimizer, rebuilt with its class and defaults over each rank's parameters, or a factory
such as `lambda ps: torch.optim.AdamW(ps)`), `loss_fn`, `convention`, `attention`, `overrides` (as `count()`),
`microbatches` (default: pp), `schedule` ("Schedule1F1B" or "ScheduleGPipe"), `mixed_precision` ("bf16": FSDP2
computes in bfloat16, reduces in float32), `symmetry` (False: every rank counted), `mode` ("fake" or "meta"; "real",
count()'s default, is counted as "fake" and said in the plan's notes: the fake process group moves no data).
`shortcuts` is accepted and changes nothing; `symbolic` is refused. So `count(model, inputs, parallel=…,
**options)` can hand its options on unchanged.

Returns a `ParallelPlan` (report.py): `.ranks` (one `RankReport` per rank, shared between ranks equal by
symmetry), `.classes`, `.macs`/`.flops` over all ranks, `.estimate(device=, link=)`, `.to_dict()`, and a table
when printed.
"""

from ..counter import PLANNERS
from .comparison import PlanComparison, PlanRow, compare
from .estimate import StepEstimate, estimate
from .layout import DIMS, Layout, parse
from .links import LINKS, Link, find_link
from .planner import plan
from .report import ParallelPlan, RankReport

ParallelPlan.estimator = estimate
PLANNERS["parallel"] = plan  # count(model, inputs, parallel=...) hands its options to plan()

__all__ = [
    "DIMS",
    "LINKS",
    "Layout",
    "Link",
    "ParallelPlan",
    "PlanComparison",
    "PlanRow",
    "RankReport",
    "StepEstimate",
    "compare",
    "estimate",
    "find_link",
    "parse",
    "plan",
]
