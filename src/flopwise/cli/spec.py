"""What the user asked for and what was loaded; the one parser of model specs.

Forms: `torchvision:NAME`, `timm:NAME`, `hf:PATH` or `hf:org/name`, `diffusers:config.json`, `guides:NAME`,
`file.py[:NAME]`, `file.pt2` / `file.pt`, `model.onnx`.

Every part of the command line (loading, globs in `compare`, plot labels) reads a `Spec`, never the raw text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..core.conventions import Convention
from ..report.report import Report
from .errors import UsageError
from .options import FORMS

ARCHIVE_SUFFIXES = (".pt", ".pt2", ".pth", ".ts", ".jit")
PREFIXED = ("torchvision", "timm", "hf", "diffusers", "guides", "ultralytics")
GLOBBED = ("torchvision", "timm")  # kinds whose names `compare` expands from a pattern


@dataclass(frozen=True)
class Spec:
    """A parsed model spec. `kind` is torchvision, timm, hf, diffusers, guides, file (a .py file), archive or onnx."""

    text: str  # as the user wrote it: used in every message
    kind: str
    target: str  # the model name, config path, .py file or archive path
    name: str = ""  # for file specs: the class or function inside the file

    @property
    def label(self) -> str:
        """A short name for plots: `resnet18` for `torchvision:resnet18`, `build` for `models.py:build`."""
        return self.name or self.target or self.text

    @property
    def is_glob(self) -> bool:
        return self.kind in GLOBBED and any(c in self.target for c in "*?[")


def parse_spec(text: str) -> Spec:
    """Parse a spec; an unknown form raises UsageError naming the forms that exist."""
    if "\x00" in text or not text.strip():
        raise UsageError(f"unknown model spec {text!r}: expected {FORMS}")
    kind, colon, rest = text.partition(":")
    if colon and kind in PREFIXED:
        return Spec(text, kind, rest)
    match = re.fullmatch(r"(.+\.py)(?::(.*))?", text, flags=re.DOTALL)
    if match:
        return Spec(text, "file", match.group(1), match.group(2) or "")
    if text.endswith(ARCHIVE_SUFFIXES):
        return Spec(text, "archive", text)
    if text.endswith(".onnx"):
        return Spec(text, "onnx", text)
    if text.endswith((".pte", ".tflite")):  # an ExecuTorch program, a LiteRT flatbuffer: kind pte or tflite
        return Spec(text, text.rpartition(".")[2], text)
    raise UsageError(f"unknown model spec {text!r}: expected {FORMS}")


@dataclass
class Loaded:
    """A model ready to count: what `load()` returns."""

    spec: str
    model: nn.Module
    inputs: Any  # as count() takes them: a tensor, a tuple of positional args, or a dict of kwargs
    notes: list[str] = field(default_factory=list)  # said on stderr unless --quiet
    scripted: bool = False  # TorchScript: counted by running it, without module attribution
    rebuild: Callable[[], nn.Module] | None = None  # a model with real weights, for falling back to mode="real"
    counter: Callable[[Convention], Report] | None = None  # counted without running PyTorch (.onnx, .pte, .tflite)
    text_only: Any = None  # a multimodal model's default inputs without the image: counted if the image fails
    rebuild_limit: int | None = None  # bytes of random weights `rebuild` may fill (None: weights.limit_bytes())


@dataclass(frozen=True)
class InputFlags:
    inputs: tuple[str, ...] = ()
    tokens: str | None = None
    batch: int | None = None
    allow_pickle: bool = False
    dtype: torch.dtype | None = None  # --dtype: the model's weights and default float inputs
    rebuild_limit: int | None = None  # --rebuild-limit in bytes (None: FLOPWISE_REBUILD_LIMIT, else 2 GiB)
