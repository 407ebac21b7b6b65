"""The transformers part of the zoo sweep: one model type from its default config, as `flopwise hf:` counts it.

When the count raises, the row says whose failure it is. A plain forward of the same model on the same inputs,
with no flopwise at all, on fake tensors (torch's FakeTensorMode: no weights, so any size) that raises the same
error type at the same line of the model's code proves the model itself fails there (**model**, or **input**
where the model's own check rejects the input). A forward whose path reads values (fake tensors have none) is
confirmed for real instead, on a model small enough to rebuild with random weights. Unconfirmed: **crash**.
"""

from __future__ import annotations

import os
import tempfile
import time
import traceback
from typing import Any

import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.func import functional_call
from torch.utils._pytree import tree_map

import flopwise

OURS = (f"{os.sep}torch{os.sep}", os.path.dirname(flopwise.__file__) + os.sep)  # frames that are not the model's


def run_transformers(model_type: str) -> dict[str, Any]:
    import transformers

    from flopwise.cli.common import count_loaded
    from flopwise.cli.errors import ModelError, UsageError
    from flopwise.cli.load import load
    from flopwise.shadow import NeedsData

    try:
        config = transformers.AutoConfig.for_model(model_type)
        folder = tempfile.mkdtemp(prefix="zoo-")
        config.save_pretrained(folder)
        loaded = load(f"hf:{folder}")
    except UsageError as error:
        status = "no input" if "no example inputs" in str(error) else "build"
        return {"status": status, "note": first_line(error)}
    except Exception as error:
        return {"status": "build", "note": first_line(error)}
    notes: list[str] = []
    start = time.perf_counter()
    try:
        r = count_loaded(loaded, "fake", "default", notes.append)
    except ModelError as error:
        cause = error.__cause__ or error
        row = {"status": "crash", "note": first_line(cause), "where": str(error).splitlines()[-1].strip()}
        if isinstance(cause, NeedsData):  # the documented policy: no weights, too large to rebuild with random ones
            row["status"] = "needs data"
            return row
        if rejected_by_the_model(cause):
            row["status"] = "input"
        return confirmed(loaded, cause, row)
    row: dict[str, Any] = {"macs": r.macs, "meta_s": time.perf_counter() - start, "warnings": list(r.warnings)}
    real = ("counted in real mode", "counting again in real mode")  # the count's fallback, or the command line's
    row["mode"] = "real" if any(said in w for w in [*r.warnings, *notes] for said in real) else "meta"
    row["status"] = "unsupported" if r.unsupported else "ok"
    if r.unsupported:
        row["unsupported"] = dict(r.unsupported)
    return row


def first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:160] if text else ''}"


def rejected_by_the_model(error: BaseException) -> bool:
    """A ValueError or TypeError raised by the model's own code (a check of its inputs), or a forward called
    without an argument it requires: the default input does not suit the model, whatever flopwise does."""
    if isinstance(error, TypeError) and "required positional argument" in str(error):
        return True
    files = [frame.filename for frame in traceback.extract_tb(error.__traceback__)]
    while files and f"{os.sep}torch{os.sep}" in files[-1]:  # torch._check, raising for the model's own check
        files.pop()
    return isinstance(error, (ValueError, TypeError)) and bool(files) and f"{os.sep}transformers{os.sep}" in files[-1]


def where_the_model_raised(error: BaseException) -> tuple[str, int] | None:
    """The innermost line of the model's own code (not torch's, not flopwise's) the error passed through."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if not any(ours in f.filename for ours in OURS)]
    return (frames[-1].filename, frames[-1].lineno or 0) if frames else None


def confirmed(loaded: Any, cause: BaseException, row: dict[str, Any]) -> dict[str, Any]:
    """The row, as a plain forward of the model (no flopwise) shows whose failure it is."""
    plain = plain_forward_on_fake_tensors(loaded.model, loaded.inputs)
    if plain is not None and type(plain) is type(cause) and where_the_model_raised(plain) == where_the_model_raised(
            cause) is not None:
        said = "a plain forward (no flopwise) on fake tensors raises the same: "
        status = "input" if rejected_by_the_model(cause) else "model"
        return {"status": status, "note": said + first_line(plain)}
    return plain_forward_raises(loaded) or row


def plain_forward_on_fake_tensors(model: torch.nn.Module, shaped: Any) -> BaseException | None:
    """What a plain forward of `model` (built on meta) raises on fake CPU tensors of its parameters and of the
    inputs (`Shaped`; small integer ones stay real tensors), with no flopwise at all; None if it runs."""
    from flopwise.cli.inputs import make_inputs
    from flopwise.count import split_inputs

    def on_the_cpu(x: Any) -> Any:
        if not isinstance(x, torch.Tensor) or not x.is_meta:
            return x
        return torch.empty_strided(x.shape, x.stride(), dtype=x.dtype, device="cpu")  # fake: the mode is on

    inputs = make_inputs(shaped, real=False)
    with FakeTensorMode(allow_non_fake_inputs=True), torch.no_grad():
        state = {name: on_the_cpu(t) for name, t in [*model.named_parameters(), *model.named_buffers()]}
        inputs = tree_map(on_the_cpu, inputs)
        args, kwargs = split_inputs(inputs)
        try:
            functional_call(model, state, args, kwargs)
        except Exception as error:
            return error
    return None


def plain_forward_raises(loaded: Any) -> dict[str, Any] | None:
    """When the model, rebuilt with weights, raises in a plain forward too, the count is not the cause."""
    from flopwise.cli.common import REBUILD_LIMIT
    from flopwise.cli.inputs import make_inputs

    weights = sum(p.numel() * p.element_size() for p in loaded.model.parameters())
    if loaded.rebuild is None or weights > REBUILD_LIMIT:  # too large to try: the row stays what the count said
        return None
    try:
        with torch.no_grad():
            model = loaded.rebuild()
            inputs = make_inputs(loaded.inputs, real=True)
            model(**inputs) if isinstance(inputs, dict) else model(inputs)
    except Exception as error:
        if isinstance(error, MemoryError) or "can't allocate memory" in str(error):  # the cap, not the model
            return None
        return {"status": "model", "note": "a plain forward on the default input raises too: " + first_line(error)}
    return None
