"""The transformers part of the zoo sweep: one model type from its default config, as `flopwise hf:` counts it.

When the count raises, the row says whose failure it is: a plain forward of the same model on the same inputs,
with no flopwise at all, that raises the same error type on the same path through the model's code proves the
model itself fails there (**model**, or **input** where the model's own check rejects the input). The plain
forward runs on fake tensors (torch's FakeTensorMode: no weights, so any size; the small integer inputs are fake
constants, so the model can read them), else — a path that reads values fake tensors do not have — for real, on
the model rebuilt with random weights, or on a copy shrunk to one layer per stack (the widths, and so the
shapes, kept) when the model is too large to rebuild. Unconfirmed: **crash**.
"""

from __future__ import annotations

import os
import tempfile
import time
import traceback
from typing import Any
from unittest import mock

import torch
from torch._subclasses import fake_tensor
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.func import functional_call
from torch.utils._pytree import tree_map

import flopwise

# frames that are not the model's: torch's, flopwise's, the sweep's own
OURS = (f"{os.sep}torch{os.sep}", os.path.dirname(flopwise.__file__) + os.sep, os.path.dirname(__file__) + os.sep)
SHRUNK_LIMIT = 4 << 30  # bytes of weights of a shrunk copy (its vocabulary stays whole): within the sweep's cap
LAYERS = ("num_hidden_layers", "num_layers", "depth", "encoder_layers", "decoder_layers")  # a shrunk copy keeps one


def run_transformers(model_type: str) -> dict[str, Any]:
    import transformers

    from flopwise.cli.common import count_loaded
    from flopwise.cli.errors import ModelError, UsageError
    from flopwise.cli.load import load
    from flopwise.shapes_only.values import NeedsData

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
        return confirmed(loaded, cause, row, model_type)
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


def path_in_the_model(error: BaseException) -> list[tuple[str, int]]:
    """The lines of the model's own code (not torch's, flopwise's or the sweep's) the error passed through."""
    return [
        (f.filename, f.lineno or 0)
        for f in traceback.extract_tb(error.__traceback__)
        if not any(ours in f.filename for ours in OURS)
    ]


def confirmed(loaded: Any, cause: BaseException, row: dict[str, Any], model_type: str = "") -> dict[str, Any]:
    """The row, as a plain forward of the model (no flopwise) shows whose failure it is."""
    path = path_in_the_model(cause)
    for how, plain in (
        ("on fake tensors", lambda: plain_forward_on_fake_tensors(loaded.model, loaded.inputs)),
        ("rebuilt with random weights", lambda: plain_forward_for_real(loaded)),
        ("of a copy with one layer per stack", lambda: plain_forward_shrunk(model_type)),
    ):
        error = plain()
        if error is not None and type(error) is type(cause) and _same_path(path_in_the_model(error), path):
            status = "input" if rejected_by_the_model(cause) else "model"
            return {
                "status": status,
                "note": f"a plain forward (no flopwise) {how} raises the same: " + first_line(error),
            }
    return row


def _same_path(one: list[tuple[str, int]], other: list[tuple[str, int]]) -> bool:
    """The same lines down to where the error was raised (the callers above the model's forward may differ)."""
    n = min(len(one), len(other))
    return n > 0 and one[-n:] == other[-n:]


def plain_forward_on_fake_tensors(model: torch.nn.Module, shaped: Any) -> BaseException | None:
    """What a plain forward of `model` (built on meta) raises on fake CPU tensors of its parameters and inputs,
    with no flopwise at all; None if it runs. The small integer inputs (token ids, grids) are fake constants:
    torch's fake mode computes what depends on them alone, as flopwise's shadows do."""
    from flopwise.cli.inputs import SMALL_INTEGERS, make_inputs
    from flopwise.counter import split_inputs

    mode = FakeTensorMode(allow_non_fake_inputs=True)

    def fake(x: Any) -> Any:
        if not isinstance(x, torch.Tensor):
            return x
        if x.is_meta:
            return torch.empty_strided(x.shape, x.stride(), dtype=x.dtype, device="cpu")  # fake: the mode is on
        constant = not isinstance(x, torch.nn.Parameter)  # a weight a model made off the meta device: not a constant
        return mode.fake_tensor_converter.from_real_tensor(mode, x, make_constant=constant)

    inputs = make_inputs(shaped, real=False)
    with mock.patch.object(fake_tensor, "CONSTANT_NUMEL_LIMIT", SMALL_INTEGERS), mode, torch.no_grad():
        state = {name: fake(t) for name, t in [*model.named_parameters(), *model.named_buffers()]}
        args, kwargs = split_inputs(tree_map(fake, inputs))
        try:
            functional_call(model, state, args, kwargs)
        except Exception as error:
            return error
    return None


def plain_forward_for_real(loaded: Any, limit: int = 0) -> BaseException | None:
    """What a plain forward of the model, rebuilt with random weights, raises on the default inputs; None if it
    runs, or if the model's weights are over `limit` bytes (the command line's rebuild limit unless given), or
    it runs over the sweep's memory cap."""
    from flopwise.cli.common import REBUILD_LIMIT
    from flopwise.cli.inputs import make_inputs
    from flopwise.counter import split_inputs

    weights = sum(p.numel() * p.element_size() for p in loaded.model.parameters())
    if loaded.rebuild is None or weights > (limit or REBUILD_LIMIT):
        return None
    try:
        with torch.no_grad():
            model = loaded.rebuild()
            args, kwargs = split_inputs(make_inputs(loaded.inputs, real=True))
            model(*args, **kwargs)
    except Exception as error:
        if isinstance(error, MemoryError) or "can't allocate memory" in str(error):  # the cap, not the model
            return None
        return error
    return None


def plain_forward_shrunk(model_type: str) -> BaseException | None:
    """`plain_forward_for_real` on the default config with one layer in each stack (the text model, the vision
    tower, …): every width stays, so the shapes a layer sees are the default model's."""
    import transformers

    from flopwise.cli.load import load

    if not model_type:
        return None
    config = transformers.AutoConfig.for_model(model_type)
    for part in [config, *(getattr(config, key) for key in config.sub_configs if getattr(config, key, None))]:
        for key in LAYERS:
            if isinstance(getattr(part, key, None), int) and getattr(part, key) > 1:
                setattr(part, key, 1)
        if isinstance(getattr(part, "layer_types", None), list):
            part.layer_types = part.layer_types[:1]
    folder = tempfile.mkdtemp(prefix="zoo-shrunk-")
    config.save_pretrained(folder)
    return plain_forward_for_real(load(f"hf:{folder}"), limit=SHRUNK_LIMIT)
