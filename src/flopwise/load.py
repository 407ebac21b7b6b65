"""Model specs of the command line → a model and its example inputs.

    torchvision:NAME        any torchvision builder, random weights, the default input of its family
    hf:PATH                 a transformers config.json (or a folder holding one), built on the meta device
    path/to/file.py:NAME    an nn.Module class, or a function returning a module or (module, inputs)
    file.pt2 / file.pt      a torch.export archive or a TorchScript file; a pickled module only with --allow-pickle
    guides:NAME             one of the guides' three worked examples

Nothing is downloaded and nothing is unpickled unless the user says so. Mistakes raise `UsageError`.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import re
import sys
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .inputs import UsageError, inputs_from_flags, parse_tokens, token_ids, with_batch

FORMS = "torchvision:NAME, hf:path/to/config.json, path/to/file.py:NAME, file.pt2, file.pt or guides:NAME"
ARCHIVE_SUFFIXES = (".pt", ".pt2", ".pth", ".ts", ".jit")
# hf: models whose count needs values computed from the weights are rebuilt with random weights up to this size
REAL_FALLBACK_BYTES = 2 << 30


@dataclass
class Loaded:
    """A model ready to count: what `load()` returns."""

    spec: str
    model: nn.Module
    inputs: Any  # as count() takes them: a tensor, a tuple of positional args, or a dict of kwargs
    notes: list[str] = field(default_factory=list)  # said on stderr unless --quiet
    scripted: bool = False  # TorchScript: counted by running it, without module attribution
    rebuild: Callable[[], nn.Module] | None = None  # a model with real weights, for falling back to mode="real"
    rebuild_note: str = ""  # what the rebuilt model is, when it is not the model named (random weights)


@dataclass(frozen=True)
class InputFlags:
    inputs: tuple[str, ...] = ()
    tokens: str | None = None
    batch: int | None = None
    allow_pickle: bool = False


def load(spec: str, flags: InputFlags | None = None) -> Loaded:
    """Build the model a spec names, with its example inputs (explicit flags win over the defaults)."""
    flags = flags or InputFlags()
    if flags.inputs and flags.tokens:
        raise UsageError("give either --input or --tokens, not both (--input 1x128:int64 makes token ids too)")
    if flags.batch is not None and flags.inputs:
        raise UsageError("--batch scales a default input; with --input, write the batch into the sizes (4x3x224x224)")
    explicit = _explicit_inputs(flags)
    kind, _, rest = spec.partition(":")
    if kind == "torchvision":
        model, default, notes = torchvision_model(rest)
        loaded = Loaded(spec, model, default, notes, rebuild=lambda: torchvision_model(rest)[0])
    elif kind == "hf":
        loaded = _huggingface(spec, rest, flags)
    elif kind == "guides":
        loaded = _guide(spec, rest)
    elif re.fullmatch(r".+\.py(:.*)?", spec):
        loaded = _python_file(spec)
    elif spec.endswith(ARCHIVE_SUFFIXES):
        loaded = _archive(spec, flags.allow_pickle)
    else:
        hint = f"; did you mean torchvision:{spec}?" if _is_torchvision_name(spec) else ""
        raise UsageError(f"unknown model spec {spec!r}: expected {FORMS}{hint}")
    if explicit is not None:
        loaded.inputs = explicit
    if loaded.inputs is None:
        raise UsageError(
            f"{spec}: no example inputs known for this model; pass --input SIZES (e.g. --input 1x3x224x224, "
            "one per positional argument) or --tokens BxS"
        )
    if flags.batch is not None:
        loaded.inputs = with_batch(loaded.inputs, flags.batch)
    return loaded


def _explicit_inputs(flags: InputFlags) -> Any:
    if flags.inputs:
        tensors = inputs_from_flags(list(flags.inputs))
        return tensors if len(tensors) != 1 else tensors[0]
    if flags.tokens:
        return token_ids(*parse_tokens(flags.tokens))
    return None


def _is_torchvision_name(name: str) -> bool:
    try:
        import torchvision.models

        return name in torchvision.models.list_models()
    except ImportError:
        return False


# — guides —


def _guide(spec: str, name: str) -> Loaded:
    from .examples import guide_examples

    examples = {e.name: e for e in guide_examples()}
    if name not in examples:
        raise UsageError(f"{spec}: no such guide example; expected guides:{', guides:'.join(examples)}")
    return Loaded(spec, examples[name].model, examples[name].inputs)


# — transformers —


def _huggingface(spec: str, where: str, flags: InputFlags) -> Loaded:
    path = Path(where)
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
    loaded = Loaded(spec, model.eval(), _hf_default_inputs(model, config, flags), notes)
    size = sum(p.numel() * p.element_size() for p in model.parameters())
    if size <= REAL_FALLBACK_BYTES:  # a data-dependent path (MoE routing) can then be counted for real

        def rebuild() -> nn.Module:
            with torch.random.fork_rng():
                torch.manual_seed(0)
                built: nn.Module = cls(config) if cls is not None else transformers.AutoModel.from_config(config)  # type: ignore[no-untyped-call]
            return built.eval()

        loaded.rebuild = rebuild
        loaded.rebuild_note = f"the model was rebuilt on the CPU with random weights ({size / 2**30:.2f} GiB, seed 0)"
    return loaded


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


# — python files —


def _python_file(spec: str) -> Loaded:
    file, _, name = spec.rpartition(":") if not spec.endswith(".py") else (spec, "", "")
    path = Path(file)
    if not path.is_file():
        raise UsageError(f"{spec}: no file {file!r}")
    namespace = _import_file(path)
    choices = [
        n for n, v in vars(namespace).items()
        if not n.startswith("_") and (_is_module_class(v) or inspect.isfunction(v)) and _defined_in(v, namespace)
    ]
    if not name:
        raise UsageError(f"{spec}: say which model to count, as {file}:NAME; NAME is one of {', '.join(choices)}")
    if not hasattr(namespace, name):
        raise UsageError(f"{spec}: {file} defines no {name!r}; expected one of {', '.join(choices) or '(none)'}")
    factory = getattr(namespace, name)
    if not callable(factory):
        raise UsageError(f"{spec}: {name!r} is a {type(factory).__name__}, not an nn.Module class or a function")
    try:
        result = factory()
    except TypeError as error:
        raise UsageError(
            f"{spec}: calling {name}() failed ({error}); NAME must build with no arguments: write a function "
            "in the file that returns the module (or (module, example inputs))"
        ) from None
    inputs = None
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], nn.Module):
        result, inputs = result
    if not isinstance(result, nn.Module):
        raise UsageError(f"{spec}: {name}() returned a {type(result).__name__}, expected an nn.Module")
    if inputs is None and hasattr(result, "example_inputs"):
        own = result.example_inputs
        inputs = own() if callable(own) else own
    return Loaded(spec, result.eval(), inputs)


def _import_file(path: Path) -> Any:
    module_name = "flopwise_user_" + re.sub(r"\W", "_", path.stem)
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"{path}: cannot be imported as Python")
    namespace = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = namespace  # dataclasses and pickling look classes up here
    sys.path.insert(0, str(path.resolve().parent))  # so the file can import its neighbours
    try:
        spec.loader.exec_module(namespace)
    except Exception as error:
        raise UsageError(f"{path}: importing it raised {type(error).__name__}: {error}") from None
    finally:
        sys.path.remove(str(path.resolve().parent))
    return namespace


def _is_module_class(value: Any) -> bool:
    return inspect.isclass(value) and issubclass(value, nn.Module)


def _defined_in(value: Any, namespace: Any) -> bool:
    return bool(getattr(value, "__module__", None) == namespace.__name__)


# — archives —


def _archive(spec: str, allow_pickle: bool) -> Loaded:
    path = Path(spec)
    if not path.is_file():
        raise UsageError(f"{spec}: no such file")
    names = zipfile.ZipFile(path).namelist() if zipfile.is_zipfile(path) else []
    if any("/code/" in n for n in names) and any(n.endswith("constants.pkl") or n.endswith("data.pkl") for n in names):
        try:  # TorchScript holds code for its own interpreter, not pickled Python objects
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # "torch.jit is deprecated": not the user's question
                scripted = torch.jit.load(str(path), map_location="cpu")  # type: ignore[no-untyped-call]
        except Exception as error:
            raise UsageError(f"{spec}: not a loadable TorchScript file ({type(error).__name__}: {error})") from None
        notes = [f"{spec}: TorchScript runs as one unit: counted in real mode, totals only (no per-module rows)"]
        return Loaded(spec, scripted.eval(), None, notes, scripted=True)
    if any("serialized_exported_program" in n or n.endswith("archive_format") for n in names):
        try:
            program = torch.export.load(str(path))
        except Exception as error:
            raise UsageError(f"{spec}: not a loadable torch.export archive ({type(error).__name__}: {error})") from None
        args, kwargs = program.example_inputs or ((), {})
        inputs: Any = kwargs if kwargs and not args else (args if not kwargs else None)
        try:  # unflattened, submodules run as modules, so the rows per module are filled
            model: nn.Module = torch.export.unflatten(program)
        except Exception:  # some programs cannot be unflattened: count the flat graph (totals only)
            model = program.module()
        return Loaded(spec, model, inputs)
    return _pickled(spec, path, allow_pickle)


def _pickled(spec: str, path: Path, allow_pickle: bool) -> Loaded:
    try:
        content = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as error:
        if "Unsupported global" not in str(error):  # not a pickle of Python objects: junk or a broken file
            first = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
            raise UsageError(f"{spec}: not a torch file ({type(error).__name__}: {first})") from None
        if not allow_pickle:
            raise UsageError(
                f"{spec}: the file holds a pickled Python object; unpickling can run any code the file contains, "
                "so flopwise does not do it by default. Save the model with torch.export.save (a .pt2 archive), "
                "or, if you trust the file, add --allow-pickle"
            ) from None
        content = torch.load(str(path), map_location="cpu", weights_only=False)  # noqa: S614 - the user allowed it
        notes = [f"{spec}: unpickled with --allow-pickle (this runs code from the file; only for files you trust)"]
        if isinstance(content, nn.Module):
            return Loaded(spec, content.eval(), None, notes)
    if isinstance(content, nn.Module):
        return Loaded(spec, content.eval(), None)
    raise UsageError(
        f"{spec}: the file holds {type(content).__name__} (weights only, no architecture); write a function in a .py "
        "file that builds the model and loads these weights, then count file.py:NAME"
    )


# — torchvision —

FAMILIES = ("classification", "detection", "segmentation", "video", "optical_flow", "quantization")


def torchvision_families() -> dict[str, list[str]]:
    """{family: model names}, as torchvision lists them."""
    try:
        import torchvision.models as tvm
    except ImportError:
        raise UsageError("torchvision: specs need the torchvision package (pip install torchvision)") from None
    modules = {"classification": tvm, "detection": tvm.detection, "segmentation": tvm.segmentation,
               "video": tvm.video, "optical_flow": tvm.optical_flow, "quantization": tvm.quantization}
    return {family: tvm.list_models(module=module) for family, module in modules.items()}


def torchvision_model(name: str) -> tuple[nn.Module, Any, list[str]]:
    """(model in eval mode with random weights, its family's default input, notes)."""
    import torchvision.models as tvm

    family = next((f for f, names in torchvision_families().items() if name in names), None)
    if family is None:
        known = [n for names in torchvision_families().values() for n in names]
        close = [n for n in known if n.startswith(name[:4])][:5] if name else []
        hint = f"; did you mean {', '.join(close)}?" if close else " (see torchvision.models.list_models())"
        raise UsageError(f"torchvision:{name}: torchvision has no model named {name!r}{hint}")
    builder = tvm.get_model_builder(name)
    options: dict[str, Any] = {"weights": None}
    if "weights_backbone" in inspect.signature(builder).parameters:
        options["weights_backbone"] = None  # else detection and segmentation builders download a backbone
    with warnings.catch_warnings():  # "the default weight initialization will change" is not the user's concern
        warnings.simplefilter("ignore", FutureWarning)
        model = builder(**options).eval()
    notes = [f"torchvision:{name}: quantize=False (the float model with quantization stubs)"] * (
        family == "quantization"
    )
    return model, _torchvision_inputs(name, family, model), notes


def _torchvision_inputs(name: str, family: str, model: nn.Module) -> Any:
    """The default input of a family, at the resolution torchvision's weights for this model are evaluated at."""
    if family == "detection":
        return ([torch.rand(3, 800, 800, generator=torch.Generator().manual_seed(0))],)  # a list of images
    if family == "segmentation":
        return torch.rand(1, 3, 520, 520)
    if family == "optical_flow":
        return (torch.rand(1, 3, 520, 960), torch.rand(1, 3, 520, 960))  # two frames; sides divisible by 8
    size = getattr(model, "image_size", None) or _weights_crop(name) or 224  # ViTs fix their size when built
    if family == "video":
        return torch.rand(1, 3, 16, size, size)  # 16 frames, as the video weights are evaluated
    return torch.rand(1, 3, size, size)


def _weights_crop(name: str) -> int | None:
    """The crop size of the model's DEFAULT weights (299 for Inception, 600 for EfficientNet-B7); no download."""
    import torchvision.models as tvm

    try:
        transforms = tvm.get_model_weights(name).DEFAULT.transforms()
    except (ValueError, AttributeError, KeyError):
        return None
    crop = getattr(transforms, "crop_size", None)
    return int(crop[0]) if crop else None
