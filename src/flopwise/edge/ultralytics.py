"""Ultralytics YOLO models built from the model YAMLs the ultralytics package ships, with random weights.

`yolo11n.yaml` is `yolo11.yaml` at scale n, as ultralytics reads it (`yolov8s-seg.yaml`, `yolo11x-pose.yaml`,
`rtdetr-l.yaml`, `yolov8n-cls.yaml`…); a YAML file on disk is built the same way. Nothing is downloaded and the
network is never asked: ultralytics is imported with YOLO_OFFLINE set (it otherwise resolves two host names on
import to learn whether it is online) and with its auto-install of missing packages off; while a model is built,
torchvision backbones get random weights (not their pretrained ones) and the network is refused. The model is counted
by flopwise's normal path, as any PyTorch module: 1×3×640×640 by default (224×224 for a classification model,
ultralytics' default image sizes).
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import logging
import os
import re
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import torch
from torch import nn

from ..counter import count
from ..report.report import Report

_QUIET_IMPORT = {"YOLO_OFFLINE": "True", "YOLO_AUTOINSTALL": "False", "YOLO_VERBOSE": "False"}


class UnknownYaml(ValueError):
    """The name is neither a model YAML the installed ultralytics ships nor a YAML file."""


_SCALED = re.compile(r"(\d+)([nslmx])(.+)?$")  # ultralytics' own rule: yolov8x-seg.yaml is yolov8-seg.yaml at x


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def _offline() -> Iterator[None]:
    """While a model is built: torchvision backbones (`TorchVision` layers, yolo11-cls-resnet18.yaml) get random
    weights instead of downloading their pretrained ones, and the network is refused to anything else (a name
    lookup or a connection raises OSError), so that nothing can be downloaded."""
    import socket

    import torchvision

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise OSError("flopwise builds ultralytics models offline: nothing is downloaded")

    get_model = torchvision.models.get_model

    def without_weights(name: str, **config: Any) -> Any:
        return get_model(name, **{**config, "weights": None})

    with (
        mock.patch.object(socket, "getaddrinfo", refuse),
        mock.patch.object(socket.socket, "connect", refuse),
        mock.patch.object(torchvision.models, "get_model", without_weights),
    ):
        yield


def _ultralytics() -> Any:
    """The ultralytics package, imported offline and quietly the first time (its settings are read at import)."""
    if "ultralytics" not in sys.modules:
        with _environment(_QUIET_IMPORT):
            return importlib.import_module("ultralytics")  # optional: pip install 'flopwise[ultralytics]'
    return sys.modules["ultralytics"]


def bundled_yamls() -> dict[str, Path]:
    """{file name: path} of every model YAML the installed ultralytics ships (cfg/models/**.yaml)."""
    root = Path(_ultralytics().__file__).parent / "cfg" / "models"
    return {path.name: path for path in sorted(root.rglob("*.yaml"))}


def _resolve(name: str) -> str:
    """The name ultralytics is given: a bundled YAML (by file name, a scale letter allowed after the version) or a
    YAML file on disk. Anything else raises UnknownYaml with the closest bundled names."""
    if Path(name).suffix in (".yaml", ".yml") and Path(name).is_file() and "://" not in name:
        return str(Path(name))
    bundled = bundled_yamls()
    file = Path(name).name
    if "://" not in name and (file in bundled or _SCALED.sub(r"\1\3", file) in bundled):
        return file
    scaled = [
        re.sub(r"^(yolo\D*\d+)", rf"\g<1>{s}", n, count=1) for n in bundled if n.startswith("yolo") for s in "nsmlx"
    ]
    close = difflib.get_close_matches(file, [*bundled, *scaled], n=5, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else f" (it ships {len(bundled)}: yolo11n.yaml, …)"
    raise UnknownYaml(f"ultralytics {_ultralytics().__version__} ships no model YAML {file!r}{hint}")


def ultralytics_model(name: str) -> tuple[nn.Module, tuple[int, int, int, int]]:
    """(the model `name` describes, in eval mode with random weights, its default input size 1×C×S×S).

    `name` is a YAML the ultralytics package ships (`yolo11n.yaml`, `yolov8s-seg.yaml`, `rtdetr-l.yaml`) or a
    YAML file on disk. Raises UnknownYaml (a ValueError) for an unknown name; ModuleNotFoundError without
    ultralytics; whatever ultralytics raises when the YAML does not build."""
    ultralytics = _ultralytics()
    resolved = _resolve(name)
    logger = logging.getLogger("ultralytics")
    level = logger.level
    logger.setLevel(logging.ERROR)  # its layer table and notices: not the count's output
    try:
        with warnings.catch_warnings(), _environment(_QUIET_IMPORT), _offline():
            warnings.simplefilter("ignore")
            family = ultralytics.RTDETR if "rtdetr" in Path(resolved).name else ultralytics.YOLO  # YOLO refuses those
            wrapper = family(resolved)
    finally:
        logger.setLevel(level)
    model = wrapper.model.eval()
    channels = int(getattr(model, "yaml", {}).get("channels", 3))
    size = 224 if wrapper.task == "classify" else 640  # ultralytics' default imgsz for the task
    return model, (1, channels, size, size)


def count_ultralytics(name: str, imgsz: int | tuple[int, int] | None = None, **options: Any) -> Report:
    """Count an ultralytics model YAML (`count_ultralytics("yolo11n.yaml")`) as flopwise.count counts any model:
    on a 1×C×S×S image (S = `imgsz`, else 640; 224 for classification). `options` go to flopwise.count
    (`mode`, `convention`, …); the default mode here is "fake" (shapes only), as on the command line."""
    model, (batch, channels, height, width) = ultralytics_model(name)
    if imgsz is not None:
        height, width = (imgsz, imgsz) if isinstance(imgsz, int) else imgsz
    options.setdefault("mode", "fake")
    image = (
        torch.rand(batch, channels, height, width)
        if options["mode"] == "real"
        else torch.empty(batch, channels, height, width, device="meta")
    )
    return count(model, image, **options)
