"""Deployment formats and model zoos beyond plain PyTorch modules: ExecuTorch programs (`.pte`), LiteRT flatbuffers
(`.tflite`), counted from their files by the registry's formulas as `.onnx` files are; and Ultralytics YOLO model
YAMLs, built without weights and counted as any PyTorch model. Submodules are imported on use: `.pte` and `.tflite`
need nothing beyond torch (flopwise reads the FlatBuffer itself); `ultralytics:` needs the ultralytics package."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .pte import count_pte
    from .tflite import count_tflite
    from .ultralytics import count_ultralytics, ultralytics_model

__all__ = ["count_pte", "count_tflite", "count_ultralytics", "ultralytics_model"]
_WHERE = {
    "count_pte": "pte",
    "count_tflite": "tflite",
    "count_ultralytics": "ultralytics",
    "ultralytics_model": "ultralytics",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'flopwise.edge' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
