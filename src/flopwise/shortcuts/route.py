"""Modules' forwards routed through one function for the length of a count (fold.py's way in).

A module's `forward` is read before its hooks run, so a pre-hook cannot stand in for it: the forward of each chosen
module is set on the instance, bound to it, until the routes are dropped (when the count ends, even if it raised).
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable
from typing import Any

import torch


class Routed:
    """The forward of a module of class `cls` while routed, bound to the module as a method: a copy of the module
    made meanwhile (copy.deepcopy rebinds a method to the copy) calls the route with the copy, and
    `inspect.signature` sees the class's own."""

    def __init__(self, cls: type, forward: Callable[..., Any]) -> None:
        self.cls, self.forward = cls, forward

    def __call__(self, module: torch.nn.Module, *args: Any, **kwargs: Any) -> Any:
        return self.forward(module, type(module).forward.__get__(module), args, kwargs)

    @property
    def __signature__(self) -> inspect.Signature:
        return inspect.signature(self.cls.forward)  # type: ignore[attr-defined]


class Routes:
    """The modules whose forward goes through `forward(module, original, args, kwargs)`."""

    def __init__(self, forward: Callable[..., Any]) -> None:
        self.forward = forward
        self.routed: list[torch.nn.Module] = []
        self._by_class: dict[type, Routed] = {}

    def add(self, modules: list[torch.nn.Module]) -> None:
        for module in modules:
            if "forward" in vars(module) or isinstance(module, torch.jit.ScriptModule):
                continue  # a forward set on the instance (accelerate's hooks): left alone, never routed
            route = self._by_class.setdefault(type(module), Routed(type(module), self.forward))
            vars(module)["forward"] = types.MethodType(route, module)  # Module.__setattr__'s checks: no tensor
            self.routed.append(module)

    def drop(self, which: Callable[[torch.nn.Module], bool] = lambda module: True) -> None:
        """The modules `which` chooses run their own forward again (all of them by default)."""
        kept = []
        for module in self.routed:
            if which(module):
                vars(module).pop("forward", None)
            else:
                kept.append(module)
        self.routed = kept


def routed(value: Any) -> bool:
    """Whether an instance attribute is a route's bound forward."""
    return isinstance(getattr(value, "__func__", None), Routed)
