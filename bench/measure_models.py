"""Measure ResNet-50 and GPT-2 small on this machine: latency, FLOP/s, roofline, MFU and energy estimate.

    .venv/bin/python bench/measure_models.py [--repeats 5] [--plots DIR] [--threads N]

Prints one measurement table per model (module depth 1, top operators by time) and, with --plots, writes a
roofline PNG per model. Timings are whatever this machine does today; nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torchvision
from transformers import GPT2Config, GPT2Model

from flopwise.hardware import measure, roofline_plot


def models() -> list[tuple[str, torch.nn.Module, object]]:
    torch.manual_seed(0)
    resnet = torchvision.models.resnet50().eval()
    gpt2 = GPT2Model(GPT2Config()).eval()  # GPT-2 small from its config: 12 layers, 768 wide, no download
    tokens = torch.randint(0, 50257, (1, 128))
    return [
        ("ResNet-50, 1×3×224×224", resnet, torch.randn(1, 3, 224, 224)),
        ("GPT-2 small, 1×128 tokens", gpt2, {"input_ids": tokens}),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--plots", type=Path, default=None, help="folder for roofline PNGs")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads before measuring")
    options = parser.parse_args()
    if options.threads:
        torch.set_num_threads(options.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for title, model, inputs in models():
        start = time.perf_counter()
        m = measure(model, inputs, repeats=options.repeats, warmup=2, profile_repeats=2)
        print(f"\n## {title} (measured in {time.perf_counter() - start:.0f} s)\n")
        print(m.table(depth=1, top=10))
        if options.plots:
            options.plots.mkdir(parents=True, exist_ok=True)
            path = roofline_plot(m, options.plots / f"roofline_{type(model).__name__.lower()}.png")
            print(f"\nroofline plot: {path}")


if __name__ == "__main__":
    main()
