"""Models from where users are, built with no download: timm families, diffusers, peft, MoE, CLIP.

Each builder returns (model in eval mode, example inputs as count() takes them). Shared by `bench/zoo.py`
(the full sweep, `make zoo`) and `tests/test_zoo_frontier.py` (a sample in `make test`).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

Built = tuple[nn.Module, Any]
SIZE_WORDS = ("atto", "femto", "pico", "nano", "micro", "tiny", "xxs", "xs", "small", "mini", "lite", "s")


def timm_families() -> dict[str, str]:
    """{timm architecture module: the smallest-sounding model of it}, one model per family."""
    import timm

    chosen = {}
    for family in timm.list_modules():
        names = timm.list_models(module=family)
        if names:
            chosen[family] = min(names, key=_size_rank)
    return chosen


def _size_rank(name: str) -> tuple[int, int, str]:
    words = re.split(r"[_.\-]", name)
    rank = min((SIZE_WORDS.index(w) for w in words if w in SIZE_WORDS), default=len(SIZE_WORDS))
    return rank, len(name), name


def timm_model(name: str) -> Built:
    import timm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = timm.create_model(name, pretrained=False).eval()
    channels, height, width = model.pretrained_cfg.get("input_size", (3, 224, 224))
    torch.manual_seed(0)
    return model, torch.randn(1, channels, height, width)


def unet() -> Built:
    from diffusers import UNet2DConditionModel

    model = UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=8,
    )
    return model.eval(), (torch.randn(1, 4, 8, 8), torch.tensor([10]), torch.randn(1, 7, 32))


def autoencoder_kl() -> Built:
    from diffusers import AutoencoderKL

    model = AutoencoderKL(
        block_out_channels=(32, 64),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=32,
    )
    return model.eval(), torch.randn(1, 3, 32, 32)


def dit() -> Built:
    from diffusers import DiTTransformer2DModel

    model = DiTTransformer2DModel(
        num_attention_heads=2,
        attention_head_dim=16,
        in_channels=4,
        out_channels=4,
        num_layers=2,
        sample_size=8,
        patch_size=2,
        num_embeds_ada_norm=10,
    )
    inputs = {
        "hidden_states": torch.randn(1, 4, 8, 8),
        "timestep": torch.tensor([3]),
        "class_labels": torch.tensor([1]),
    }
    return model.eval(), inputs


TEXT = dict(
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    intermediate_size=128,
    vocab_size=100,
)


def lora_llama() -> Built:
    import transformers
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    base = transformers.LlamaForCausalLM(transformers.LlamaConfig(**TEXT))
    model = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], lora_dropout=0.0))
    return model.eval(), {"input_ids": torch.randint(0, 100, (1, 16))}


def mixtral(experts: str = "grouped_mm") -> Built:
    import transformers

    config = transformers.MixtralConfig(**TEXT, num_local_experts=4, num_experts_per_tok=2)
    config._experts_implementation = experts
    torch.manual_seed(0)
    return transformers.MixtralForCausalLM(config).eval(), {"input_ids": torch.randint(0, 100, (1, 16))}


def qwen2_moe(experts: str = "grouped_mm") -> Built:
    import transformers

    config = transformers.Qwen2MoeConfig(
        **TEXT, num_experts=4, num_experts_per_tok=2, moe_intermediate_size=32, shared_expert_intermediate_size=64
    )
    config._experts_implementation = experts
    torch.manual_seed(0)
    return transformers.Qwen2MoeForCausalLM(config).eval(), {"input_ids": torch.randint(0, 100, (1, 16))}


def clip() -> Built:
    import transformers

    common = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
    config = transformers.CLIPConfig(
        text_config=dict(**common, vocab_size=100, max_position_embeddings=16),
        vision_config=dict(**common, image_size=32, patch_size=8),
        projection_dim=16,
    )
    torch.manual_seed(0)
    inputs = {"input_ids": torch.randint(0, 100, (2, 16)), "pixel_values": torch.randn(2, 3, 32, 32)}
    return transformers.CLIPModel(config).eval(), inputs


OTHERS: dict[str, Callable[[], Built]] = {
    "diffusers UNet2DConditionModel": unet,
    "diffusers AutoencoderKL": autoencoder_kl,
    "diffusers DiTTransformer2DModel": dit,
    "peft LoRA Llama": lora_llama,
    "transformers Mixtral (grouped_mm experts)": mixtral,
    "transformers Mixtral (eager experts)": lambda: mixtral("eager"),
    "transformers Qwen2-MoE (grouped_mm experts)": qwen2_moe,
    "transformers Qwen2-MoE (eager experts)": lambda: qwen2_moe("eager"),
    "transformers CLIP": clip,
}
