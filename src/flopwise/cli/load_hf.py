"""`hf:config.json`: a transformers model built from a local config, on the meta device (nothing downloaded)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import UsageError
from .inputs import parse_tokens, token_ids
from .spec import InputFlags, Loaded, Spec


def huggingface(parsed: Spec, flags: InputFlags) -> Loaded:
    spec, path = parsed.text, Path(parsed.target)
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        raise UsageError(
            f"{spec}: no config.json at {str(path)!r}; hf: takes a local transformers config.json or a folder "
            "holding one (nothing is downloaded: save one with config.save_pretrained(folder))"
        )
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UsageError(f"{spec}: {path} is not valid JSON ({error})") from None
    if not isinstance(data, dict) or "model_type" not in data:
        raise UsageError(f"{spec}: {path} has no \"model_type\" key; is it a transformers config.json?")
    try:
        import transformers
    except ImportError:
        raise UsageError(f"{spec}: hf: specs need the transformers package (pip install transformers)") from None
    # config warnings (e.g. token ids outside a small vocabulary) are not the user's question here
    transformers.logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    model_type = data.pop("model_type")
    try:
        config = transformers.AutoConfig.for_model(model_type, **data)
    except (ValueError, KeyError) as error:
        raise UsageError(f"{spec}: transformers does not know model_type {model_type!r} ({error})") from None
    architecture = (data.get("architectures") or [None])[0]
    cls = getattr(transformers, architecture, None) if architecture else None
    with torch.device("meta"):  # no weights: parameters have shapes only
        if cls is not None:
            model = cls(config)
        else:
            model = transformers.AutoModel.from_config(config)  # type: ignore[no-untyped-call]
    notes = [f"{spec}: built {type(model).__name__} on the meta device (no weights), counted in meta mode"]
    return Loaded(spec, model.eval(), _hf_default_inputs(model, config, flags), notes)


def _hf_default_inputs(model: nn.Module, config: Any, flags: InputFlags) -> Any:
    main = getattr(model, "main_input_name", "input_ids")
    if flags.tokens or main == "input_ids":
        if flags.tokens:
            batch, length = parse_tokens(flags.tokens)
        else:
            limit = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None) or 128
            batch, length = 1, min(128, int(limit))
        ids = token_ids(batch, length)
        if getattr(config, "is_encoder_decoder", False):
            return {"input_ids": ids, "decoder_input_ids": ids.clone()}
        return {"input_ids": ids}
    if main == "pixel_values" and hasattr(config, "image_size"):
        size = config.image_size if isinstance(config.image_size, int) else config.image_size[0]
        channels = getattr(config, "num_channels", 3)
        return {"pixel_values": torch.rand(1, channels, size, size)}
    return None


