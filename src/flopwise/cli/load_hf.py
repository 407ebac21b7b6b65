"""`hf:config.json`: a transformers model built from a local config, on the meta device (nothing downloaded).

`hf:org/name` reads the config.json of a model already in the local Hugging Face cache (HF_HUB_CACHE, else
HF_HOME/hub, else ~/.cache/huggingface/hub: what `from_pretrained` fills); the network is never used.

Inputs follow the model's real signature: token ids from `--tokens` (and decoder ids for encoder-decoders), images
and audio features at the sizes the config gives (224×224 images and one second of audio where it gives none;
Qwen2-VL-style models get an image as patches with its grid and placeholder tokens), keyword inputs by name
(`--input pixel_values=1x3x224x224`). A config AutoModel does not map (a multimodal model's text or vision part)
builds the model class its code defines for it.
The config's dtype is honoured and `--dtype` overrides it.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import ModelError, UsageError, not_a_file
from .hf_cache import hub_cache, local_or_cached
from .inputs import Shaped, parse_inputs, parse_tokens, token_ids
from .spec import InputFlags, Loaded, Spec

DEFAULT_TOKENS = 128
DEFAULT_IMAGE = 224  # pixels a side, when the config names no image size
DEFAULT_RATE = 16_000  # samples of one second of audio, when the config names no sampling rate


def huggingface(parsed: Spec, flags: InputFlags) -> Loaded:
    spec = parsed.text
    path = local_or_cached(spec, parsed.target)
    transformers, config, cls, said = _config(spec, path)
    dtype = flags.dtype or _config_dtype(config)

    def build(device: str) -> nn.Module:
        with torch.device(device):  # meta: parameters have shapes only
            if cls is not None:
                return cls._from_config(config, dtype=dtype).eval()  # type: ignore[no-any-return]
            return transformers.AutoModel.from_config(config, dtype=dtype).eval()  # type: ignore[no-any-return]

    try:
        model = build("meta")
    except Exception as error:  # the config describes a model that cannot be built: the user's input
        first = str(error).strip().splitlines()[0] if str(error).strip() else "(no message)"
        raise ModelError(f"{spec}: building the model raised {type(error).__name__}: {first}") from error
    where = f"{type(model).__name__} in {str(dtype).removeprefix('torch.')}"
    notes = [*said, f"{spec}: built {where} on the meta device (no weights), counted in meta mode"]
    if path.is_relative_to(hub_cache()):
        notes.insert(0, f"{spec}: config from the local Hugging Face cache, {path}")
    inputs = hf_inputs(spec, model, config, flags, dtype)
    return Loaded(spec, model, inputs, notes, rebuild=_on_cpu(build), text_only=_text_only(inputs, flags))


_IMAGE_INPUTS = {"pixel_values", "image_grid_thw", "grid_thw", "mm_token_type_ids"}  # what hf_inputs adds for images


def _text_only(inputs: Any, flags: InputFlags) -> dict[str, Shaped] | None:
    """A default image-and-text input without its image (the text tokens alone, decoder ids kept; None for inputs
    the user named): what counts when the image flopwise makes does not suit the model (a family's own token count
    or image layout)."""
    if flags.inputs or not isinstance(inputs, dict) or "pixel_values" not in inputs or "input_ids" not in inputs:
        return None
    ids = inputs["input_ids"]
    image = ids.prefix[1] if ids.prefix else 0
    text = {name: value for name, value in inputs.items() if name not in _IMAGE_INPUTS}  # decoder ids stay
    return {**text, "input_ids": Shaped((ids.shape[0], ids.shape[1] - image), torch.int64)}


def _on_cpu(build: Callable[[str], nn.Module]) -> Callable[[], nn.Module]:
    """Random weights, seed 0 (the same weights, so the same data-dependent count, every run): for a count that
    needs real data, and for --measure. The caller's random state is left as it was."""

    def rebuild() -> nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return build("cpu")

    return rebuild


def _config(spec: str, path: Path) -> tuple[Any, Any, Any, list[str]]:
    """(the transformers module, the config, the architecture's class or None, notes)."""
    if path.is_dir():
        path = path / "config.json"
    if path.exists() and not path.is_file():
        raise UsageError(f"{spec}: {str(path)!r} {not_a_file(path)}")
    if not path.is_file():
        raise UsageError(
            f"{spec}: no config.json at {str(path)!r}; hf: takes a local transformers config.json or a folder "
            "holding one (nothing is downloaded: save one with config.save_pretrained(folder))"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UsageError(f"{spec}: {path} is not valid JSON ({error})") from None
    if not isinstance(data, dict) or not isinstance(data.get("model_type"), str):
        raise UsageError(f'{spec}: {path} has no "model_type" key; is it a transformers config.json?')
    try:
        import transformers
    except ImportError:
        raise UsageError(f"{spec}: hf: specs need the transformers package (pip install transformers)") from None
    # config warnings (e.g. token ids outside a small vocabulary) are not the user's question here
    transformers.logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    model_type = data.pop("model_type")
    known = list(transformers.CONFIG_MAPPING.keys())
    if model_type not in known:
        close = difflib.get_close_matches(model_type, known, n=5, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UsageError(f"{spec}: transformers {transformers.__version__} has no model_type {model_type!r}{hint}")
    try:
        config = transformers.AutoConfig.for_model(model_type, **data)
    except Exception as error:
        raise UsageError(f"{spec}: the config does not load ({type(error).__name__}: {error})") from None
    cls, notes = _architecture(spec, transformers, data.get("architectures"), model_type)
    return transformers, config, cls or _sub_model(transformers, config), notes


def _architecture(spec: str, transformers: Any, architectures: Any, model_type: str) -> tuple[Any, list[str]]:
    """(the model class the config's "architectures" names, or None to let AutoModel choose; notes). A name that is
    no transformers model class (`os.system`, `AutoConfig`) is refused; one this version lacks is said, not hidden."""
    if not architectures:
        return None, []
    name = architectures[0] if isinstance(architectures, list) else architectures
    value = getattr(transformers, name, None) if isinstance(name, str) and name.isidentifier() else None
    if isinstance(value, type) and issubclass(value, transformers.PreTrainedModel):
        return value, []
    if value is None and isinstance(name, str) and name.isidentifier():
        return None, [
            f"{spec}: transformers {transformers.__version__} has no class {name!r} (the config's "
            f"architectures); built the model AutoModel maps model_type {model_type!r} to"
        ]
    classes = [n for n in dir(transformers) if n.endswith(("Model", "LMHeadModel")) or "For" in n]
    close = difflib.get_close_matches(str(name), classes, n=3, cutoff=0.6)
    hint = f" (did you mean {', '.join(close)}?)" if close else " such as LlamaForCausalLM"
    raise UsageError(
        f"{spec}: the config's architectures names {name!r}, which is not a transformers model "
        f"class; expected a class{hint}, or no architectures key to let AutoModel choose"
    )


def _sub_model(transformers: Any, config: Any) -> Any:
    """The model class of a config AutoModel does not map (a text, vision or audio part of a multimodal model:
    `qwen3_omni_moe_text`), from the model's own code: the shortest `…Model` built on that config, else the
    shortest `…Encoder`, then `…Backbone`; None if there is none."""
    if type(config) in transformers.MODEL_MAPPING:
        return None
    module = type(config).__module__.replace(".configuration_", ".modeling_")
    try:
        code = importlib.import_module(module)
    except Exception:  # no modeling code: AutoModel says so
        return None
    kinds = ("Model", "Encoder", "Backbone")
    models = [
        value
        for name, value in vars(code).items()
        if isinstance(value, type)
        and name.endswith(kinds)
        and getattr(value, "config_class", None) is type(config)
        and not name.endswith("PreTrainedModel")
    ]
    return min(
        models,
        key=lambda m: (next(i for i, k in enumerate(kinds) if m.__name__.endswith(k)), len(m.__name__)),
        default=None,
    )


def _config_dtype(config: Any) -> torch.dtype:
    value = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
    if isinstance(value, str):
        value = getattr(torch, value, None)
    return value if isinstance(value, torch.dtype) and value.is_floating_point else torch.float32


def hf_inputs(spec: str, model: nn.Module, config: Any, flags: InputFlags, dtype: torch.dtype) -> Any:
    """Every input the model's forward needs, from the flags and the config."""
    positional, named = parse_inputs(flags.inputs)
    if positional:  # unnamed --input: the user places the inputs themselves
        return positional if len(positional) != 1 else positional[0]
    accepts = inspect.signature(model.forward).parameters
    text = getattr(config, "text_config", None) or config
    batch, length = parse_tokens(flags.tokens) if flags.tokens else (1, None)  # --batch scales these afterwards
    inputs: dict[str, Any] = {}
    image_tokens = _image_tokens(config)
    grid = _patch_grid(model, config, accepts, batch, dtype)
    if grid is not None:  # Qwen2-VL style: the image comes as flattened patches and its grid
        inputs.update(grid[0])
        image_tokens = grid[1]
    elif "pixel_values" in accepts:
        vision = getattr(config, "vision_config", None) or config
        size = getattr(vision, "image_size", None) or DEFAULT_IMAGE  # a detector or CNN config names no size
        side = size if isinstance(size, int) else size[0] if isinstance(size, (list, tuple)) else DEFAULT_IMAGE
        channels = getattr(vision, "num_channels", 3)
        inputs["pixel_values"] = Shaped((batch, channels, side, side), dtype)
    if "input_features" in accepts and hasattr(config, "num_mel_bins"):
        frames = 2 * getattr(config, "max_source_positions", 1500)  # Whisper's 30 s window; its conv halves it
        mels = config.num_mel_bins
        inputs["input_features"] = Shaped((batch, *_mel_layout(model, mels, frames)), dtype)
    if "input_values" in accepts and "input_ids" not in accepts:  # a raw waveform: one second of it
        rate = getattr(config, "sampling_rate", None) or DEFAULT_RATE
        channels = getattr(config, "audio_channels", None)  # codecs (EnCodec, Mimi) take channels × samples
        inputs["input_values"] = Shaped((batch, channels, rate) if channels else (batch, rate), dtype)
    if "input_ids" in accepts:
        limit = _limit(text, "n_positions", "max_position_embeddings")
        n = length or min(DEFAULT_TOKENS, limit[0] or DEFAULT_TOKENS)
        prefix = (image_tokens[0], image_tokens[1]) if image_tokens and "pixel_values" in inputs else None
        total = n + (prefix[1] if prefix else 0)  # image tokens come before the --tokens text tokens
        _check_length(spec, total, limit)
        inputs["input_ids"] = Shaped((batch, total), torch.int64, prefix)
        if grid is not None and prefix and "mm_token_type_ids" in accepts:  # which tokens are image ones (1)
            inputs["mm_token_type_ids"] = Shaped((batch, total), torch.int64, (1, prefix[1]))
    if getattr(config, "is_encoder_decoder", False) and "decoder_input_ids" in accepts:
        limit = _limit(config, "max_target_positions", "n_positions", "max_position_embeddings")
        n = length or min(DEFAULT_TOKENS, limit[0] or DEFAULT_TOKENS)
        _check_length(spec, n, limit)
        inputs["decoder_input_ids"] = token_ids(batch, n)
    unknown = [name for name in named if name not in accepts and not _takes_kwargs(accepts)]
    if unknown:
        takes = ", ".join(accepts)
        raise UsageError(f"{spec}: {type(model).__name__}.forward takes no {unknown[0]!r}; it takes {takes}")
    inputs.update(named)
    return inputs or None


def position_limits(model: nn.Module) -> list[tuple[int, str]]:
    """(positions, config key) of each token input an hf: model counts: input_ids, and decoder ids for an
    encoder-decoder; empty where the config names none (or the model has no config)."""
    config = getattr(model, "config", None)
    if config is None:
        return []
    limits = [_limit(getattr(config, "text_config", None) or config, "n_positions", "max_position_embeddings")]
    if getattr(config, "is_encoder_decoder", False):
        limits.append(_limit(config, "max_target_positions", "n_positions", "max_position_embeddings"))
    return [(n, key) for n, key in limits if n is not None]


def _limit(config: Any, *keys: str) -> tuple[int | None, str]:
    """(the number of positions the model has, the config key that says it), or (None, '') if it says none."""
    for key in keys:
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value, key
    return None, ""


def _check_length(spec: str, length: int, limit: tuple[int | None, str]) -> None:
    positions, key = limit
    if positions is not None and length > positions:
        raise UsageError(
            f"{spec}: a sequence of {length} tokens is longer than the model's {positions} positions ({key} in the "
            f"config); pass --tokens with at most {positions}, or raise {key} to count longer sequences"
        )


def _image_tokens(config: Any) -> tuple[int, int] | None:
    """(image token id, tokens per image) for LLaVA-style models, whose input_ids hold a placeholder per patch."""
    token = getattr(config, "image_token_index", None)
    if token is None:
        token = getattr(config, "image_token_id", None)
    vision = getattr(config, "vision_config", None)
    if not isinstance(token, int) or vision is None:
        return None
    size, patch = getattr(vision, "image_size", None), getattr(vision, "patch_size", None)
    if not isinstance(size, int) or not isinstance(patch, int):
        return None
    patches = (size // patch) ** 2
    return token, patches + (getattr(config, "vision_feature_select_strategy", "default") == "full")


def _patch_grid(
    model: nn.Module, config: Any, accepts: Any, batch: int, dtype: torch.dtype
) -> tuple[dict[str, Any], Any] | None:
    """({pixel_values, image_grid_thw}, (image token id, tokens per image)) for Qwen2-VL-style models, else None.
    Their vision towers alone take the same as (hidden_states, grid_thw).

    These take each image as its patches flattened to rows of channels × temporal patch × patch × patch values,
    with the grid they form (frames, rows, columns); neighbouring `spatial_merge_size`² patches make one token.
    """
    vision = getattr(config, "vision_config", None) or config  # the whole model, or its vision tower alone
    patch = getattr(vision, "patch_size", None)
    grid_key = next((key for key in ("image_grid_thw", "grid_thw") if key in accepts), None)
    patches_key = "pixel_values" if "pixel_values" in accepts else "hidden_states"  # the tower alone: its input
    if grid_key is None or patches_key not in accepts or not isinstance(patch, int):
        return None
    merge = (
        getattr(vision, "spatial_merge_size", None)
        or getattr(vision, "merge_size", None)  # MuseSpark's name
        or (getattr(vision, "merge_kernel_size", None) or [1])[0]
    )
    temporal = getattr(vision, "temporal_patch_size", None) or getattr(vision, "patch_temporal", None) or 1
    channels = getattr(vision, "in_channels", None) or getattr(vision, "num_channels", None) or 3
    size = getattr(vision, "image_size", None)
    side = (size if isinstance(size, int) else 224) // patch // merge * merge  # patches along each side
    inputs = {
        patches_key: Shaped((batch * side * side, *_patch_layout(model, channels, temporal, patch)), dtype),
        grid_key: torch.tensor([[1, side, side]] * batch),
    }
    token = getattr(config, "image_token_id", None)
    return inputs, ((token, side * side // merge**2) if isinstance(token, int) else None)


def _mel_layout(model: nn.Module, mels: int, frames: int) -> tuple[int, int]:
    """(mel bins, frames) where a 1-D convolution reads the bins as channels (Whisper), else (frames, mel bins):
    conformer encoders (Parakeet, LASR) subsample time first, with the bins last."""
    if any(isinstance(m, nn.Conv1d) and m.in_channels == mels for m in model.modules()):
        return mels, frames
    return frames, mels


def _patch_layout(model: nn.Module, channels: int, temporal: int, patch: int) -> tuple[int, ...]:
    """How one patch comes: C×P×P where a 2-D convolution embeds it (Kimi-K2.5), else flattened (Qwen2-VL's
    3-D convolution and the linear embeddings reshape the row themselves)."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d) and module.kernel_size == (patch, patch) and module.in_channels == channels:
            return channels, patch, patch
    return (channels * temporal * patch * patch,)


def _takes_kwargs(accepts: Any) -> bool:
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepts.values())
