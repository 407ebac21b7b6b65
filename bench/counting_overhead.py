"""How long counting takes next to a plain forward, measured side by side in one run.

For each model: the median of N runs of a plain forward, of flopwise in real and fake mode, and of
torch.utils.flop_counter.FlopCounterMode (the reference dispatch-level counter), each as a ratio to the plain
forward. The meta-device 70B Llama is compared with a bare forward on the meta device.

    .venv/bin/python bench/counting_overhead.py [--repeats 5] [--skip-70b]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

import flopwise


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: first-call caches (kernels, fake-tensor dispatch tables) are not what we compare
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


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


def llama_70b_on_meta() -> tuple[torch.nn.Module, dict[str, torch.Tensor]]:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=128256, hidden_size=8192, intermediate_size=28672, num_hidden_layers=80,
        num_attention_heads=64, num_key_value_heads=8, max_position_embeddings=8192,
    )
    config._attn_implementation = "sdpa"
    with torch.device("meta"):
        model = LlamaForCausalLM(config).eval()
    return model, {"input_ids": torch.zeros(1, 4096, dtype=torch.long, device="meta")}


def row(name: str, model: torch.nn.Module, inputs: dict[str, torch.Tensor], repeats: int) -> str:
    base = median_seconds(lambda: plain(model, inputs), repeats)
    real = median_seconds(lambda: flopwise.count(model, inputs), repeats)
    if next(model.parameters()).is_meta:  # a meta model is always counted on the meta device
        fake_cell = "(= real)"
    else:
        fake_cell = f"{median_seconds(lambda: flopwise.count(model, inputs, mode='fake'), repeats) / base:.2f}×"
    reference = median_seconds(lambda: flop_counter(model, inputs), repeats)
    return f"{name:28} {base * 1000:7.0f}ms {real / base:13.2f}× {fake_cell:>14} {reference / base:15.2f}×"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-70b", action="store_true")
    options = parser.parse_args()
    torch.manual_seed(0)
    builders = [
        ("ResNet-50 1×3×224×224", resnet50),
        ("ResNet-50 8×3×224×224", lambda: resnet50(8)),
        ("GPT-2 small S=128", gpt2_small),
    ]
    if not options.skip_70b:
        builders.append(("Llama 70B on meta, S=4096", llama_70b_on_meta))

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of {options.repeats} runs\n")
    header = f"{'model':28} {'forward':>9} {'flopwise real':>14} {'flopwise fake':>14} {'FlopCounterMode':>16}"
    print(header)
    print("-" * len(header))
    for name, build in builders:
        print(row(name, *build(), options.repeats))
    print("\nratios are counting time ÷ plain forward time (no_grad) of the same model in the same run")


if __name__ == "__main__":
    main()
