"""`flopwise MODEL --tokens BxS --generate N`: prefill and decode of generate(), with a roofline bound per phase."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

import torch

from ..core.cost import Cost
from ..hardware.devices import find_device, peak_key
from ..llm import GenerateReport, count_generate
from ..render.data import cost_dict, report_to_dict
from ..render.grid import left, right, text_table
from ..render.units import si
from .common import chosen_convention, emit
from .errors import UsageError
from .inputs import make_inputs
from .spec import Loaded
from .terminal import stage


def generate_main(loaded: Loaded, options: argparse.Namespace, notify: Callable[[str], None]) -> int:
    inputs = make_inputs(loaded.inputs, real=True)  # token ids: small, and generate() needs their values
    ids = inputs.get("input_ids") if isinstance(inputs, dict) else inputs
    if not isinstance(ids, torch.Tensor) or ids.dim() != 2:
        raise UsageError("--generate needs a language model given token ids: hf:config.json --tokens BxS")
    if options.generate < 1:
        raise UsageError(f"--generate expects a number of new tokens ≥ 1, got {options.generate}")
    for note in loaded.notes:
        notify(note)
    stage(f"counting generate() of {options.generate} new tokens on {loaded.spec}")

    def progress(done: int, total: int) -> None:
        stage(f"counting generate() on {loaded.spec}: forward {done} of {total}")

    report = count_generate(
        _causal_lm(loaded.model),
        ids,
        options.generate,
        convention=chosen_convention(options),
        progress=progress,
        do_sample=False,
        pad_token_id=0,
    )
    if options.format == "json":  # the flopwise/1 report with its phases, and one entry per forward
        steps = [
            {
                "phase": st.phase,
                "tokens": st.tokens,
                "context": st.context,
                **cost_dict(st.cost),
                "weight_bytes": st.weight_bytes,
                "kv_read_bytes": st.kv_read_bytes,
                "kv_written_bytes": st.kv_written_bytes,
                "kv_cache_bytes": st.kv_cache_bytes,
            }
            for st in report.steps
        ]
        emit(json.dumps({**report_to_dict(report), "steps": steps}, indent=2), options, notify)
    else:
        emit("\n".join(render_generation(report, options.device)), options, notify)
    return 0


def _causal_lm(model: torch.nn.Module) -> torch.nn.Module:
    """generate() needs the language-model head: a bare transformers model (hf: builds AutoModel) is rebuilt as
    its ForCausalLM from the same config, on the same device (meta for hf:)."""
    if hasattr(model, "generate") or not hasattr(model, "config"):
        return model
    import transformers  # noqa: PLC0415 - only hf: models get here

    device = next(model.parameters()).device
    with torch.device(device):
        lm: torch.nn.Module = transformers.AutoModelForCausalLM.from_config(model.config)  # type: ignore[no-untyped-call]
        return lm.eval()


def _bound(cost: Cost, traffic: int, dtype: str, device: Any) -> float | None:
    """Roofline lower bound on the time of a step: max(FLOPs / peak, minimal bytes / bandwidth), seconds."""
    peak = device.tflops.get(peak_key(dtype, False))
    if peak is None:
        return None
    return float(max(cost.flops / (peak * 1e12), traffic / (device.bandwidth_gbs * 1e9)))


def render_generation(report: GenerateReport, device_name: str | None) -> list[str]:
    steps, decode = report.steps, report.steps[1:]
    batch = int(report.inputs.split("=")[1].split("×")[0]) if "=" in report.inputs else 1
    dtype = max(report.param_bytes, key=lambda k: report.param_bytes[k]) if report.param_bytes else "float32"
    device = find_device(device_name) if device_name else None
    if device_name and device is None:
        raise UsageError(f"--device {device_name!r} is not in the peak table (flopwise.measure.devices)")
    headers = ["MACs", "FLOPs", "weights read", "KV read", "KV written", "bytes (ops)", "FLOP/B", "KV cache"]
    if device is not None:
        headers += ["time bound", "tokens/s bound"]
    rows = []

    def row(
        label: str,
        tokens: int,
        context: int,
        cost: Cost,
        weights: int,
        kv_read: int,
        kv_written: int,
        cache: int,
        new_tokens: int,
    ) -> list[str]:
        cells = [
            label,
            f"{tokens}",
            f"{context}",
            f"{cost.macs:,}",
            f"{cost.flops:,}",
            f"{weights:,}",
            f"{kv_read:,}",
            f"{kv_written:,}",
            f"{cost.bytes:,}",
            f"{cost.intensity:.1f}" if cost.intensity else "-",
            f"{cache:,}",
        ]
        if device is not None:
            seconds = _bound(cost, weights + kv_read + kv_written, dtype, device)
            cells += ["-", "-"] if not seconds else [f"{seconds * 1e3:.3g} ms", si(new_tokens / seconds)]
        return cells

    first = steps[0]
    rows.append(
        row(
            "prefill",
            first.tokens,
            first.context,
            first.cost,
            first.weight_bytes,
            first.kv_read_bytes,
            first.kv_written_bytes,
            first.kv_cache_bytes,
            batch * first.tokens,
        )
    )
    if decode:
        for label, step in (("decode, first token", decode[0]), ("decode, last token", decode[-1])):
            rows.append(
                row(
                    label,
                    step.tokens,
                    step.context,
                    step.cost,
                    step.weight_bytes,
                    step.kv_read_bytes,
                    step.kv_written_bytes,
                    step.kv_cache_bytes,
                    batch,
                )
            )
        n = len(decode)
        mean = Cost(
            *(
                round(sum(getattr(s.cost, f) for s in decode) / n)
                for f in ("macs", "flops", "bytes_read", "bytes_written")
            )
        )
        rows.append(
            row(
                "decode, mean token",
                1,
                round(sum(s.context for s in decode) / n),
                mean,
                decode[0].weight_bytes,
                round(sum(s.kv_read_bytes for s in decode) / n),
                decode[0].kv_written_bytes,
                round(sum(s.kv_cache_bytes for s in decode) / n),
                batch,
            )
        )
    total = report.phases["prefill"] + report.phases["decode"]
    lines = [
        f"{report.model}: generate() of {len(steps)} new tokens ({report.inputs}); "
        f"{len(steps)} forwards: the prefill (last logits row only), then {len(decode)} decode steps",
        *text_table(left("phase") + right("tokens", "context", *headers), rows),
        "",
        f"prefill {report.phases['prefill'].macs:,} MACs · decode {report.phases['decode'].macs:,} MACs "
        f"({len(decode)} steps) · total {total.macs:,} MACs, {total.flops:,} FLOPs "
        f"(+ {report.phases['sampling'].flops:,} FLOPs choosing tokens)",
    ]
    if device is not None:
        lines.append(
            f"time bound: a roofline lower bound on {device.name} ({dtype}), max(FLOPs / peak, "
            "(weights + KV cache read + written) / bandwidth) — not a measurement; tokens/s is its bound"
        )
    lines += [f"warning: {w}" for w in report.warnings]
    return lines
