"""Model specs of the command line → a model and its example inputs.

    torchvision:NAME        any torchvision builder, random weights, the default input of its family
    timm:NAME               any timm model, random weights, the input size of its pretrained config
    hf:PATH                 a transformers config.json (or a folder holding one), built on the meta device
    hf:org/name             the same, its config.json found in the local Hugging Face cache (never the network)
    diffusers:PATH          a diffusers model's config.json (UNet, DiT, AutoencoderKL…), built on the meta device
    path/to/file.py:NAME    an nn.Module class, or a function returning a module or (module, inputs)
    file.pt2 / file.pt      a torch.export archive or a TorchScript file; a pickled module only with --allow-pickle
    model.onnx              an ONNX file, counted from its graph (no PyTorch model is built)
    guides:NAME             one of the guides' three worked examples

Nothing is downloaded and nothing is unpickled unless the user says so. Mistakes raise `UsageError`.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib.util
import inspect
import re
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from ..examples import guide_examples
from .archives import load_archive
from .errors import ModelError, UsageError, exit_message, not_a_file
from .inputs import Shaped, parse_inputs, parse_tokens, token_ids, with_batch, with_dtype
from .load_diffusers import diffusers_model
from .load_edge import EDGE_KINDS, load_edge
from .load_hf import huggingface
from .load_onnx import load_onnx
from .load_timm import is_timm_name, timm_model
from .spec import InputFlags, Loaded, Spec, parse_spec
from .weights import limit_bytes, rebuilt, seeded

PLACES_INPUTS = ("hf", "diffusers", "onnx")  # loaders that place --input NAME= and --tokens by the model's signature


def load(text: str, flags: InputFlags | None = None, weights: bool = True) -> Loaded:
    """Build the model a spec names, with its example inputs (explicit flags win over the defaults).
    `weights=False`: a count that needs shapes only; torchvision models are then built on the meta device (no
    random initialisation, the bulk of the time for large ones) and `rebuild` gives them weights when needed."""
    flags = flags or InputFlags()
    positional = [given for given in flags.inputs if "=" not in given]
    if positional and flags.tokens:
        raise UsageError("give either --input or --tokens, not both (--input 1x128:int64 makes token ids too)")
    if flags.batch is not None and positional:
        raise UsageError("--batch scales a default input; with --input, write the batch into the sizes (4x3x224x224)")
    explicit = _explicit_inputs(flags)
    spec = _parse(text)
    try:
        with seeded():  # random weights, and whatever else the model draws when built: the same every run
            loaded = _load(spec, flags)
    except OSError as error:  # a path the system refuses (too long, a folder, no permission)
        raise UsageError(f"{text}: cannot read it ({error.strerror or error})") from None
    loaded.rebuild_limit = flags.rebuild_limit
    if weights and spec.kind == "torchvision":  # built without values above: values only when asked for
        loaded.model = rebuilt(loaded, "for a real count")
    if explicit is not None and spec.kind not in PLACES_INPUTS:
        loaded.inputs = explicit
    if flags.dtype is not None and spec.kind != "hf" and not loaded.scripted:
        loaded = _cast(loaded, flags.dtype)
    if loaded.inputs is None:
        raise UsageError(
            f"{text}: no example inputs known for this model; pass --input SIZES (e.g. --input 1x3x224x224, "
            "one per positional argument) or --tokens BxS"
        )
    if flags.batch is not None:
        loaded.inputs = with_batch(loaded.inputs, flags.batch)
    return loaded


def _explicit_inputs(flags: InputFlags) -> Any:
    positional, named = parse_inputs(flags.inputs)
    if positional and named:
        raise UsageError("give every --input a name (NAME=SIZES) or none: positional and keyword inputs do not mix")
    if named:
        return named
    if positional:
        return positional if len(positional) != 1 else positional[0]
    if flags.tokens:
        return token_ids(*parse_tokens(flags.tokens))
    return None


def _load(spec: Spec, flags: InputFlags) -> Loaded:
    if spec.kind == "torchvision":
        model, default, notes = torchvision_model(spec.target, on_meta=True)
        return Loaded(spec.text, model, default, notes, rebuild=lambda: torchvision_model(spec.target)[0])
    if spec.kind == "timm":
        limit = flags.rebuild_limit if flags.rebuild_limit is not None else limit_bytes()
        model, default = timm_model(spec.target, limit)
        return Loaded(spec.text, model, default, rebuild=lambda: timm_model(spec.target)[0])
    if spec.kind == "hf":
        return huggingface(spec, flags)
    if spec.kind == "diffusers":
        return diffusers_model(spec, flags)
    if spec.kind == "guides":
        return _guide(spec)
    if spec.kind == "file":
        return _python_file(spec)
    if spec.kind == "onnx":
        return load_onnx(spec, flags)
    if spec.kind in EDGE_KINDS:  # model.pte, model.tflite, ultralytics:NAME.yaml
        return load_edge(spec, flags)
    return load_archive(spec, flags.allow_pickle)


def _cast(loaded: Loaded, dtype: torch.dtype) -> Loaded:
    """--dtype: the model's floating weights and its default floating inputs in `dtype` (explicit ones stay)."""
    rebuild = loaded.rebuild
    loaded.model = loaded.model.to(dtype)
    loaded.rebuild = (lambda: rebuild().to(dtype)) if rebuild is not None else None
    loaded.inputs = loaded.inputs if loaded.inputs is None else with_dtype(loaded.inputs, dtype)
    return loaded


def _parse(text: str) -> Spec:
    try:
        return parse_spec(text)
    except UsageError as error:
        hint = f"; did you mean torchvision:{text}?" if _is_torchvision_name(text) else ""
        hint = hint or (f"; did you mean timm:{text}?" if is_timm_name(text) else "")
        raise UsageError(f"{error}{hint}") from None


def _is_torchvision_name(name: str) -> bool:
    try:
        import torchvision.models

        return name in torchvision.models.list_models()
    except ImportError:
        return False


# — guides —


def _guide(spec: Spec) -> Loaded:
    examples = {e.name: e for e in guide_examples()}
    if spec.target not in examples:
        raise UsageError(f"{spec.text}: no such guide example; expected guides:{', guides:'.join(examples)}")
    return Loaded(spec.text, examples[spec.target].model, examples[spec.target].inputs)


# — python files —


def _python_file(parsed: Spec) -> Loaded:
    """Import the file (its top-level code runs, as under `python file.py`, with sys.argv = [file.py]) and build NAME.
    A SystemExit from the file (sys.exit(), argparse) is the model failing, never flopwise ending."""
    spec, file = parsed.text, parsed.target
    path = Path(file)
    if not path.is_file():
        said = not_a_file(path)
        raise UsageError(f"{spec}: no file {file!r}" if said == "no such file" else f"{spec}: {file!r} {said}")
    with _own_argv(path):
        return _build_from_file(parsed, path)


@contextlib.contextmanager
def _own_argv(path: Path) -> Iterator[None]:
    """sys.argv as the file would see it run as a script: [file.py], not flopwise's arguments."""
    saved = sys.argv
    sys.argv = [str(path)]
    try:
        yield
    finally:
        sys.argv = saved


def _build_from_file(parsed: Spec, path: Path) -> Loaded:
    spec, file, name = parsed.text, parsed.target, parsed.name
    namespace = _import_file(path, spec)
    choices = [
        n
        for n, v in vars(namespace).items()
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
        inspect.signature(factory).bind()
    except TypeError as error:
        raise UsageError(
            f"{spec}: calling {name}() failed ({error}); NAME must build with no arguments: write a function "
            "in the file that returns the module (or (module, example inputs))"
        ) from None
    except ValueError:  # no signature to check (a builtin): just call it
        pass
    try:
        result = factory()
    except SystemExit as error:
        raise ModelError(exit_message(spec, error, f"in {name}()")) from None
    except Exception as error:  # the user's constructor raised: their model failed, not flopwise
        first = str(error).strip().splitlines()[0] if str(error).strip() else "(no message)"
        raise ModelError(f"{spec}: {name}() raised {type(error).__name__}: {first}") from error
    inputs = None
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], nn.Module):
        result, inputs = result
    if not isinstance(result, nn.Module):
        raise UsageError(f"{spec}: {name}() returned a {type(result).__name__}, expected an nn.Module")
    if inputs is None and hasattr(result, "example_inputs"):
        own = result.example_inputs
        inputs = own() if callable(own) else own
    return Loaded(spec, result.eval(), inputs)


def _import_file(path: Path, spec_text: str) -> Any:
    module_name = "flopwise_user_" + re.sub(r"\W", "_", path.stem)
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"{path}: cannot be imported as Python")
    namespace = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = namespace  # dataclasses and pickling look classes up here
    sys.path.insert(0, str(path.resolve().parent))  # so the file can import its neighbours
    try:
        spec.loader.exec_module(namespace)
    except SystemExit as error:
        raise ModelError(exit_message(spec_text, error, "while importing it")) from None
    except Exception as error:
        raise UsageError(f"{path}: importing it raised {type(error).__name__}: {error}") from None
    finally:
        sys.path.remove(str(path.resolve().parent))
    return namespace


def _is_module_class(value: Any) -> bool:
    return inspect.isclass(value) and issubclass(value, nn.Module)


def _defined_in(value: Any, namespace: Any) -> bool:
    return bool(getattr(value, "__module__", None) == namespace.__name__)


# — torchvision —


def torchvision_families() -> dict[str, list[str]]:
    """{family: model names}, as torchvision lists them."""
    try:
        import torchvision.models as tvm
    except ImportError:
        raise UsageError("torchvision: specs need the torchvision package (pip install torchvision)") from None
    modules = {
        "classification": tvm,
        "detection": tvm.detection,
        "segmentation": tvm.segmentation,
        "video": tvm.video,
        "optical_flow": tvm.optical_flow,
        "quantization": tvm.quantization,
    }
    return {family: tvm.list_models(module=module) for family, module in modules.items()}


def torchvision_model(name: str, on_meta: bool = False) -> tuple[nn.Module, Any, list[str]]:
    """(model in eval mode with random weights, or on the meta device, its family's default input, notes)."""
    import torchvision.models as tvm

    family = next((f for f, names in torchvision_families().items() if name in names), None)
    if family is None:
        known = [n for names in torchvision_families().values() for n in names]
        close = difflib.get_close_matches(name, known, n=5, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else " (see torchvision.models.list_models())"
        raise UsageError(f"torchvision:{name}: torchvision has no model named {name!r}{hint}")
    builder = tvm.get_model_builder(name)
    options: dict[str, Any] = {"weights": None}
    if "weights_backbone" in inspect.signature(builder).parameters:
        options["weights_backbone"] = None  # else detection and segmentation builders download a backbone
    with warnings.catch_warnings():  # "the default weight initialization will change" is not the user's concern
        warnings.simplefilter("ignore", FutureWarning)
        model = _build(builder, options, on_meta)
    notes = [f"torchvision:{name}: quantize=False (the float model with quantization stubs)"] * (
        family == "quantization"
    )
    return model, _torchvision_inputs(name, family, model), notes


class _EmptyOnMeta(TorchFunctionMode):
    """`torch.empty` with no device (how layers allocate their weights) on the meta device; other factories (arange,
    tensor, zeros: sizes computed from values, index buffers) stay on the CPU."""

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if func is torch.empty and kwargs.get("device") is None:
            kwargs = {**kwargs, "device": "meta"}
        return func(*args, **kwargs)


def _build(builder: Any, options: dict[str, Any], on_meta: bool) -> nn.Module:
    if on_meta:  # weights without values: no random initialisation, the bulk of the time for large models
        with contextlib.suppress(Exception), _EmptyOnMeta():
            return builder(**options).eval()  # type: ignore[no-any-return]
    return builder(**options).eval()  # type: ignore[no-any-return]


def _torchvision_inputs(name: str, family: str, model: nn.Module) -> Any:
    """The default input of a family, at the resolution torchvision's weights for this model are evaluated at."""
    if family == "detection":
        return ([Shaped((3, 800, 800))],)  # a list of images
    if family == "segmentation":
        return Shaped((1, 3, 520, 520))
    if family == "optical_flow":
        return (Shaped((1, 3, 520, 960)), Shaped((1, 3, 520, 960)))  # two frames; sides divisible by 8
    size = getattr(model, "image_size", None) or _weights_crop(name) or 224  # ViTs fix their size when built
    if family == "video":
        return Shaped((1, 3, 16, size, size))  # 16 frames, as the video weights are evaluated
    return Shaped((1, 3, size, size))


def _weights_crop(name: str) -> int | None:
    """The crop size of the model's DEFAULT weights (299 for Inception, 600 for EfficientNet-B7); no download."""
    import torchvision.models as tvm

    try:
        transforms = tvm.get_model_weights(name).DEFAULT.transforms()
    except (ValueError, AttributeError, KeyError):
        return None
    crop = getattr(transforms, "crop_size", None)
    return int(crop[0]) if crop else None
