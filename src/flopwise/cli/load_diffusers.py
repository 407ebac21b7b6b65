"""`diffusers:config.json`: a diffusers model from its config, on the meta device (nothing downloaded).

The class is the config's `_class_name`, as diffusers' `save_config` writes it. Default inputs, batch 1, with
S = the config's `sample_size`:

    UNet2DConditionModel    sample 1×in_channels×S×S, timestep (1,), encoder_hidden_states 1×77×cross_attention_dim
                            (77: CLIP's text length); SDXL's text_time conditioning adds text_embeds and time_ids
    UNet2DModel             sample 1×in_channels×S×S, timestep (1,)
    AutoencoderKL, VQModel  sample 1×in_channels×S×S (S in pixels): encoded, then decoded
    DiTTransformer2DModel   hidden_states 1×in_channels×S×S, timestep (1,), class_labels (1,)
    PixArtTransformer2DModel  hidden_states 1×in_channels×S×S, timestep (1,),
                            encoder_hidden_states 1×120×caption_channels (120: PixArt-α's T5 text length)
    Transformer2DModel      diffusers builds a patched config as DiT (ada_norm_zero) or PixArt (ada_norm_single); a
                            continuous one takes hidden_states 1×in_channels×S×S (+ encoder_hidden_states 1×77×D)

`--input NAME=SIZES` replaces one of them by name (`--input encoder_hidden_states=1x16x768`); any other diffusers
model is built too and takes its inputs from `--input`.
"""

from __future__ import annotations

import difflib
import inspect
import json
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import ModelError, UsageError, not_a_file
from .inputs import Shaped, parse_inputs
from .spec import InputFlags, Loaded, Spec

TEXT_TOKENS = 77  # CLIP's context length: the text Stable Diffusion's UNet attends to
PIXART_TOKENS = 120  # PixArt-α's T5 text length
TIME_IDS = 6  # SDXL's micro-conditioning: original size, crop offset, target size


def diffusers_model(parsed: Spec, flags: InputFlags) -> Loaded:
    spec = parsed.text
    if flags.tokens:
        raise UsageError(
            f"{spec}: diffusers models take no token ids; give the text embeddings' size with "
            f"--input encoder_hidden_states=1x{TEXT_TOKENS}xDIM"
        )
    diffusers, cls, config = _config(spec, Path(parsed.target))

    def build(device: str) -> nn.Module:
        with torch.device(device), warnings.catch_warnings():  # meta: parameters have shapes only
            warnings.simplefilter("ignore", FutureWarning)  # diffusers' deprecations are not the user's concern
            return cls.from_config(config).eval()  # type: ignore[no-any-return]

    try:
        model = build("meta")
    except Exception as error:  # the config describes a model that cannot be built: the user's input
        first = str(error).strip().splitlines()[0] if str(error).strip() else "(no message)"
        raise ModelError(f"{spec}: building {cls.__name__} raised {type(error).__name__}: {first}") from error
    built = type(model).__name__ + (f" (diffusers' class for a {cls.__name__} config)" * (type(model) is not cls))
    notes = [f"{spec}: built {built} on the meta device (no weights), counted in meta mode"]
    return Loaded(spec, model, _inputs(spec, model, flags), notes, rebuild=lambda: build("cpu"))


def _config(spec: str, path: Path) -> tuple[Any, Any, dict[str, Any]]:
    """(the diffusers module, the model's class, the config as a dict)."""
    if path.is_dir():
        path = path / "config.json"
    if path.exists() and not path.is_file():
        raise UsageError(f"{spec}: {str(path)!r} {not_a_file(path)}")
    if not path.is_file():
        raise UsageError(
            f"{spec}: no config.json at {str(path)!r}; diffusers: takes a model's config.json (or its "
            "folder), as model.save_config(folder) writes it (nothing is downloaded)"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UsageError(f"{spec}: {path} is not valid JSON ({error})") from None
    name = data.get("_class_name") if isinstance(data, dict) else None
    if not isinstance(name, str):
        raise UsageError(
            f'{spec}: {path} has no "_class_name" key naming the model\'s class (e.g. '
            '"UNet2DConditionModel"); is it a diffusers model config? save_config writes it'
        )
    try:
        import diffusers
    except ImportError:
        raise UsageError(f"{spec}: diffusers: specs need the diffusers package (pip install diffusers)") from None
    diffusers.utils.logging.set_verbosity_error()  # config warnings are not the user's question here
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        cls = getattr(diffusers, name, None)  # imports the class's module
    if not (inspect.isclass(cls) and issubclass(cls, diffusers.ModelMixin)):
        known = [n for n in dir(diffusers) if n[:1].isupper() and n.endswith(("Model", "Net", "KL", "VAE"))]
        close = difflib.get_close_matches(name, known, n=5, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        what = "a pipeline or scheduler, not a model" if cls is not None else "no class of that name"
        raise UsageError(f"{spec}: diffusers {diffusers.__version__} has {what}: {name!r}{hint}")
    return diffusers, cls, data


def _inputs(spec: str, model: nn.Module, flags: InputFlags) -> Any:
    """The defaults of the model's class, with `--input NAME=SIZES` in place of those it names."""
    positional, named = parse_inputs(flags.inputs)
    if positional:  # unnamed --input: the user places the inputs themselves
        return positional if len(positional) != 1 else positional[0]
    accepts = inspect.signature(model.forward).parameters
    unknown = [name for name in named if name not in accepts]
    if unknown:
        raise UsageError(
            f"{spec}: {type(model).__name__}.forward takes no {unknown[0]!r}; it takes {', '.join(accepts)}"
        )
    defaults = default_inputs(type(model).__name__, model.config)
    if not defaults and not named:
        raise UsageError(
            f"{spec}: no default inputs known for {type(model).__name__}; give them by name, e.g. "
            f"--input {next(iter(accepts))}=1x4x64x64 (its forward takes {', '.join(accepts)})"
        )
    return {**defaults, **named}


def default_inputs(name: str, config: Any) -> dict[str, Any]:
    """The inputs of one denoising step (or one encode–decode) at the config's sample size; {} if unknown."""
    image = _image(config)
    step = Shaped((1,), torch.int64)  # one timestep per sample
    if name == "UNet2DConditionModel":
        width = config.encoder_hid_dim or config.cross_attention_dim
        width = width if isinstance(width, int) else width[0]  # a tuple: one per block, all equal in practice
        inputs: dict[str, Any] = {
            "sample": image,
            "timestep": step,
            "encoder_hidden_states": Shaped((1, TEXT_TOKENS, width)),
        }
        if config.addition_embed_type == "text_time":  # SDXL: pooled text embeddings and six size numbers
            pooled = config.projection_class_embeddings_input_dim - TIME_IDS * config.addition_time_embed_dim
            inputs["added_cond_kwargs"] = {"text_embeds": Shaped((1, pooled)), "time_ids": Shaped((1, TIME_IDS))}
        return inputs
    if name == "UNet2DModel":
        return {"sample": image, "timestep": step}
    if name in ("AutoencoderKL", "VQModel"):
        return {"sample": image}
    if name == "DiTTransformer2DModel":
        return {"hidden_states": image, "timestep": step, "class_labels": step}
    if name == "PixArtTransformer2DModel":  # resolution and aspect ratio: None, the model's own defaults
        text = Shaped((1, PIXART_TOKENS, config.caption_channels or config.cross_attention_dim))
        return {
            "hidden_states": image,
            "timestep": step,
            "encoder_hidden_states": text,
            "added_cond_kwargs": {"resolution": None, "aspect_ratio": None},
        }
    if name == "Transformer2DModel" and config.in_channels is not None:  # continuous: patched ones are DiT or PixArt
        inputs = {"hidden_states": image}
        if config.cross_attention_dim:  # cross-attention to text
            inputs["encoder_hidden_states"] = Shaped((1, TEXT_TOKENS, config.cross_attention_dim))
        return inputs
    return {}


def _image(config: Any) -> Shaped:
    size = config.sample_size
    height, width = (size, size) if isinstance(size, int) else size
    return Shaped((1, config.in_channels, height, width))
