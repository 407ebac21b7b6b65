"""`flopwise model.pte` and `flopwise model.tflite`: an ExecuTorch program or a LiteRT flatbuffer, counted from its
file by flopwise.edge (its operators and tensor shapes, each operator costed by the registry's formula of the aten
op that does its work); no PyTorch model is built. Both files fix their sizes when exported: `--input`, `--tokens`,
`--batch` and `--dtype` are refused. Mistakes raise `UsageError` (exit code 2). `ultralytics:NAME.yaml` is routed
here too (load_ultralytics.py): the three sources of issue 26."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from torch import nn

from ..core.conventions import Convention
from ..report.report import Report
from .errors import UsageError
from .spec import InputFlags, Loaded, Spec

EDGE_KINDS = ("pte", "tflite", "ultralytics")


def load_edge(spec: Spec, flags: InputFlags) -> Loaded:
    """A spec of one of EDGE_KINDS, loaded."""
    if spec.kind == "ultralytics":
        from .load_ultralytics import load_ultralytics

        return load_ultralytics(spec)
    return (load_pte if spec.kind == "pte" else load_tflite)(spec, flags)


def load_pte(spec: Spec, flags: InputFlags) -> Loaded:
    from ..edge.pte import count_pte

    return _load(spec, flags, "an ExecuTorch program", count_pte)


def load_tflite(spec: Spec, flags: InputFlags) -> Loaded:
    from ..edge.tflite import count_tflite

    return _load(spec, flags, "a LiteRT flatbuffer", count_tflite)


def _load(spec: Spec, flags: InputFlags, what: str, count: Callable[[Path, Convention], Report]) -> Loaded:
    if flags.inputs or flags.tokens or flags.batch is not None or flags.dtype is not None:
        raise UsageError(
            f"{spec.text}: --input, --tokens, --batch and --dtype are for PyTorch models; {what} has "
            "the sizes and dtypes it was exported with"
        )
    path = Path(spec.target)
    if not path.is_file():
        raise UsageError(f"{spec.text}: no such file")

    def counter(convention: Convention) -> Report:
        try:
            return count(path, convention)
        except ValueError as error:
            raise UsageError(f"{spec.text}: {error}") from None

    return Loaded(spec.text, nn.Module(), (), counter=counter)
