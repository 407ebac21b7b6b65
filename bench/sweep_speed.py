"""A 64-point sequence-length sweep of Llama 70B (on the meta device) next to one count, in one run.

The sweep is `count(..., symbolic={"seq": ("input_ids", 1)})` (one run with the sequence length symbolic on the
meta device, an exact polynomial fitted from the sizes it costs and checked at sizes never used to fit) evaluated at
S = 64, 128, …, 4096; a few of those points are then counted directly and must be equal in every metric. The ratio
printed is the sweep's time ÷ one count's at S = 4096, both the best of a few runs after a warm-up of each.

flopwise keeps the ops it met across counts (replay.py's memo), and torch keeps its fake kernels' outputs, so counting
S = 4096 again reuses them, while each of the sweep's 64 points is a size of its own, whose ops no earlier count met.
One count is therefore timed both ways: at a size this process has not counted (both caches emptied before each run
by `replay.forget()`: what each point of a sweep done by direct counts would cost) and repeated at the same size; the
ratio is given against each. As a check of the first, one count at sizes really never counted (S = 4097, 4098, …) is
timed too.

    .venv/bin/python bench/sweep_speed.py [--repeats 3] [--layers 80] [--cpu-time]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import torch
from counting_overhead import llama_70b_on_meta

import flopwise
from flopwise.shortcuts import replay

METRICS = ("macs", "flops", "bytes_read", "bytes_written", "params")
CHECKED = (64, 1000, 4096)  # direct counts compared with the sweep (1000 is not a multiple of 64: off the grid)


def ids(seq: int) -> dict[str, torch.Tensor]:
    return {"input_ids": torch.zeros(1, seq, dtype=torch.long, device="meta")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="one count: the best of this many runs")
    parser.add_argument("--layers", type=int, default=80)
    parser.add_argument("--cpu-time", action="store_true", help="CPU time of this process (steady on a shared machine)")
    options = parser.parse_args()
    clock = time.process_time if options.cpu_time else time.perf_counter
    model, _ = llama_70b_on_meta(options.layers)
    # warm-up of both paths: first-call imports and caches (torch's ShapeEnv, sympy) are not what we compare
    flopwise.count(model, ids(4096))
    flopwise.count(model, ids(64), symbolic={"seq": ("input_ids", 1)}).at(seq=128)

    def best(run: Callable[[], object]) -> float:
        times = []
        for _ in range(options.repeats):
            start = clock()
            run()
            times.append(clock() - start)
        return min(times)

    def sweep_points() -> tuple[Any, dict[int, Any]]:
        fitted = flopwise.count(model, ids(4096), symbolic={"seq": ("input_ids", 1)})
        return fitted, {seq: fitted.at(seq=seq) for seq in range(64, 4097, 64)}

    def first_count() -> None:
        replay.forget()
        flopwise.count(model, ids(4096))

    unseen = iter(range(4097, 8192))

    first = best(first_count)
    never = best(lambda: flopwise.count(model, ids(next(unseen))))
    repeated = best(lambda: flopwise.count(model, ids(4096)))
    sweep = best(sweep_points)
    fitted, points = sweep_points()

    for seq in CHECKED:
        direct = flopwise.count(model, ids(seq))
        predicted = points[seq] if seq in points else fitted.at(seq=seq)
        for metric in METRICS:
            if getattr(direct, metric) != getattr(predicted, metric):
                raise SystemExit(
                    f"S={seq}: {metric} {getattr(predicted, metric):,} from the sweep, "
                    f"{getattr(direct, metric):,} counted directly"
                )

    threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, {threads} threads; Llama 70B ({options.layers} layers) on the meta device\n")
    what = "CPU time" if options.cpu_time else "wall time"
    print(f"best of {options.repeats} runs each, {what}")
    rows = [
        ("one count at S=4096, caches emptied (a size not counted before)", first),
        ("one count at S=4097, 4098, … (sizes never counted)", never),
        ("one count at S=4096, repeated", repeated),
        ("64-point sweep, S=64…4096", sweep),
    ]
    for label, seconds in rows:
        print(f"  {label:<66}{seconds:6.2f} s")
    print(f"  (the sweep: {fitted.counts} count(s), {fitted.traced} sizes costed from one run with symbolic sizes)")
    print(
        f"sweep ÷ one count at a new size: {sweep / first:5.2f}× (÷ at sizes never counted: {sweep / never:5.2f}×);  "
        f"sweep ÷ a repeated count: {sweep / repeated:5.2f}×"
    )
    print(f"checked equal to direct counts at S = {', '.join(map(str, CHECKED))} in {', '.join(METRICS)}")
    print(f"MACs(S) = {fitted.formula('macs')}")


if __name__ == "__main__":
    main()
