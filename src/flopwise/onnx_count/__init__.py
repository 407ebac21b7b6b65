"""Counting ONNX files with flopwise's own formulas over ONNX shape inference (needs the `onnx` package)."""

from .graph import count_onnx

__all__ = ["count_onnx"]
