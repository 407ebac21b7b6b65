"""What `flopwise.Monitor` costs a training step once the step has been counted, measured side by side.

A GPT-2 small train step (random weights, AdamW, batch×tokens from the command line) is run plain and under
`with mon.step():`, alternately, so that load on the machine falls on both alike; the first monitored step
(the one that is counted) is run before and left out. Printed: the median of each, their ratio, and the
monitor's own bookkeeping per step measured alone (a step whose body is one call of a module that does
nothing), as a fraction of the median plain step.

    .venv/bin/python bench/monitor_overhead.py [--steps 8] [--tokens 1x64] [--layers 12]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel

import flopwise


def seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--tokens", default="1x64", help="BxS")
    parser.add_argument("--layers", type=int, default=12, help="GPT-2 small has 12")
    options = parser.parse_args()
    batch, length = (int(x) for x in options.tokens.split("x"))
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(n_layer=options.layers))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ids = torch.randint(0, model.config.vocab_size, (batch, length))

    def step() -> None:
        model(input_ids=ids, labels=ids).loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    mon = flopwise.Monitor(model)

    def monitored() -> None:
        with mon.step():
            step()

    step()  # warm-up
    counted = seconds(monitored)  # the counted step
    plain, timed = [], []
    for _ in range(options.steps):
        plain.append(seconds(step))
        timed.append(seconds(monitored))
    base, with_monitor = statistics.median(plain), statistics.median(timed)

    # the bookkeeping alone: a step around a module call that does nothing, with and without the monitor
    idle = nn.Identity()
    x = torch.empty(0)
    idle_mon = flopwise.Monitor(idle)
    with idle_mon.step():
        idle(x)  # counted once
    repeats = 2000
    bare = min(seconds(lambda: [idle(x) for _ in range(repeats)]) for _ in range(5)) / repeats

    def idle_steps() -> None:
        for _ in range(repeats):
            with idle_mon.step():
                idle(x)

    bookkeeping = min(seconds(idle_steps) for _ in range(5)) / repeats - bare

    print(f"GPT-2 ({options.layers} layers) train step, tokens {batch}x{length}, AdamW, CPU, {options.steps} pairs")
    print(f"  plain step (median)              {base:.4f} s")
    print(f"  under mon.step() (median)        {with_monitor:.4f} s   ratio {with_monitor / base:.4f}")
    print(f"  first monitored step (counted)   {counted:.4f} s   ratio {counted / base:.2f}")
    print(f"  monitor bookkeeping per step     {bookkeeping * 1e6:.1f} µs = {100 * bookkeeping / base:.4f} % of a step")
    print(f"  flops per step (contractions)    {mon.summary()['flops']:,}")


if __name__ == "__main__":
    main()
