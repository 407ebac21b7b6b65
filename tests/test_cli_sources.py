"""More model sources on the command line (issue 16): `timm:NAME`, `hf:org/name` from the local Hugging Face cache,
`diffusers:config.json`. Every count is checked against a closed form or a count derived independently of flopwise.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import torch
from test_cli import SCRIPT
from test_real_models import bottleneck_resnet50_macs, vit_macs

from flopwise.cli.compare import expand_specs
from flopwise.cli.errors import UsageError
from flopwise.cli.load import load
from flopwise.cli.spec import InputFlags


def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SCRIPT, *args], capture_output=True, text=True, timeout=300, env=env, cwd=cwd)


def counted(*args: str, env: dict[str, str] | None = None) -> dict:
    done = run(*args, "--format", "json", env=env)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return json.loads(done.stdout)


# — timm —


def test_timm_resnet50_is_the_hand_count():
    pytest.importorskip("timm")
    doc = counted("timm:resnet50")
    assert doc["inputs"] == "1×3×224×224 float32"  # the input_size of its pretrained config
    assert doc["total"]["macs"] == bottleneck_resnet50_macs()  # 4,089,184,256: stem, 16 bottlenecks, fc
    assert doc["total"]["macs"] == 4_089_184_256
    assert doc["unsupported"] == {}


def test_timm_vit_tiny_with_batch_and_dtype():
    pytest.importorskip("timm")
    doc = counted("timm:vit_tiny_patch16_224", "--batch", "2", "--dtype", "bf16")
    assert doc["inputs"] == "2×3×224×224 bfloat16"
    # ViT-Ti/16: 196 patches + the class token, 12 layers of width 192 (QKV, proj, QKᵀ, AV, MLP 192→768→192),
    # the 1000-class head on the class token: vit_macs spells the closed form out
    assert doc["total"]["macs"] == vit_macs(2, 224, 16, 12, 192, 768, 1000)  # 2 × 1,253,683,200
    assert doc["unsupported"] == {}


def test_timm_input_size_comes_from_the_pretrained_config():
    pytest.importorskip("timm")
    assert load("timm:vit_base_patch16_384").inputs.shape == (1, 3, 384, 384)
    tagged = load("timm:vit_tiny_patch16_224.augreg_in21k")  # a tag picks the config: 21,843 classes, no weights
    assert tagged.model.num_classes == 21843


def test_timm_unknown_name_suggests_close_ones():
    pytest.importorskip("timm")
    done = run("timm:resnet5O")  # a letter O for a zero
    assert done.returncode == 2, done.stderr
    assert "timm:resnet5O: timm" in done.stderr
    assert "has no model named 'resnet5O'; did you mean resnet50" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_bare_timm_name_suggests_the_prefix():
    pytest.importorskip("timm")
    with pytest.raises(UsageError, match="unknown model spec 'resnet50d': .*; did you mean timm:resnet50d\\?$"):
        load("resnet50d")  # not a torchvision name: timm's


def test_timm_globs_in_compare():
    pytest.importorskip("timm")
    specs = expand_specs(["timm:resnet50*", "timm:resnet50"])
    assert specs[0] == "timm:resnet50" and "timm:resnet50d" in specs
    assert len(specs) == len(set(specs))  # resnet50, matched twice, once
    assert all(s.startswith("timm:resnet50") for s in specs)
    with pytest.raises(UsageError, match="matches no timm model"):
        expand_specs(["timm:no_such_net*"])


# — hf: from the local cache —


def tiny_gpt2_cache(root: Path, repo: str = "tiny/gpt2") -> Path:
    """The layout from_pretrained leaves: models--org--name/refs/main → snapshots/<revision>/config.json."""
    transformers = pytest.importorskip("transformers")
    folder = root / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text("0123abcd")
    config = transformers.GPT2Config(n_layer=2, n_embd=64, n_head=2, vocab_size=100, n_positions=32)
    config.architectures = ["GPT2LMHeadModel"]
    config.save_pretrained(folder / "snapshots" / "0123abcd")
    return root


def test_hf_name_from_the_local_cache(tmp_path, monkeypatch):
    cache = tiny_gpt2_cache(tmp_path / "hub")
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    doc = counted("hf:tiny/gpt2", env=env)
    assert doc["inputs"] == "input_ids=1×32 int64"  # min(128 tokens, n_positions)
    layers, s, d, vocab = 2, 32, 64, 100
    # QKV, out proj, MLP d→4d→d per token; QKᵀ and AV over all S² pairs (attention="dense", the default convention)
    per_layer = s * 3 * d * d + s * d * d + s * 8 * d * d + 2 * s * s * d
    assert doc["total"]["macs"] == layers * per_layer + s * d * vocab  # + the LM head: 3,612,672
    # HF_HOME/hub is the cache when HF_HUB_CACHE is unset, read when the spec is loaded
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    assert type(load("hf:tiny/gpt2").model).__name__ == "GPT2LMHeadModel"


def test_hf_name_absent_from_the_cache(tmp_path):
    pytest.importorskip("transformers")
    env = {**os.environ, "HF_HOME": str(tmp_path / "home")}
    for variable in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        env.pop(variable, None)
    done = run("hf:someorg/missing-model", env=env, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert f"the Hugging Face cache at '{tmp_path / 'home' / 'hub'}' holds no config.json" in done.stderr
    assert "models--someorg--missing-model" in done.stderr and "hf download someorg/missing-model" in done.stderr
    assert "Traceback" not in done.stderr


def test_hf_name_no_repository_can_have(tmp_path):
    pytest.importorskip("transformers")
    done = run("hf:.0", cwd=tmp_path)  # found by the fuzz test: huggingface_hub refuses the name itself
    assert done.returncode == 2, done.stderr
    assert "'.0' is not a local file or folder, nor a Hugging Face model name" in done.stderr
    assert "Traceback" not in done.stderr


# — diffusers: from a config —

UNET = {
    "_class_name": "UNet2DConditionModel",
    "sample_size": 8,
    "in_channels": 4,
    "out_channels": 4,
    "layers_per_block": 1,
    "block_out_channels": [32, 64],
    "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
    "cross_attention_dim": 32,
    "attention_head_dim": 8,
    "norm_num_groups": 8,
}
VAE = {
    "_class_name": "AutoencoderKL",
    "sample_size": 16,
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 4,
    "block_out_channels": [16, 32],
    "down_block_types": ["DownEncoderBlock2D"] * 2,
    "up_block_types": ["UpDecoderBlock2D"] * 2,
    "norm_num_groups": 8,
}
DIT = {
    "_class_name": "DiTTransformer2DModel",
    "sample_size": 8,
    "in_channels": 4,
    "out_channels": 4,
    "patch_size": 2,
    "num_layers": 2,
    "num_attention_heads": 2,
    "attention_head_dim": 16,
    "num_embeds_ada_norm": 10,
}
# the CLI's defaults for them, made real: sample or hidden_states 1×C×S×S, one timestep, 77 text tokens
REAL_INPUTS = {
    "UNet2DConditionModel": lambda: {
        "sample": torch.rand(1, 4, 8, 8),
        "timestep": torch.zeros(1, dtype=torch.int64),
        "encoder_hidden_states": torch.rand(1, 77, 32),
    },
    "AutoencoderKL": lambda: {"sample": torch.rand(1, 3, 16, 16)},
    "DiTTransformer2DModel": lambda: {
        "hidden_states": torch.rand(1, 4, 8, 8),
        "timestep": torch.zeros(1, dtype=torch.int64),
        "class_labels": torch.zeros(1, dtype=torch.int64),
    },
}


def hooked_macs(model: torch.nn.Module, inputs: dict) -> int:
    """MACs from the output shapes a real forward records, by the textbook formulas, with no flopwise code.

    Conv2d: every output element is a K_h·K_w·C_in/groups dot product (= H_out·W_out·K_h·K_w·C_in/groups·C_out);
    Linear: every output element is an in_features dot product (= rows·in·out); attention: QKᵀ is B·L_q·L_k·d_q
    and AV is B·L_q·L_k·d_v summed over heads, with L_q, L_k, d_q and d_v read off to_q, to_k and to_v's outputs.
    These three are the only contractions in the three models; independent of flopwise's formulas because only
    module hooks and torch's own shapes are used.
    """
    from diffusers.models.attention_processor import Attention

    total = 0
    seen: dict[str, torch.Size] = {}

    def conv(module, _args, out):
        nonlocal total
        total += out.numel() * module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups

    def linear(module, _args, out):
        nonlocal total
        total += out.numel() * module.in_features

    def projection(name):
        def keep(_module, _args, out):
            seen[name] = out.shape

        return keep

    def attention(_module, _args, _out):
        nonlocal total
        (batch, queries, d_q), (_, keys, _), (_, _, d_v) = seen["q"], seen["k"], seen["v"]
        total += batch * queries * keys * d_q + batch * queries * keys * d_v  # QKᵀ + AV

    handles = []
    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d):
            handles.append(module.register_forward_hook(conv))
        elif isinstance(module, torch.nn.Linear):
            handles.append(module.register_forward_hook(linear))
        elif isinstance(module, Attention):
            for name in "qkv":
                handles.append(getattr(module, f"to_{name}").register_forward_hook(projection(name)))
            handles.append(module.register_forward_hook(attention))
    with torch.no_grad():
        model(**inputs)
    for handle in handles:
        handle.remove()
    return total


@pytest.mark.parametrize("config", [UNET, VAE, DIT], ids=lambda c: c["_class_name"])
def test_diffusers_config_counts_as_its_modules_say(tmp_path, config):
    diffusers = pytest.importorskip("diffusers")
    (tmp_path / "config.json").write_text(json.dumps(config))
    doc = counted(f"diffusers:{tmp_path / 'config.json'}")
    assert doc["unsupported"] == {}
    name = config["_class_name"]
    torch.manual_seed(0)
    model = getattr(diffusers, name).from_config(config).eval()
    assert doc["total"]["params"] == sum(p.numel() for p in model.parameters())
    assert doc["total"]["macs"] == hooked_macs(model, REAL_INPUTS[name]())


def test_diffusers_inputs_by_name_and_batch(tmp_path):
    pytest.importorskip("diffusers")
    (tmp_path / "config.json").write_text(json.dumps(UNET))
    loaded = load(f"diffusers:{tmp_path}", InputFlags(inputs=("encoder_hidden_states=1x16x32",), batch=2))
    assert all(p.is_meta for p in loaded.model.parameters())  # built on the meta device: no weights
    shapes = {name: value.shape for name, value in loaded.inputs.items()}
    assert shapes == {"sample": (2, 4, 8, 8), "timestep": (2,), "encoder_hidden_states": (2, 16, 32)}
    assert loaded.rebuild is not None and not any(p.is_meta for p in loaded.rebuild().parameters())
    with pytest.raises(UsageError, match="UNet2DConditionModel.forward takes no 'pixel_values'; it takes sample"):
        load(f"diffusers:{tmp_path}", InputFlags(inputs=("pixel_values=1x3x8x8",)))
    with pytest.raises(UsageError, match="take no token ids; .* --input encoder_hidden_states=1x77xDIM"):
        load(f"diffusers:{tmp_path}", InputFlags(tokens="1x77"))


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "no config.json at .*model.save_config"),
        ("{not json", "is not valid JSON"),
        (json.dumps({"sample_size": 8}), 'has no "_class_name" key'),
        (
            json.dumps({"_class_name": "UNet2DConditionModle"}),
            "has no class of that name: 'UNet2DConditionModle'; did you mean UNet2DConditionModel",
        ),
        (json.dumps({"_class_name": "DDPMScheduler"}), "has a pipeline or scheduler, not a model: 'DDPMScheduler'"),
        (json.dumps({"_class_name": "UNet1DModel"}), "no default inputs known for UNet1DModel; give them by name"),
    ],
)
def test_diffusers_mistakes(tmp_path, content, message):
    pytest.importorskip("diffusers")
    if content is not None:
        (tmp_path / "config.json").write_text(content)
    with pytest.raises(UsageError, match=message):
        load(f"diffusers:{tmp_path}")


def test_diffusers_sdxl_text_time_conditioning(tmp_path):
    diffusers = pytest.importorskip("diffusers")
    pooled, time_dim = 24, 8
    sdxl = {
        **UNET,
        "addition_embed_type": "text_time",
        "addition_time_embed_dim": time_dim,
        "projection_class_embeddings_input_dim": pooled + 6 * time_dim,
    }  # pooled text + 6 embedded size numbers
    (tmp_path / "config.json").write_text(json.dumps(sdxl))
    done = run(f"diffusers:{tmp_path}", "--format", "json", "--quiet")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert "added_cond_kwargs" in doc["inputs"] and doc["unsupported"] == {}
    base = hooked_macs(diffusers.UNet2DConditionModel.from_config(UNET).eval(), REAL_INPUTS["UNet2DConditionModel"]())
    embed = 4 * 32  # the time embedding's width: 4 × block_out_channels[0]
    assert doc["total"]["macs"] == base + (pooled + 6 * time_dim) * embed + embed * embed  # + add_embedding's 2 Linears
    plain = load(f"diffusers:{tmp_path}").inputs["added_cond_kwargs"]
    assert {name: value.shape for name, value in plain.items()} == {"text_embeds": (1, pooled), "time_ids": (1, 6)}


def test_help_lists_the_sources():
    done = run("--help")
    assert done.returncode == 0
    for form in ("timm:NAME", "hf:org/name (local cache)", "diffusers:path/to/config.json", "flopwise timm:"):
        assert form in done.stdout, form
