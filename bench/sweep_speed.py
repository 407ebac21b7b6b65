"""A 64-point sequence-length sweep of Llama 70B (on the meta device) next to one count, in one run.

The sweep is `count(..., symbolic={"seq": ("input_ids", 1)})` (an exact polynomial fitted from a few small counts
and checked at sizes never used to fit) evaluated at S = 64, 128, …, 4096; a few of those points are then counted
directly and must be equal in every metric. The ratio printed is the sweep's time ÷ one count's at S = 4096.

    .venv/bin/python bench/sweep_speed.py [--repeats 3] [--layers 80]
"""

from __future__ import annotations

import argparse
import time

import torch
from counting_overhead import llama_70b_on_meta

import flopwise

METRICS = ("macs", "flops", "bytes_read", "bytes_written", "params")
CHECKED = (64, 1000, 4096)  # direct counts compared with the sweep (1000 is not a multiple of 64: off the grid)


def ids(seq: int) -> dict[str, torch.Tensor]:
    return {"input_ids": torch.zeros(1, seq, dtype=torch.long, device="meta")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="one count: the best of this many runs")
    parser.add_argument("--layers", type=int, default=80)
    options = parser.parse_args()
    model, _ = llama_70b_on_meta(options.layers)
    flopwise.count(model, ids(4096))  # warm-up: first-call caches are not what we compare

    once = []
    for _ in range(options.repeats):
        start = time.perf_counter()
        flopwise.count(model, ids(4096))
        once.append(time.perf_counter() - start)
    one = min(once)

    start = time.perf_counter()
    fitted = flopwise.count(model, ids(4096), symbolic={"seq": ("input_ids", 1)})
    points = {seq: fitted.at(seq=seq) for seq in range(64, 4097, 64)}
    sweep = time.perf_counter() - start

    for seq in CHECKED:
        direct = flopwise.count(model, ids(seq))
        predicted = points[seq] if seq in points else fitted.at(seq=seq)
        for metric in METRICS:
            if getattr(direct, metric) != getattr(predicted, metric):
                raise SystemExit(f"S={seq}: {metric} {getattr(predicted, metric):,} from the sweep, "
                                 f"{getattr(direct, metric):,} counted directly")

    threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, {threads} threads; Llama 70B ({options.layers} layers) on the meta device\n")
    print(f"one count at S=4096 (best of {options.repeats}):  {one:7.2f} s")
    print(f"64-point sweep, S=64…4096:          {sweep:7.2f} s  ({fitted.counts} counts inside the fit)")
    print(f"sweep ÷ one count:                  {sweep / one:7.2f}×")
    print(f"checked equal to direct counts at S = {', '.join(map(str, CHECKED))} in {', '.join(METRICS)}")
    print(f"MACs(S) = {fitted.formula('macs')}")


if __name__ == "__main__":
    main()
