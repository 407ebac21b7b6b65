"""How long counting takes next to a plain forward, measured side by side in one run.

For each model: the best of N runs (the least disturbed by other work on a shared machine) of a plain forward, of
flopwise in real, fake and meta mode, and of torch.utils.flop_counter.FlopCounterMode (the reference dispatch-level
counter), each as a ratio to the plain forward. flopwise keeps the outputs and costs of the ops it met across
counts (replay.py's memo, as torch keeps its fake-tensor cache), so a repeated count of one model reuses them: the
"meta, first" column empties that memo before each run, as for a model whose ops the process never counted.
The meta-device 70B Llama is compared with a bare forward on the meta device, and the peak memory (RSS) of a
fresh process that counts it is printed below the table. "fresh process" is the first count of a process that has
counted nothing (both caches empty, every code path run for the first time), against the warm forward timed in
that same process.

With --cpu-time every figure is the CPU time of this process and the forward runs on one thread: on a machine
shared with other work, a multi-threaded forward's wall time swings with the load (threads wait on each other),
while counting runs on one thread either way.

    .venv/bin/python bench/counting_overhead.py [--repeats 5] [--skip-70b] [--cpu-time]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

import flopwise
from flopwise.shortcuts import replay

CLOCK = time.perf_counter  # time.process_time with --cpu-time


def best_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: first-call caches (kernels, fake-tensor dispatch tables) are not what we compare
    times = []
    for _ in range(repeats):
        start = CLOCK()
        fn()
        times.append(CLOCK() - start)
    return min(times)


def flop_counter(model: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> None:
    with torch.no_grad(), FlopCounterMode(display=False):
        model(**inputs)


def plain(model: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        model(**inputs)


def resnet50(batch: int = 1) -> tuple[torch.nn.Module, dict[str, torch.Tensor]]:
    import torchvision

    return torchvision.models.resnet50().eval(), {"x": torch.randn(batch, 3, 224, 224)}


def gpt2_small() -> tuple[torch.nn.Module, dict[str, torch.Tensor]]:
    from transformers import GPT2Config, GPT2Model

    config = GPT2Config()
    config._attn_implementation = "sdpa"
    return GPT2Model(config).eval(), {"input_ids": torch.randint(0, 50257, (1, 128))}


def llama_70b_on_meta(layers: int = 80) -> tuple[torch.nn.Module, dict[str, torch.Tensor]]:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=128256,
        hidden_size=8192,
        intermediate_size=28672,
        num_hidden_layers=layers,
        num_attention_heads=64,
        num_key_value_heads=8,
        max_position_embeddings=8192,
    )
    config._attn_implementation = "sdpa"
    with torch.device("meta"):
        model = LlamaForCausalLM(config).eval()
    return model, {"input_ids": torch.zeros(1, 4096, dtype=torch.long, device="meta")}


def fresh(name: str, cpu_time: bool) -> str:
    """The first count in a fresh process, ÷ the warm forward there (a child process: see `first_in_process`)."""
    command = [sys.executable, __file__, "--first-in-process", name] + (["--cpu-time"] if cpu_time else [])
    child = subprocess.run(command, capture_output=True, text=True, check=True)
    return f"{float(child.stdout.split()[-1]):.2f}×"


def first_in_process(name: str) -> None:
    model, inputs = BUILDERS[name]()
    base = best_seconds(lambda: plain(model, inputs), 3)
    mode = "meta" if next(model.parameters()).is_meta else "fake"
    start = CLOCK()
    flopwise.count(model, inputs, mode=mode)
    print((CLOCK() - start) / base)


def row(name: str, model: torch.nn.Module, inputs: dict[str, torch.Tensor], repeats: int) -> str:
    base = best_seconds(lambda: plain(model, inputs), repeats)
    real = best_seconds(lambda: flopwise.count(model, inputs), repeats)
    first = best_seconds(lambda: first_count(model, inputs, "meta"), repeats)
    if next(model.parameters()).is_meta:  # a meta model is always counted in meta mode
        fake_cell = meta_cell = "(= real)"
    else:
        fake_cell = f"{best_seconds(lambda: flopwise.count(model, inputs, mode='fake'), repeats) / base:.2f}×"
        meta_cell = f"{best_seconds(lambda: flopwise.count(model, inputs, mode='meta'), repeats) / base:.2f}×"
    reference = best_seconds(lambda: flop_counter(model, inputs), repeats)
    cold = fresh(name, CLOCK is time.process_time)
    return (
        f"{name:28} {base * 1000:7.0f}ms {real / base:13.2f}× {fake_cell:>14} {meta_cell:>14} "
        f"{first / base:13.2f}× {cold:>15} {reference / base:15.2f}×"
    )


def first_count(model: torch.nn.Module, inputs: dict[str, torch.Tensor], mode: str) -> None:
    replay.forget()
    flopwise.count(model, inputs, mode=mode)


BUILDERS: dict[str, Callable[[], tuple[torch.nn.Module, dict[str, torch.Tensor]]]] = {
    "ResNet-50 1×3×224×224": resnet50,
    "ResNet-50 8×3×224×224": lambda: resnet50(8),
    "GPT-2 small S=128": gpt2_small,
    "Llama 70B on meta, S=4096": llama_70b_on_meta,
}


def llama_rss() -> None:
    """In a fresh process: count Llama 70B on meta once and print the peak RSS in MiB."""
    model, inputs = llama_70b_on_meta()
    flopwise.count(model, inputs)
    try:  # VmHWM: ru_maxrss would keep the parent's peak across fork and exec
        status = Path("/proc/self/status").read_text()
        print(int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) // 1024)
    except (OSError, StopIteration):
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-70b", action="store_true")
    parser.add_argument("--cpu-time", action="store_true", help="CPU time of this process, forward on one thread")
    parser.add_argument("--llama-rss", action="store_true", help=argparse.SUPPRESS)  # the child process
    parser.add_argument("--first-in-process", help=argparse.SUPPRESS)  # the child process of the "fresh" column
    options = parser.parse_args()
    if options.cpu_time:
        global CLOCK
        CLOCK = time.process_time
        torch.set_num_threads(1)
    if options.llama_rss:
        llama_rss()
        return
    torch.manual_seed(0)
    if options.first_in_process:
        first_in_process(options.first_in_process)
        return
    builders = [(name, build) for name, build in BUILDERS.items() if "70B" not in name or not options.skip_70b]

    clock = "CPU time" if options.cpu_time else "wall time"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {clock}, best of {options.repeats} runs\n")
    header = (
        f"{'model':28} {'forward':>9} {'flopwise real':>14} {'flopwise fake':>14} {'flopwise meta':>14} "
        f"{'meta, first':>14} {'fresh process':>15} {'FlopCounterMode':>16}"
    )
    print(header)
    print("-" * len(header))
    for name, build in builders:
        print(row(name, *build(), options.repeats))
    print("\nratios are counting time ÷ plain forward time (no_grad) of the same model in the same run")
    if not options.skip_70b:
        child = subprocess.run([sys.executable, __file__, "--llama-rss"], capture_output=True, text=True, check=True)
        print(f"peak RSS of a process counting Llama 70B on meta at S=4096: {int(child.stdout.split()[-1])} MiB")


if __name__ == "__main__":
    main()
