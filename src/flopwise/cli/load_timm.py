"""`timm:NAME`: a timm model by name with random weights (`pretrained=False`: nothing is downloaded).

The default input is the one its pretrained config states (`input_size`, e.g. 3×224×224; 3×384×384 for the
`_384` models), with batch 1. `NAME` may carry a pretrained tag (`vit_tiny_patch16_224.augreg_in21k`): the tag
picks the config (input size, number of classes), never weights.
"""

from __future__ import annotations

import difflib
import fnmatch
import warnings
from typing import Any

import torch
from torch import nn

from .errors import ModelError, UsageError
from .inputs import Shaped
from .weights import check_size, weight_bytes


def _timm(spec: str) -> Any:
    try:
        import timm
    except ImportError:
        raise UsageError(f"{spec}: timm: specs need the timm package (pip install timm)") from None
    return timm


def timm_model(name: str, limit: int | None = None) -> tuple[nn.Module, Shaped]:
    """(model in eval mode with random weights, its pretrained config's input at batch 1). With `limit`, a model
    whose weights (sized on the meta device first) are over `limit` bytes is refused before any is allocated."""
    spec = f"timm:{name}"
    timm = _timm(spec)
    if not timm.is_model(name):
        known = timm.list_models()
        close = difflib.get_close_matches(name.partition(".")[0], known, n=5, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else " (see timm.list_models())"
        raise UsageError(f"{spec}: timm {timm.__version__} has no model named {name!r}{hint}")
    if limit is not None:
        _check_size(timm, name, limit)
    try:
        with warnings.catch_warnings():  # deprecation of old names etc.: not the user's question here
            warnings.simplefilter("ignore")
            model = timm.create_model(name, pretrained=False).eval()
    except Exception as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else "(no message)"
        raise ModelError(f"{spec}: building the model raised {type(error).__name__}: {first}") from error
    channels, height, width = model.pretrained_cfg.get("input_size", (3, 224, 224))
    return model, Shaped((1, channels, height, width))


def _check_size(timm: Any, name: str, limit: int) -> None:
    try:
        with warnings.catch_warnings(), torch.device("meta"):
            warnings.simplefilter("ignore")
            probe = timm.create_model(name, pretrained=False)
    except Exception:  # a model that does not build on the meta device: built for real below, unchecked
        return
    check_size(f"timm:{name}", weight_bytes(probe), limit, "to count it")


def timm_names(spec: str, pattern: str) -> list[str]:
    """`timm:` specs of every timm architecture matching a glob (`resnet*`), in timm's order."""
    names = fnmatch.filter(_timm(spec).list_models(), pattern)
    if not names:
        raise UsageError(f"{spec}: matches no timm model (see timm.list_models())")
    return [f"timm:{name}" for name in names]


def is_timm_name(name: str) -> bool:
    """For the hint on a bare name: `resnet50d` alone is `timm:resnet50d`."""
    try:
        import timm
    except ImportError:
        return False
    return bool(timm.is_model(name))
