"""count_generate of a Llama-3-8B-sized model on the meta device, next to one count of its prefill, in one run.

A prompt of 1×2048 tokens and N new tokens (default 256): the prefill is counted, the decode steps costed from one
decode forward run with the cache length symbolic (llm/decode_trace.py). Prints, in one process, the wall time of
one count of the prefill (first and repeated) and of count_generate; then, each in a fresh process as a user runs
them, `flopwise hf:CONFIG --tokens 1x2048` and the same with `--generate N`; and the ratios.

    .venv/bin/python bench/generate_speed.py [--tokens 256]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import transformers

import flopwise

CONFIG = transformers.LlamaConfig(
    vocab_size=128256,
    hidden_size=4096,
    intermediate_size=14336,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=8,
    max_position_embeddings=8192,
    architectures=["LlamaForCausalLM"],
)


def timed(run: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(run, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=256)
    options = parser.parse_args()
    config = transformers.LlamaConfig.from_dict(CONFIG.to_dict())
    config._attn_implementation = "sdpa"
    with torch.device("meta"):
        model = transformers.LlamaForCausalLM(config).eval()
    ids = torch.zeros(1, 2048, dtype=torch.long)
    start = time.perf_counter()
    flopwise.count(model, {"input_ids": ids})
    first = time.perf_counter() - start
    start = time.perf_counter()
    flopwise.count(model, {"input_ids": ids})
    again = time.perf_counter() - start
    start = time.perf_counter()
    report = flopwise.count_generate(model, ids, max_new_tokens=options.tokens)
    generate = time.perf_counter() - start
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, wall time")
    print("in one process:")
    print(f"  one count of the prefill (1×2048): {first:.2f} s first, {again:.2f} s repeated")
    print(
        f"  count_generate, {options.tokens} new tokens: {generate:.2f} s = {generate / first:.1f}× the first count, "
        f"{len(report.steps)} steps, decode {report.phases['decode'].macs:,} MACs"
    )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "llama-3-8b-like.json"
        CONFIG.to_json_file(path)
        command = [sys.executable, "-m", "flopwise", f"hf:{path}", "--tokens", "1x2048"]
        prefill = timed(command)
        generated = timed([*command, "--generate", str(options.tokens)])
    print("fresh processes, the command line:")
    print(f"  flopwise hf:llama-3-8b-like.json --tokens 1x2048: {prefill:.2f} s")
    print(f"  … --generate {options.tokens}: {generated:.2f} s = {generated / prefill:.1f}× the count")


if __name__ == "__main__":
    main()
