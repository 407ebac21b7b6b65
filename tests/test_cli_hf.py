"""Transformers models from the command line by their real signature (issue 11): tiny configs, no download.

Encoder-decoders get decoder ids from --tokens, multimodal models every input they need (images, audio features,
image placeholder tokens), the config's dtype is honoured and --dtype overrides it.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest
from test_cli import SCRIPT

transformers = pytest.importorskip("transformers")
D, V = 16, 64  # hidden size and vocabulary of every tiny config below


def configs() -> dict[str, object]:
    t = transformers
    vision = {
        "hidden_size": D,
        "intermediate_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "image_size": 32,
        "patch_size": 8,
    }
    return {
        "t5": t.T5Config(vocab_size=V, d_model=D, d_kv=4, d_ff=32, num_layers=1, num_decoder_layers=1, num_heads=4),
        "bart": t.BartConfig(
            vocab_size=V,
            d_model=D,
            encoder_layers=1,
            decoder_layers=1,
            encoder_attention_heads=2,
            decoder_attention_heads=2,
            encoder_ffn_dim=32,
            decoder_ffn_dim=32,
            max_position_embeddings=64,
        ),
        "clip": t.CLIPConfig(
            text_config={
                "vocab_size": V,
                "hidden_size": D,
                "intermediate_size": 32,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "max_position_embeddings": 32,
            },
            vision_config=vision,
            projection_dim=8,
        ),
        "whisper": t.WhisperConfig(
            vocab_size=V,
            num_mel_bins=8,
            encoder_layers=1,
            decoder_layers=1,
            encoder_attention_heads=2,
            decoder_attention_heads=2,
            d_model=D,
            encoder_ffn_dim=32,
            decoder_ffn_dim=32,
            max_source_positions=16,
            max_target_positions=32,
            decoder_start_token_id=1,
            pad_token_id=0,
            bos_token_id=1,
            eos_token_id=2,
            suppress_tokens=[],
            begin_suppress_tokens=[],
        ),
        "llava": t.LlavaConfig(
            vision_config=t.CLIPVisionConfig(**vision),
            text_config=t.LlamaConfig(
                vocab_size=V,
                hidden_size=D,
                intermediate_size=32,
                num_hidden_layers=1,
                num_attention_heads=2,
                num_key_value_heads=2,
                max_position_embeddings=128,
            ),
            image_token_index=V - 1,
        ),
        "llava_next": t.LlavaNextConfig(  # needs image_sizes beside the image: the default image does not suit it
            vision_config=t.CLIPVisionConfig(**vision),
            image_token_index=V - 1,
            image_grid_pinpoints=[[32, 32]],
            text_config=t.LlamaConfig(
                vocab_size=V,
                hidden_size=D,
                intermediate_size=32,
                num_hidden_layers=1,
                num_attention_heads=2,
                num_key_value_heads=2,
                max_position_embeddings=512,
            ),
        ),
        "llama": t.LlamaConfig(
            vocab_size=V,
            hidden_size=D,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=1,
            max_position_embeddings=64,
            torch_dtype="bfloat16",
        ),  # as Llama-3-8B's config says
        "mixtral": t.MixtralConfig(
            vocab_size=V,
            hidden_size=D,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=1,
            num_local_experts=4,
            num_experts_per_tok=2,
            max_position_embeddings=64,
            torch_dtype="bfloat16",
        ),
    }


ARCHITECTURES = {
    "t5": "T5ForConditionalGeneration",
    "bart": "BartForConditionalGeneration",
    "clip": "CLIPModel",
    "whisper": "WhisperForConditionalGeneration",
    "llava": "LlavaForConditionalGeneration",
    "llava_next": "LlavaNextForConditionalGeneration",
    "llama": "LlamaForCausalLM",
    "mixtral": "MixtralForCausalLM",
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    for name, config in configs().items():
        config.architectures = [ARCHITECTURES[name]]
        config.save_pretrained(root / name)
    cases = {
        "t5": ["hf:t5", "--tokens", "1x8"],
        "bart": ["hf:bart", "--tokens", "1x8"],
        "bart_too_long": ["hf:bart", "--tokens", "1x65"],
        "clip": ["hf:clip", "--input", "pixel_values=2x3x32x32", "--tokens", "2x5"],
        "whisper": ["hf:whisper"],
        "llava": ["hf:llava", "--tokens", "1x8"],
        "llava_next": ["hf:llava_next", "--tokens", "1x8"],
        "llama": ["hf:llama", "--tokens", "1x8"],
        "llama_fp32": ["hf:llama", "--tokens", "1x8", "--dtype", "fp32"],
        "mixtral": ["hf:mixtral", "--tokens", "1x8"],
        "measure": ["hf:llama", "--tokens", "1x8", "--measure", "--peak-tflops", "1", "-q", "--format", "csv"],
    }

    def run(args: list[str]) -> subprocess.CompletedProcess[str]:
        extra = [] if "--format" in args else ["--format", "json"]
        return subprocess.run([SCRIPT, *args, *extra], capture_output=True, text=True, cwd=root, timeout=600)

    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(zip(cases, pool.map(run, cases.values())))


def counted(result: subprocess.CompletedProcess[str], code: int = 0) -> tuple[dict, dict]:
    assert result.returncode == code, result.stderr + result.stdout[-300:]
    assert "Traceback" not in result.stderr
    doc = json.loads(result.stdout)
    return doc, {m["name"]: m for m in doc["modules"]}


def test_encoder_decoders_get_decoder_ids_from_tokens(runs):
    for name in ("t5", "bart"):
        doc, modules = counted(runs[name])
        assert "decoder_input_ids=1×8 int64" in doc["inputs"]
        assert modules["lm_head"]["macs"] == 8 * D * V  # decoder tokens·d_model·vocab


def test_a_sequence_longer_than_the_positions_names_the_limit(runs):
    result = runs["bart_too_long"]
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "65 tokens is longer than the model's 64 positions (max_position_embeddings" in result.stderr


def test_clip_gets_images_by_name_and_text(runs):
    doc, modules = counted(runs["clip"])
    assert doc["inputs"] == "pixel_values=2×3×32×32 float32, input_ids=2×5 int64"
    patches = (32 // 8) ** 2
    assert modules["vision_model.embeddings.patch_embedding"]["macs"] == 2 * patches * 3 * 8 * 8 * D  # B·P·C·k·k·D
    assert modules["visual_projection"]["macs"] == 2 * D * 8  # B·hidden·projection (the pooled image)
    assert modules["text_projection"]["macs"] == 2 * D * 8


def test_whisper_gets_mel_features_from_the_config(runs):
    doc, modules = counted(runs["whisper"])
    frames = 2 * 16  # 2 · max_source_positions mel frames (Whisper's 30 s window, here tiny)
    assert doc["inputs"] == f"input_features=1×8×{frames} float32, decoder_input_ids=1×32 int64"
    assert modules["model.encoder.conv1"]["macs"] == frames * 3 * 8 * D  # frames·kernel·mel bins·d_model
    assert modules["proj_out"]["macs"] == 32 * D * V  # min(128, max_target_positions) decoder tokens·d·vocab


def test_llava_gets_an_image_and_its_placeholder_tokens(runs):
    doc, modules = counted(runs["llava"])  # complete: the placeholder check's aten._is_all_true is zero-cost
    assert doc["unsupported"] == {}
    # the placeholder count (an .item() on the input ids) is taken from the real inputs: no rebuild needed
    assert "were computed from the real inputs" in runs["llava"].stderr
    image_tokens = (32 // 8) ** 2  # one per patch; the "default" strategy drops the CLS token
    assert doc["inputs"] == f"pixel_values=1×3×32×32 float32, input_ids=1×{image_tokens + 8} int64"
    assert modules["model.multi_modal_projector.linear_1"]["macs"] == image_tokens * D * D
    assert modules["lm_head"]["macs"] == (image_tokens + 8) * D * V


def test_a_default_image_that_does_not_suit_the_model_counts_the_text_path_and_says_so(runs):
    doc, modules = counted(runs["llava_next"])  # LLaVA-NeXT reads image_sizes, which no default input gives
    assert doc["inputs"] == "input_ids=1×8 int64"  # the 8 text tokens alone, no image placeholders
    assert doc["warnings"][0].startswith("the default image input did not suit the model (")
    assert "counted its text path alone" in runs["llava_next"].stderr
    assert modules["lm_head"]["macs"] == 8 * D * V  # text tokens·d·vocab
    assert "model.vision_tower" not in modules or modules["model.vision_tower"]["macs"] == 0  # no image ran


def test_the_configs_dtype_is_honoured_and_dtype_overrides_it(runs):
    bf16, modules = counted(runs["llama"])
    fp32, modules32 = counted(runs["llama_fp32"])
    assert "in bfloat16 on the meta device" in runs["llama"].stderr
    assert modules["lm_head"]["macs"] == modules32["lm_head"]["macs"] == 8 * D * V
    head, head32 = modules["lm_head"], modules32["lm_head"]
    assert head["bytes_read"] == (8 * D + D * V) * 2  # activations and weight, 2 bytes per bfloat16 element
    assert head32["bytes_read"] == 2 * head["bytes_read"]  # --dtype fp32: 4 bytes per element


def test_mixtral_counts_its_experts(runs):
    doc, modules = counted(runs["mixtral"])
    assert modules["model.layers.0.mlp.experts"]["macs"] == 8 * 2 * 3 * D * 32  # tokens·top_k·3 matmuls·hidden·ffn


def test_measure_builds_hf_models_with_random_weights_quietly_in_csv(runs):
    result = runs["measure"]
    assert result.returncode == 0 and result.stderr == ""  # -q: no notices, no profiler lines from C++ either
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert rows[0]["module"] == "" and float(rows[0]["seconds"]) > 0 and float(rows[0]["share"]) == 1.0
    assert int(rows[0]["macs"]) > 0
