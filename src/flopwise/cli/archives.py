"""Model files: torch.export archives (.pt2), TorchScript, and pickled modules (.pt) only with --allow-pickle.

Nothing is unpickled without consent, in any format. torch.export.load unpickles several members with
`weights_only=False` (sample inputs and old-format members when a safe load fails, `use_pickle` weights and
constants, opaque objects), so before torch sees a .pt2 every member it could unpickle is loaded here with
`weights_only=True`; one that fails refuses the file, and torch then loads the very bytes that were checked.
TorchScript archives are read by TorchScript's own unpickler, which builds only TorchScript types.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import pickletools
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import UsageError, first_line, not_a_file
from .spec import Loaded, Spec

# .pt2 members that torch reads as text or raw bytes, never unpickles
_TEXT_MEMBERS = {"archive_format", "archive_version", "version", "byteorder"}
_OBJECT_PREFIXES = ("custom_obj", "opaque_obj")  # torchbind and plain-pickle objects among the constants


def load_archive(parsed: Spec, allow_pickle: bool) -> Loaded:
    spec, path = parsed.text, Path(parsed.target)
    if not path.is_file():
        raise UsageError(f"{spec}: {not_a_file(path)}")
    try:
        data = path.read_bytes()  # read once: what is checked is what torch loads
    except OSError as error:
        raise UsageError(f"{spec}: cannot read ({error.strerror})") from None
    names = zipfile.ZipFile(io.BytesIO(data)).namelist() if zipfile.is_zipfile(io.BytesIO(data)) else []
    if any("/code/" in n for n in names) and any(n.endswith(("constants.pkl", "data.pkl")) for n in names):
        return _torchscript(spec, data)
    if any(_inner(n) == "archive_format" or n.endswith("serialized_exported_program.json") for n in names):
        return _exported(spec, data, allow_pickle)
    return _pickled(spec, data, allow_pickle)


def _inner(name: str) -> str:
    """The member name inside the archive's top folder (torch's reader strips it)."""
    return name.split("/", 1)[1] if "/" in name else name


def _torchscript(spec: str, data: bytes) -> Loaded:
    try:  # TorchScript holds code for its own interpreter and an unpickler of TorchScript types only
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # "torch.jit is deprecated": not the user's question
            scripted = torch.jit.load(io.BytesIO(data), map_location="cpu")  # type: ignore[no-untyped-call]
    except Exception as error:
        raise UsageError(f"{spec}: not a loadable TorchScript file ({type(error).__name__}: {_first(error)})") from None
    notes = [f"{spec}: TorchScript runs as one unit: counted in real mode, totals only (no per-module rows)"]
    return Loaded(spec, scripted.eval(), None, notes, scripted=True)


def _exported(spec: str, data: bytes, allow_pickle: bool) -> Loaded:
    notes = []
    if allow_pickle:
        notes.append(f"{spec}: loaded with --allow-pickle (pickled members may run code: only for files you trust)")
    else:
        unsafe = unsafe_members(data)
        if unsafe:
            raise UsageError(
                f"{spec}: member {unsafe[0]} of the archive is not plain tensor data (loading it would unpickle "
                "Python objects, which can run code); add --allow-pickle only if you trust the file"
            )
    try:
        with _silent_export_logs():  # torch logs tracebacks (and fails to format its own messages) while it tries
            program = torch.export.load(io.BytesIO(data))
    except Exception as error:
        what = f"{type(error).__name__}: {_first(error)}"
        raise UsageError(f"{spec}: not a loadable torch.export archive ({what})") from None
    args, kwargs = program.example_inputs or ((), {})
    inputs: Any = kwargs if kwargs and not args else (args if not kwargs else None)
    try:  # unflattened, submodules run as modules, so the rows per module are filled
        model: nn.Module = torch.export.unflatten(program)
    except Exception:  # some programs cannot be unflattened: count the flat graph (totals only)
        model = program.module()
    return Loaded(spec, model, inputs, notes)


@contextlib.contextmanager
def _silent_export_logs() -> Iterator[None]:
    """torch.export's loggers quiet for the block (the error that follows says it in one line), and a log record
    torch cannot format ('--- Logging error ---' and its traceback) not printed either."""
    loggers = [logging.getLogger(name) for name in ("torch.export", "torch._export")]
    levels, raising = [log.level for log in loggers], logging.raiseExceptions
    for log in loggers:
        log.setLevel(logging.CRITICAL)
    logging.raiseExceptions = False
    try:
        yield
    finally:
        for log, level in zip(loggers, levels, strict=True):
            log.setLevel(level)
        logging.raiseExceptions = raising


def unsafe_members(data: bytes) -> list[str]:
    """Members of a .pt2 that torch would unpickle and that do not load with weights_only=True (empty: safe).

    Every member is checked except those torch reads as JSON, text or raw tensor bytes; a name that appears twice
    is unsafe too, since the checked copy might not be the one torch reads.
    """
    archive = zipfile.ZipFile(io.BytesIO(data))
    members = [_inner(n) for n in archive.namelist()]
    repeated = [m for m in members if members.count(m) > 1]
    if repeated:
        return repeated[:1]
    raw, pickled, objects = _payloads(archive)
    unsafe = list(objects)
    for name, member in zip(archive.namelist(), members, strict=True):
        if member in _TEXT_MEMBERS or member.startswith((".data/", "extra/", "extra_files/")) or name.endswith("/"):
            continue
        if member not in pickled and (member in raw or member.endswith(".json")):
            continue
        if not _loads_safely(archive.read(name)):
            unsafe.append(member)
    return unsafe


def _payloads(archive: zipfile.ZipFile) -> tuple[set[str], set[str], list[str]]:
    """(raw tensor members, members torch unpickles, object constants) named by the weights and constants configs."""
    raw: set[str] = set()
    pickled: set[str] = set()
    objects: list[str] = []
    for name in archive.namelist():
        member = _inner(name)
        if not member.endswith(("_weights_config.json", "_constants_config.json")):
            continue
        folder = member.rpartition("/")[0]
        try:
            config = json.loads(archive.read(name))["config"]
            entries = [(str(e["path_name"]), bool(e.get("use_pickle"))) for e in config.values()]
        except (ValueError, KeyError, TypeError, AttributeError):
            objects.append(member)  # a config torch may read differently than we do: not checked, so not safe
            continue
        for path_name, use_pickle in entries:
            target = f"{folder}/{path_name}"
            if path_name.startswith(_OBJECT_PREFIXES):
                objects.append(target)
            (pickled if use_pickle else raw).add(target)
    return raw, pickled, objects


def _loads_safely(member: bytes) -> bool:
    try:
        torch.load(io.BytesIO(member), map_location="cpu", weights_only=True)
    except Exception:
        return False
    return True


def _pickled(spec: str, data: bytes, allow_pickle: bool) -> Loaded:
    try:
        with warnings.catch_warnings():  # "Detected pickle protocol 4…": the verdict below says what matters
            warnings.simplefilter("ignore")
            content = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:
        imports = [name for name in pickled_globals(data) if not _plain(name)]
        if not imports and "unsupported global" not in str(error).lower():  # junk, or a broken file
            raise UsageError(f"{spec}: not a torch file ({type(error).__name__}: {_first(error)})") from None
        if not allow_pickle:
            calls = f" (it would import {imports[0]})" if imports else ""
            raise UsageError(
                f"{spec}: refused: the file holds a pickled Python object{calls}; unpickling can run any code the "
                "file contains, so flopwise does not do it by default. Save the model with torch.export.save (a .pt2 "
                "archive), or, if you trust the file, add --allow-pickle"
            ) from None
        try:
            content = torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)  # noqa: S614 - allowed
        except Exception as error:  # e.g. the module's class lives in a package that is not importable here
            raise UsageError(
                f"{spec}: unpickling it raised {type(error).__name__}: {_first(error)} (the classes it holds must be "
                "importable here: run flopwise where the model's code is on the Python path)"
            ) from None
        notes = [f"{spec}: unpickled with --allow-pickle (this runs code from the file; only for files you trust)"]
        if isinstance(content, nn.Module):
            return Loaded(spec, content.eval(), None, notes)
    if isinstance(content, nn.Module):
        return Loaded(spec, content.eval(), None)
    raise UsageError(
        f"{spec}: the file holds {type(content).__name__} (weights only, no architecture); write a function in a .py "
        "file that builds the model and loads these weights, then count file.py:NAME"
    )


# what a plain torch.save of tensors imports: torch's rebuild functions, storages, dtypes and devices, an OrderedDict
_PLAIN_GLOBALS = (
    "torch._utils.",
    "torch._tensor.",
    "torch.serialization.",
    "collections.OrderedDict",
    "torch.device",
    "torch.Size",
    "torch.float",
    "torch.int",
    "torch.bool",
    "torch.bfloat16",
)
# torch's advice around a failed weights_only load (to reload with weights_only=False): never passed on
_ADVICE = (
    "weights only load failed",
    "weights_only",
    "trusted source",
    "please file an issue",
    "check the documentation",
    "do those steps only",
)


def pickled_globals(data: bytes) -> list[str]:
    """The classes and functions a pickle (or each pickle of a torch zip file, or the pickles of a legacy torch file
    one after another) would import, as 'module.name', read with pickletools: nothing is unpickled."""
    payloads = [data]
    if zipfile.is_zipfile(io.BytesIO(data)):
        archive = zipfile.ZipFile(io.BytesIO(data))
        payloads = [archive.read(n) for n in archive.namelist() if n.endswith(".pkl")]
    found: list[str] = []
    for payload in payloads:
        start = 0
        while start < len(payload):
            strings: list[str] = []
            end = len(payload)
            try:
                for opcode, argument, position in pickletools.genops(payload[start:]):
                    if opcode.name in ("GLOBAL", "INST"):
                        found.append(str(argument).replace(" ", "."))
                    elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                        found.append(f"{strings[-2]}.{strings[-1]}")
                    elif isinstance(argument, str):
                        strings.append(argument)
                    if opcode.name == "STOP":
                        end = start + (position or 0) + 1
            except Exception:  # not (or no longer) a pickle: tensor bytes after a legacy file's pickles
                break
            start = end
    return found


def _plain(name: str) -> bool:
    return name.startswith(_PLAIN_GLOBALS) or (name.startswith("torch.") and name.endswith("Storage"))


def _first(error: BaseException) -> str:
    """The first line of a loader's error that says what went wrong, without torch's advice to load unsafely."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    said = [line for line in lines if not any(advice in line.lower() for advice in _ADVICE)]
    text = (said or lines or ["(no message)"])[0].removeprefix("WeightsUnpickler error:").strip()
    return first_line(ValueError(text or "(no message)"))
