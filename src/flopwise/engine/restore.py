"""Leave the user's model as found by `count()`, without copying it up front.

- Parameters and buffers written in place during the forward (`self.w.add_(1)`, BatchNorm running statistics,
  an `out=` op into a buffer): the counting mode calls `before_write` for every op whose schema says it writes
  an argument; the first write into the storage of a parameter or buffer copies that tensor, and `restore()`
  copies it back (and resets its version counter). Only written tensors are ever copied.
- Data swapped under a tensor (`self.w.data = …`) is put back from an alias kept of each (no copy), with a
  warning; an in-place write the mode never saw but the version counter did is named in the warnings, not undone.
  Writes that leave no trace at all (through a NumPy view) are beyond reach.
- Module attributes that forward set or replaced (`self.cache = x`: a fake or meta tensor in those modes, or a
  step counter) are put back from a shallow copy of each module's `__dict__`, with a warning; so are the contents
  of plain dicts a forward fills in place (timm's `attention_bias_cache`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils._python_dispatch import _disable_current_modes

from ..formulas.schema import written_tensors
from ..shapes_only.tensors import storage_key

_OWN_DICTS = ("_parameters", "_buffers", "_modules")


class StateGuard:
    def __init__(self, model: torch.nn.Module, tensors: bool) -> None:
        """`tensors`: watch parameters and buffers (when the model runs on its own tensors, in real mode)."""
        self._storages: dict[int, list[tuple[str, torch.Tensor]]] = {}
        # name, tensor, its version, data pointer, and an alias of its data (no copy) to undo `.data = …`
        self._versions: list[tuple[str, torch.Tensor, int, int, torch.Tensor]] = []
        self._saved: dict[int, tuple[torch.Tensor, torch.Tensor, int]] = {}  # id → (tensor, copy, version)
        if tensors:
            seen: set[int] = set()
            named = [*model.named_parameters(remove_duplicate=False), *model.named_buffers(remove_duplicate=False)]
            for name, t in named:
                key = None if t.is_meta or id(t) in seen else storage_key(t)
                if key is None:
                    continue
                seen.add(id(t))
                self._storages.setdefault(key, []).append((name, t))
                self._versions.append((name, t, t._version, t.data_ptr(), t.detach()))
        self._attributes = [
            (
                name,
                module,
                dict(vars(module)),  # its own dicts too: restoring compares the others only
                dict(module._parameters),
                dict(module._buffers),
                {k: dict(v) for k, v in vars(module).items() if type(v) is dict and k not in _OWN_DICTS},
            )  # caches
            for name, module in model.named_modules(remove_duplicate=False)
            if not isinstance(module, torch.jit.ScriptModule)  # TorchScript keeps its attributes in C++
        ]

    @property
    def watching(self) -> bool:
        return bool(self._storages)

    def before_write(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Called by the counting mode before an op whose schema says it writes an argument runs."""
        for target in written_tensors(func, args, kwargs):
            key = storage_key(target)
            for _, t in self._storages.get(key, ()) if key is not None else ():
                if id(t) not in self._saved:
                    with _disable_current_modes():  # a real copy, also under a fake mode (TorchScript)
                        self._saved[id(t)] = (t, t.detach().clone(), t._version)

    def restore(self) -> list[str]:
        """Undo what forward changed; return warnings for what could not be undone or was put back."""
        warnings: list[str] = []
        with torch.no_grad():
            for t, copy, version in self._saved.values():
                t.copy_(copy)
                torch._C._autograd._unsafe_set_version_counter((t,), (version,))
        for name, t, version, pointer, data in self._versions:
            if t.data_ptr() != pointer:
                t.data = data
                warnings.append(f"forward replaced the data of {name!r} (`.data = …`); restored")
            elif id(t) not in self._saved and t._version != version:
                warnings.append(f"{name!r} was written during the count where flopwise could not see it; not restored")
        self._saved.clear()
        for name, module, attributes, parameters, buffers, dicts in self._attributes:
            warnings += _restore_attributes(name, module, attributes)
            for key, contents in dicts.items():
                now = vars(module).get(key)
                if type(now) is dict and (
                    now.keys() != contents.keys() or any(now[k] is not v for k, v in contents.items())
                ):
                    now.clear()
                    now.update(contents)
                    warnings.append(
                        f"forward wrote into the dict {key!r} of module {name or '(root)'!r} (a cache?) "
                        "during the count; restored"
                    )
            for kind, now, before in (
                ("parameter", module._parameters, parameters),
                ("buffer", module._buffers, buffers),
            ):
                if now.keys() != before.keys() or any(now[k] is not v for k, v in before.items()):
                    now.clear()
                    now.update(before)
                    warnings.append(f"forward replaced a {kind} of {name or '(root)'!r}; restored")
        return warnings


def _restore_attributes(name: str, module: torch.nn.Module, before: dict[str, Any]) -> list[str]:
    now = vars(module)
    changed = [k for k in now if k not in _OWN_DICTS and (k not in before or now[k] is not before[k])]
    changed += [k for k in before if k not in now]
    for k in changed:
        if k in before:
            now[k] = before[k]
        else:
            del now[k]
    where = name or "(root)"
    return [f"forward set attribute {k!r} of module {where!r} during the count; restored" for k in changed]
