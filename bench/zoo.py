"""The zoo sweep (`make zoo`): count models from where users are and write the table to docs/zoo.md.

    .venv/bin/python bench/zoo.py [--suite timm,others,transformers] [--jobs 2] [--timeout 180] [--out docs/zoo.md]
        [--only NAME,…] [--after NAME] [--resume] [--earlier docs/zoo.md]

A sweep in parts: `--only` runs the named models, `--after` the models after NAME in its suite's order, `--resume`
skips the models already in `--json` and appends to it; `--earlier` merges the rows of an earlier run (its jsonl or
its table) under the new ones, so the table covers both and says which rows are from which run.

- timm: one model of every architecture family (timm.list_modules()), random weights, real and fake mode;
- others: diffusers (UNet, AutoencoderKL, DiT), a peft LoRA Llama, MoE (Mixtral, Qwen2-MoE), CLIP: real, fake, meta;
- transformers: every model type from its default config, as `flopwise hf:config.json` counts it (built on the
  meta device, with the command line's fallback to real execution for small models that need weight values).

Every model runs in its own forked process with a time limit and a memory cap, so one bad model cannot stop the
sweep. A row's status: ok (complete), unsupported (counted; ops with no cost named), differs (the modes disagree),
crash (the count raised), input (the model's own code rejected the default input), needs data (a value depends on
the weights of a model too large to rebuild with random weights: flopwise's documented refusal), model (a plain
forward of the model on that input, with no flopwise, raises the same: bench/zoo_hf.py says how), no input
(no default input is known for the model: not a counting failure), build (the model cannot be built from its
default config: not a counting failure), timeout, killed.
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import logging
import multiprocessing
import os
import resource
import sys
import time
import traceback
import warnings
from typing import Any

import torch

sys.path.insert(0, os.path.dirname(__file__))
import zoo_models  # noqa: E402
from zoo_hf import first_line, run_transformers  # noqa: E402

import flopwise  # noqa: E402

MEMORY_CAP = 6 << 30  # bytes of address space a model's process may add to what it inherits


def _quiet() -> None:
    warnings.simplefilter("ignore")
    logging.getLogger("torch._subclasses.fake_tensor").setLevel(logging.CRITICAL)
    try:
        import transformers

        transformers.logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    except ImportError:
        pass


def count_modes(model: torch.nn.Module, inputs: Any, modes: tuple[str, ...]) -> dict[str, Any]:
    """Count in each mode; 'differs' unless every mode gives the same MACs, FLOPs and bytes."""
    figures, row = {}, {}
    for mode in modes:
        start = time.perf_counter()
        r = flopwise.count(model, inputs, mode=mode)
        row[f"{mode}_s"] = time.perf_counter() - start
        figures[mode] = (r.macs, r.flops, r.bytes_read, r.bytes_written)
        if r.unsupported:
            row["unsupported"] = dict(r.unsupported)
        row.setdefault("warnings", []).extend(r.warnings)
    row["macs"] = figures[modes[0]][0]
    row["status"] = "unsupported" if "unsupported" in row else "ok"
    if len(set(figures.values())) > 1:
        row["status"] = "differs"
        row["note"] = "; ".join(f"{m}: {f}" for m, f in figures.items())
    return row


def run_timm(name: str) -> dict[str, Any]:
    try:
        model, inputs = zoo_models.timm_model(name)
    except Exception as error:
        return {"status": "build", "note": first_line(error)}
    return count_modes(model, inputs, ("real", "fake"))


def run_other(name: str) -> dict[str, Any]:
    model, inputs = zoo_models.OTHERS[name]()
    return count_modes(model, inputs, ("real", "fake", "meta"))


RUNNERS = {"timm": run_timm, "others": run_other, "transformers": run_transformers}


def _child(suite: str, name: str, pipe: Any) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as statm:
        inherited = int(statm.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (inherited + MEMORY_CAP, hard))
    sys.stderr = io.StringIO()  # models print; the table says what matters
    _quiet()
    try:
        row = RUNNERS[suite](name)
    except MemoryError:
        row = {"status": "killed", "note": "over the memory cap"}
    except Exception as error:
        row = {"status": "crash", "note": first_line(error), "where": traceback.format_exc().splitlines()[-3][:160]}
    pipe.send(row)


def run_all(cases: list[tuple[str, str]], jobs: int, timeout: float, log: Any) -> list[dict[str, Any]]:
    context = multiprocessing.get_context("fork")  # torch and transformers are imported once, in the parent
    pending, running, rows = list(cases), [], []
    while pending or running:
        while pending and len(running) < jobs:
            suite, name = pending.pop(0)
            receive, send = context.Pipe(duplex=False)
            process = context.Process(target=_child, args=(suite, name, send), daemon=True)
            process.start()
            running.append((suite, name, process, receive, time.monotonic()))
        time.sleep(0.05)
        for entry in list(running):
            suite, name, process, receive, started = entry
            elapsed = time.monotonic() - started
            if receive.poll():
                row = receive.recv()
            elif not process.is_alive():
                row = {"status": "killed", "note": f"the process ended with code {process.exitcode}"}
            elif elapsed > timeout:
                process.kill()
                row = {"status": "timeout", "note": f"over {timeout:.0f} s"}
            else:
                continue
            process.join(5)
            running.remove(entry)
            rows.append({"suite": suite, "model": name, "wall_s": elapsed, "run": time.strftime("%Y-%m-%d"), **row})
            log.write(json.dumps(rows[-1], default=str) + "\n")  # one line per model: a stopped sweep keeps its rows
            log.flush()
            print(f"{suite:12} {name:40} {elapsed:6.1f}s {row['status']:12} {row.get('note', '')[:80]}", flush=True)
    return rows


def select(cases: list[tuple[str, str]], only: str, after: str, done: set[tuple[str, str]]) -> list[tuple[str, str]]:
    """The cases `--only`, `--after` and `--resume` leave."""
    if only:
        names = set(only.split(","))
        cases = [case for case in cases if case[1] in names]
    if after:
        cases = [case for case in cases if case[1] > after]
    return [case for case in cases if case not in done]


def cases_for(suites: list[str]) -> list[tuple[str, str]]:
    cases: list[tuple[str, str]] = []
    if "others" in suites:
        cases += [("others", name) for name in zoo_models.OTHERS]
    if "timm" in suites:
        cases += [("timm", name) for name in zoo_models.timm_families().values()]
    if "transformers" in suites:
        from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

        cases += [("transformers", name) for name in sorted(CONFIG_MAPPING_NAMES)]
    return cases


def _import_every_transformers_model() -> None:
    """transformers imports a model's code on first use: once here, not once per forked process."""
    import transformers.models

    folder = os.path.dirname(transformers.models.__file__)
    for name in sorted(os.listdir(folder)):
        if os.path.isfile(os.path.join(folder, name, f"modeling_{name}.py")):
            try:
                importlib.import_module(f"transformers.models.{name}.modeling_{name}")
            except Exception:  # noqa: S112 - a model whose code does not import is reported by its own row
                continue


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", default="others,timm,transformers")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=180)
    parser.add_argument("--out", default="docs/zoo.md")
    parser.add_argument("--json", default="build/zoo.jsonl", help="the raw rows, one JSON line per model")
    parser.add_argument("--only", default="", help="comma-separated model names: run these only")
    parser.add_argument("--after", default="", help="run the models whose name sorts after this one")
    parser.add_argument("--resume", action="store_true", help="skip the models already in --json; append to it")
    parser.add_argument("--earlier", default="", help="rows of an earlier run (.jsonl or the .md table) to merge")
    options = parser.parse_args()
    _quiet()
    torch.set_num_threads(1)  # forked children share the cores; one thread each
    suites = options.suite.split(",")
    for library in ("transformers", "timm", "diffusers", "peft"):  # imported once here, shared by the forks
        importlib.import_module(library)
    if "transformers" in suites:
        _import_every_transformers_model()
    from zoo_table import read_rows, render

    start = time.monotonic()
    os.makedirs(os.path.dirname(options.json) or ".", exist_ok=True)
    kept = read_rows(options.json) if options.resume and os.path.exists(options.json) else []
    cases = select(cases_for(suites), options.only, options.after, {(r["suite"], r["model"]) for r in kept})
    with open(options.json, "a" if options.resume else "w") as log:
        rows = kept + run_all(cases, options.jobs, options.timeout, log)
    earlier = read_rows(options.earlier) if options.earlier else []
    with open(options.out, "w") as out:
        out.write(render(rows, time.monotonic() - start, options.jobs, earlier))
    print(f"wrote {options.out}")


if __name__ == "__main__":
    main()
