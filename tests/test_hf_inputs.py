"""`hf:config.json` default inputs for models beyond token ids, and configs AutoModel does not map (the zoo sweep
found them: vision and audio models fed token ids, Qwen2-VL-style image grids, multimodal models' parts)."""

from __future__ import annotations

import tempfile
import warnings

import pytest
import torch

from flopwise.cli.common import count_loaded
from flopwise.cli.load import load
from flopwise.report.report import Report

transformers = pytest.importorskip("transformers")


def counted(config: object) -> tuple[object, Report]:
    folder = tempfile.mkdtemp(prefix="hf-inputs-")
    config.save_pretrained(folder)  # type: ignore[attr-defined]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = load(f"hf:{folder}")
        return loaded, count_loaded(loaded, "meta", "default", lambda note: None)


def shapes(loaded: object) -> dict[str, tuple[int, ...]]:
    return {name: tuple(value.shape) for name, value in loaded.inputs.items()}  # type: ignore[attr-defined]


def test_a_vision_config_without_an_image_size_gets_a_224_image() -> None:
    loaded, r = counted(transformers.ResNetConfig(embedding_size=8, hidden_sizes=[8], depths=[1], layer_type="basic"))
    assert shapes(loaded) == {"pixel_values": (1, 3, 224, 224)}
    stem = r["embedder.embedder.convolution"]
    assert stem.macs == 112 * 112 * 7 * 7 * 3 * 8  # 7×7 stride-2 conv, 3→8 channels, on a 112×112 output
    assert r.unsupported == {}


def test_an_audio_model_gets_one_second_of_waveform() -> None:
    config = transformers.HubertConfig(
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        conv_dim=(8, 8),
        conv_kernel=(10, 3),
        conv_stride=(5, 2),
        num_conv_pos_embeddings=4,
        num_conv_pos_embedding_groups=2,
    )
    loaded, r = counted(config)
    assert shapes(loaded) == {"input_values": (1, 16_000)}  # no sampling rate in the config: 16 kHz
    frames = (16_000 - 10) // 5 + 1  # 3,199 after the first conv (kernel 10, stride 5)
    assert r["feature_extractor.conv_layers.0.conv"].macs == frames * 10 * 1 * 8  # kernel · C_in · C_out per frame
    assert r.unsupported == {}


def test_a_qwen2_vl_image_comes_as_patches_with_its_grid_and_placeholders() -> None:
    P, T, M, E = 8, 2, 2, 16  # patch, temporal patch, spatial merge, vision width
    config = transformers.Qwen2VLConfig(
        text_config={
            "vocab_size": 100,
            "hidden_size": 32,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
        },
        vision_config={
            "depth": 1,
            "embed_dim": E,
            "hidden_size": 32,
            "num_heads": 2,
            "patch_size": P,
            "temporal_patch_size": T,
            "spatial_merge_size": M,
        },
        image_token_id=99,
        video_token_id=98,
        vision_start_token_id=97,
    )
    loaded, r = counted(config)
    side = 224 // P  # 28 patches a side (no image size in the config: 224 pixels)
    tokens = side * side // M**2  # 196 image tokens: 2×2 neighbouring patches merge into one
    assert shapes(loaded) == {
        "pixel_values": (side * side, 3 * T * P * P),
        "image_grid_thw": (1, 3),
        "input_ids": (1, tokens + 128),
        "mm_token_type_ids": (1, tokens + 128),
    }
    assert loaded.inputs["image_grid_thw"].tolist() == [[1, side, side]]  # type: ignore[attr-defined]
    assert r["visual.patch_embed.proj"].macs == side * side * E * 3 * T * P * P  # a Conv3d per patch
    assert r.unsupported == {}


def test_a_config_automodel_does_not_map_builds_the_class_its_code_defines() -> None:
    config = transformers.OwlViTTextConfig(
        vocab_size=100,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=16,
    )
    assert type(config) not in transformers.MODEL_MAPPING
    loaded, r = counted(config)
    assert type(loaded.model).__name__ == "OwlViTTextModel"  # type: ignore[attr-defined]
    assert shapes(loaded) == {"input_ids": (1, 16)}  # as many tokens as the 16 positions allow
    assert r["text_model.encoder.layers.0.mlp.fc1"].macs == 16 * 16 * 32  # tokens · hidden · intermediate
    assert r.unsupported == {}


def test_small_integer_inputs_are_real_in_shape_only_modes() -> None:
    from flopwise.cli.inputs import Shaped

    ids = Shaped((1, 8), torch.int64, prefix=(7, 3)).make(real=False)
    assert not ids.is_meta and ids.tolist() == [[7, 7, 7, 0, 0, 0, 0, 0]]  # the model may read them
    assert Shaped((1, 3, 8, 8)).make(real=False).is_meta  # float inputs never allocate


def test_a_conformer_takes_frames_then_mel_bins_and_whisper_the_reverse() -> None:
    whisper = transformers.WhisperConfig(
        vocab_size=64,
        num_mel_bins=8,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        d_model=16,
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
    )
    loaded, r = counted(whisper)
    assert shapes(loaded)["input_features"] == (1, 8, 32)  # its first conv reads the 8 bins as channels
    assert r["encoder.conv1"].macs == 32 * 3 * 8 * 16  # frames · kernel · bins · width
    parakeet = transformers.ParakeetEncoderConfig(
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        num_mel_bins=8,
        subsampling_conv_channels=4,
    )
    loaded, r = counted(parakeet)
    assert shapes(loaded)["input_features"] == (1, 3000, 8)  # 3,000 frames (no source positions said), 8 bins
    assert r.unsupported == {}


def test_the_random_weights_of_a_rebuild_are_seed_0_every_time() -> None:
    config = transformers.LlamaConfig(
        vocab_size=64,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=32,
    )
    loaded, _ = counted(config)
    state = torch.random.get_rng_state()
    first, second = loaded.rebuild(), loaded.rebuild()  # type: ignore[attr-defined]
    assert torch.equal(first.layers[0].mlp.up_proj.weight, second.layers[0].mlp.up_proj.weight)
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's random state is untouched


def test_a_muse_spark_image_comes_as_patches_of_its_temporal_size() -> None:
    P, T, M, E = 4, 2, 2, 16  # patch, temporal patch (`patch_temporal`), spatial merge (`merge_size`), width
    config = transformers.MuseSparkVisionConfig(
        patch_size=P,
        patch_temporal=T,
        merge_size=M,
        hidden_size=E,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        layer_types=["full_attention"],
        pos_emb_height=8,
        pos_emb_width=8,
    )
    loaded, r = counted(config)
    side = 224 // P  # 56 patches a side (no image size in the config: 224 pixels)
    assert shapes(loaded) == {"pixel_values": (side * side, 3 * T * P * P), "grid_thw": (1, 3)}
    assert r["patch_embedder.patch_embedding"].macs == side * side * 3 * T * P * P * E  # a Linear per patch
    assert r.unsupported == {}
