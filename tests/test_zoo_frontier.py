"""A sample of the zoo (`make zoo` runs all of it): timm, diffusers, peft, MoE and CLIP, built with no download.

Each model counts with no crash and no unsupported op, and real, fake and meta mode give the same figures.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import pytest
import torch

import flopwise

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bench"))
import zoo_models  # noqa: E402


def _same_in_every_mode(model: torch.nn.Module, inputs: Any, modes: tuple[str, ...]) -> flopwise.Report:
    reports = [flopwise.count(model, inputs, mode=mode) for mode in modes]
    figures = {(r.macs, r.flops, r.bytes_read, r.bytes_written) for r in reports}
    assert len(figures) == 1, dict(zip(modes, figures, strict=False))
    assert all(r.unsupported == {} for r in reports), [r.unsupported for r in reports]
    assert reports[0].macs > 0
    return reports[0]


@pytest.mark.parametrize("name", ["resnet18", "vit_tiny_patch16_224", "convnext_atto", "mobilenetv3_small_050"])
def test_timm(name: str) -> None:
    pytest.importorskip("timm")
    model, x = zoo_models.timm_model(name)
    _same_in_every_mode(model, x, ("real", "fake", "meta"))


def test_timm_families_are_one_per_module() -> None:
    timm = pytest.importorskip("timm")
    families = zoo_models.timm_families()
    assert set(families) == {m for m in timm.list_modules() if timm.list_models(module=m)}
    assert families["resnet"] in timm.list_models(module="resnet")


SAMPLE = [
    "diffusers UNet2DConditionModel",
    "diffusers AutoencoderKL",
    "diffusers DiTTransformer2DModel",
    "transformers CLIP",
    "transformers Mixtral (eager experts)",
    "transformers Qwen2-MoE (grouped_mm experts)",
]


@pytest.mark.parametrize("name", SAMPLE)
def test_others(name: str) -> None:
    pytest.importorskip("diffusers" if name.startswith("diffusers") else "transformers")
    model, inputs = zoo_models.OTHERS[name]()
    _same_in_every_mode(model, inputs, ("real", "fake", "meta"))


def test_mixtral_grouped_mm() -> None:
    pytest.importorskip("transformers")
    model, inputs = zoo_models.mixtral()
    _same_in_every_mode(model, inputs, ("real", "fake", "meta"))


def test_lora_adds_its_low_rank_products() -> None:
    pytest.importorskip("peft")
    transformers = pytest.importorskip("transformers")
    model, inputs = zoo_models.lora_llama()
    lora = _same_in_every_mode(model, inputs, ("real", "fake", "meta"))
    base = flopwise.count(transformers.LlamaForCausalLM(transformers.LlamaConfig(**zoo_models.TEXT)), inputs)
    tokens, hidden, rank, kv = 16, 64, 4, 2 * 16  # kv: 2 key-value heads of 64 / 4 = 16 dims
    per_layer = tokens * (hidden * rank + rank * hidden) + tokens * (hidden * rank + rank * kv)  # q_proj, v_proj
    assert lora.macs - base.macs == 2 * per_layer  # 2 layers: 28,672
