"""Real models against MAC counts derived by hand, in closed form, from their architecture."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

import flopwise


def resnext50_32x4d_macs(image: int = 224) -> int:
    return bottleneck_resnet50_macs(groups=32, width_per_group=4, image=image)


def bottleneck_resnet50_macs(groups: int = 1, width_per_group: int = 64, image: int = 224) -> int:
    """Stem, 16 bottlenecks (1×1 → grouped 3×3 → 1×1, plus a 1×1 projection where the shape changes), fc.

    groups=1, width_per_group=64 is ResNet-50 (the 3×3 as wide as the 1×1 before it); 32, 4 is ResNeXt-50 32×4d.
    """
    side = image // 2  # the 7×7 stem has stride 2
    macs = side * side * 7 * 7 * 3 * 64
    side //= 2  # max pool
    channels = 64
    for planes, blocks, stride in [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)]:
        width = planes * width_per_group // 64 * groups
        out = planes * 4
        for block in range(blocks):
            s = stride if block == 0 else 1
            out_side = side // s
            macs += side * side * channels * width  # conv1 1×1 at the input resolution
            macs += out_side * out_side * 3 * 3 * (width // groups) * width  # conv2 grouped 3×3, strided
            macs += out_side * out_side * width * out  # conv3 1×1
            if block == 0:
                macs += out_side * out_side * channels * out  # downsample 1×1, strided
            channels, side = out, out_side
    return macs + 2048 * 1000  # fc


def test_resnext_grouped_convolutions() -> None:
    model = torchvision.models.resnext50_32x4d()
    report = flopwise.count(model, torch.randn(1, 3, 224, 224), mode="fake")
    assert report.macs == resnext50_32x4d_macs()
    assert report.params == sum(p.numel() for p in model.parameters())
    assert report["layer1.0.conv2"].macs == 56 * 56 * 3 * 3 * (128 // 32) * 128  # H·W·K·K·(Cin/groups)·Cout


def test_resnext_batch_scales_linearly() -> None:
    model = torchvision.models.resnext50_32x4d()
    report = flopwise.count(model, torch.randn(4, 3, 224, 224), mode="fake")
    assert report.macs == 4 * resnext50_32x4d_macs()


def vit_macs(batch: int, image: int, patch: int, layers: int, dim: int, mlp: int, classes: int) -> int:
    tokens = (image // patch) ** 2 + 1  # patches + class token
    patches = tokens - 1
    embed = patches * patch * patch * 3 * dim  # the patch convolution
    per_layer = 4 * tokens * dim * dim + 2 * tokens * tokens * dim + 2 * tokens * dim * mlp
    return batch * (embed + layers * per_layer + dim * classes)  # the head sees the class token only


@pytest.mark.parametrize("train", [False, True])
def test_vision_transformer(train: bool) -> None:
    model = torchvision.models.VisionTransformer(
        image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=64, mlp_dim=128, num_classes=10
    ).train(train)
    report = flopwise.count(model, torch.randn(2, 3, 32, 32))
    assert report.macs == vit_macs(2, 32, 8, 2, 64, 128, 10)
    fast_path = "aten._native_multi_head_attention" in report.operator_calls()
    assert fast_path == (not train)  # eval mode takes PyTorch's fused MHA kernel, and it is counted


def test_vit_b_16_on_meta() -> None:
    report = flopwise.count(torchvision.models.vit_b_16(), torch.randn(1, 3, 224, 224), mode="meta")
    assert report.macs == vit_macs(1, 224, 16, 12, 768, 3072, 1000)


def test_llama_decoder_with_sdpa_and_grouped_query_attention() -> None:
    from transformers import LlamaConfig, LlamaModel

    b, s, d, inter, layers, heads, kv_heads = 2, 12, 64, 96, 2, 4, 2
    config = LlamaConfig(
        vocab_size=128,
        hidden_size=d,
        intermediate_size=inter,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=64,
    )
    config._attn_implementation = "sdpa"
    model = LlamaModel(config).eval()
    report = flopwise.count(model, {"input_ids": torch.randint(0, 128, (b, s))})
    head_dim = d // heads
    per_layer = (
        b * s * d * d  # q_proj
        + 2 * b * s * d * kv_heads * head_dim  # k_proj, v_proj: only kv_heads heads
        + 2 * b * heads * s * s * head_dim  # QKᵀ and AV for every query head
        + b * s * d * d  # o_proj
        + 3 * b * s * d * inter  # gate, up and down projections
    )
    # the rotary table is an outer product written as a broadcast multiply: FLOPs, no MACs
    assert report.macs == layers * per_layer
    assert "aten._scaled_dot_product_flash_attention_for_cpu" in report.operator_calls()
    assert report.unsupported == {}


def test_bert_encoder() -> None:
    from transformers import BertConfig, BertModel

    b, s, d, inter, layers = 2, 10, 32, 64, 2
    config = BertConfig(
        vocab_size=100,
        hidden_size=d,
        num_hidden_layers=layers,
        num_attention_heads=4,
        intermediate_size=inter,
        max_position_embeddings=64,
    )
    model = BertModel(config).eval()
    report = flopwise.count(model, {"input_ids": torch.randint(0, 100, (b, s))})
    per_layer = 4 * b * s * d * d + 2 * b * s * s * d + 2 * b * s * d * inter
    assert report.macs == layers * per_layer + b * d * d  # + pooler on the first token
    assert report.params == sum(p.numel() for p in model.parameters())


def test_lstm_and_gru_language_model() -> None:
    class Tagger(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(50, 16)
            self.lstm = nn.LSTM(16, 32, batch_first=True)
            self.gru = nn.GRU(32, 24, batch_first=True)
            self.out = nn.Linear(24, 5)

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            return self.out(self.gru(self.lstm(self.embed(ids))[0])[0])

    b, t = 3, 7
    report = flopwise.count(Tagger(), torch.randint(0, 50, (b, t)))
    assert report["lstm"].macs == b * t * 4 * 32 * (16 + 32)  # T·B·4H·(I+H)
    assert report["gru"].macs == b * t * 3 * 24 * (32 + 24)  # T·B·3H·(I+H)
    assert report["out"].macs == b * t * 24 * 5
    assert report["embed"].macs == 0


LLAMA_70B_COUNT = """
import re, torch, flopwise
from transformers import LlamaConfig, LlamaForCausalLM
config = LlamaConfig(vocab_size=128256, hidden_size=8192, intermediate_size=28672, num_hidden_layers=80,
                     num_attention_heads=64, num_key_value_heads=8, max_position_embeddings=8192)
config._attn_implementation = "sdpa"
with torch.device("meta"):
    model = LlamaForCausalLM(config)
report = flopwise.count(model, {"input_ids": torch.zeros(1, 4096, dtype=torch.long, device="meta")})
# VmHWM is this process's own peak resident set (ru_maxrss would inherit the parent's peak across exec)
peak_kib = int(re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1))
print(report.macs, report.params, peak_kib // 1024)
"""


def test_llama_70b_on_the_meta_device_counts_without_memory() -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", LLAMA_70B_COUNT], capture_output=True, text=True, check=True)
    macs, params, peak_mib = (int(v) for v in done.stdout.split())
    s, d, inter, layers, heads, kv_heads, vocab = 4096, 8192, 28672, 80, 64, 8, 128256
    head_dim = d // heads
    per_layer = (
        2 * s * d * d  # q_proj, o_proj
        + 2 * s * d * kv_heads * head_dim  # k_proj, v_proj
        + 2 * heads * s * s * head_dim  # QKᵀ, AV
        + 3 * s * d * inter  # SwiGLU MLP
    )
    assert macs == layers * per_layer + s * d * vocab  # + lm_head
    assert params == 70_553_706_496
    assert peak_mib < 1024  # the whole process, interpreter and libraries included
