"""`flopwise model.onnx`: an ONNX file counted from its graph by flopwise.onnx_count; no PyTorch model is built.

Sizes: the graph's own, or `--input [NAME=]SIZES` (by name, or in the graph's input order), which an input with a
dynamic dim (a symbolic batch) needs. Dtypes are the graph's. Mistakes raise `UsageError` (exit code 2).
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from ..core.conventions import Convention
from ..onnx_count import count_onnx
from ..report.report import Report
from .errors import UsageError, not_a_file
from .inputs import parse_inputs
from .spec import InputFlags, Loaded, Spec


def load_onnx(spec: Spec, flags: InputFlags) -> Loaded:
    if flags.tokens or flags.batch is not None or flags.dtype is not None:
        raise UsageError(
            f"{spec.text}: --tokens, --batch and --dtype are for PyTorch models; an .onnx file has the "
            "dtypes of its graph, and takes its sizes from --input [NAME=]SIZES"
        )
    path = Path(spec.target)
    if not path.is_file():
        raise UsageError(f"{spec.text}: {not_a_file(path)}")
    if path.stat().st_size == 0:
        raise UsageError(f"{spec.text}: the file is empty (0 bytes), not an ONNX model; was it written completely?")
    positional, named = parse_inputs(flags.inputs)
    sizes = {name: shaped.shape for name, shaped in named.items()} or [shaped.shape for shaped in positional]

    def counter(convention: Convention) -> Report:
        try:
            return count_onnx(path, sizes or None, convention)
        except ModuleNotFoundError as error:
            if error.name != "onnx":
                raise
            raise UsageError(
                f"{spec.text}: counting .onnx files needs the onnx package: pip install 'flopwise[onnx]'"
            ) from None
        except ValueError as error:
            raise UsageError(f"{spec.text}: {error}") from None

    return Loaded(spec.text, nn.Module(), sizes, counter=counter)
