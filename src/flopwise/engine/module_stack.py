"""Which module is running, and what it is.

`ModuleStack`: a stack of qualified module names, kept by global hooks for one count only.

Forward: global forward pre/post hooks push and pop. Backward: the module is re-entered when the gradient of
its outputs arrives and left when the gradient of its inputs is ready (the approach of
`torch.utils.module_tracker`, with an ordered stack so the innermost module is known). Every hook is removed
in `close()`; nothing is left on the user's modules. `describe_module` gives a module's one-line description.
The shapes of each module's positional tensor inputs and of its outputs are kept from its first call only.

Rows follow the user's model: a module that is not part of it, has no parameters or buffers and runs inside one of
its modules is a function a library wrapped as a module (transformers' `kernels` makes `apply_rotary_pos_emb` one,
built afresh per call); its work is its caller's, with no row of its own. Other modules the count was not told about
(`counting()` over arbitrary code) are named by their class.
"""

from __future__ import annotations

import threading
import warnings
import weakref
from collections import Counter
from collections.abc import Callable
from typing import Any

import torch
from torch.autograd.graph import register_multi_grad_hook
from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook
from torch.utils._pytree import tree_leaves


class ModuleStack:
    def __init__(self, roots: dict[torch.nn.Module, str] | None = None) -> None:
        self.stack: list[str] = []
        self.names: weakref.WeakKeyDictionary[torch.nn.Module, str] = weakref.WeakKeyDictionary()
        self.types: dict[str, str] = {}
        self.calls: Counter[str] = Counter()
        # module → shapes of the tensors of its first forward call: positional inputs, and outputs
        self.input_shapes: dict[str, tuple[tuple[int, ...], ...]] = {}
        self.output_shapes: dict[str, tuple[tuple[int, ...], ...]] = {}
        self.roots: list[torch.nn.Module] = []
        self._grad_hooks: list[Any] = []
        self._reset_queued = False
        self.raised_in: str | None = None  # innermost module whose forward raised
        # Module hooks are global: modules run by other threads reach them too, and must not enter our stack.
        self._thread = threading.get_ident()
        for root, prefix in (roots or {}).items():
            self._name_tree(root, prefix)
        self._handles = [
            register_module_forward_pre_hook(self._enter),
            register_module_forward_hook(self._exit, always_call=True),
        ]

    @property
    def current(self) -> str:
        return self.stack[-1] if self.stack else ""

    def _name_tree(self, root: torch.nn.Module, prefix: str) -> None:
        self.roots.append(root)
        for name, module in root.named_modules(prefix=prefix):
            if module not in self.names:  # a shared module keeps its first name
                self.names[module] = name
                self.types[name] = module_type(module)

    def _name_of(self, module: torch.nn.Module) -> str | None:
        """The module's qualified name; None for a function wrapped as a module (see above): its caller's work."""
        known = self.names.get(module)  # one look-up: a weak-key dictionary makes a weak reference for each
        if known is not None:
            return known
        if self.stack and next(module.parameters(), None) is None and next(module.buffers(), None) is None:
            return None
        base = type(module).__name__  # a model we were not told about (counting() over arbitrary code)
        name, n = base, 1
        while name in self.types:
            n += 1
            name = f"{base}#{n}"
        self._name_tree(module, name)
        return self.names[module]

    def _enter(self, module: torch.nn.Module, args: Any) -> None:
        if threading.get_ident() != self._thread:
            return
        name = self._name_of(module)
        if name is None:  # a wrapped function: it runs as part of its caller, which stays the current module
            self.stack.append(self.current)
            return
        self.stack.append(name)
        self.calls[name] += 1
        if name not in self.input_shapes:
            self.input_shapes[name] = tensor_shapes(args)
        if not torch.is_grad_enabled():  # no backward will follow: nothing to hook
            return
        # backward leaves this module when the gradients of its inputs are ready
        self._when_gradients(args, lambda _: self._pop(name))

    def _exit(self, module: torch.nn.Module, args: Any, output: Any) -> None:
        if threading.get_ident() != self._thread:
            return
        name = self._name_of(module)
        if name is None:
            if self.stack:  # the caller's entry pushed for the wrapped function
                self.stack.pop()
            return
        self._pop(name)
        if output is None and self.raised_in is None:  # always_call hooks see None when forward raised
            self.raised_in = name
        if name not in self.output_shapes and output is not None:
            self.output_shapes[name] = tensor_shapes(output)
        if not torch.is_grad_enabled():
            return
        # backward enters this module when the gradients of its outputs arrive
        self._when_gradients(output, lambda _: self._enter_backward(name))

    def _when_gradients(self, tree: Any, fn: Callable[[Any], None]) -> None:
        """Call `fn` once the gradients of the tensors in `tree` are ready. Leaf tensors (an input that
        requires grad, a parameter returned as is) are left out where others exist: for a leaf, the hook would
        ask the engine whether it will run the leaf's accumulator, which `torch.autograd.grad` cannot answer.
        With leaves only, the first leaf gradient calls `fn`."""
        needs_grad = [t for t in tree_leaves(tree) if isinstance(t, torch.Tensor) and t.requires_grad]
        inner = [t for t in needs_grad if t.grad_fn is not None]
        if inner:
            self._grad_hooks.append(register_multi_grad_hook(inner, fn))
        elif needs_grad:
            self._grad_hooks.append(register_multi_grad_hook(needs_grad, fn, mode="any"))

    def _enter_backward(self, name: str) -> None:
        if not self._reset_queued:  # a module whose input gradients never arrive must not outlive the backward
            torch.autograd.Variable._execution_engine.queue_callback(self._end_backward)
            self._reset_queued = True
        # A module and its last child share the output tensor, and their hooks fire parent last: keep the
        # parent below its descendants so the innermost module stays on top.
        for i, entered in enumerate(self.stack):
            if entered.startswith(name + ".") or (not name and entered):
                self.stack.insert(i, name)
                return
        self.stack.append(name)

    def _end_backward(self) -> None:
        self.stack.clear()
        self._reset_queued = False

    def _pop(self, name: str) -> None:
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i] == name:
                del self.stack[i]
                return

    def close(self) -> None:
        for handle in self._handles + self._grad_hooks:
            handle.remove()
        self._handles, self._grad_hooks = [], []
        self.stack.clear()


def ancestors(name: str) -> list[str]:
    """'a.b.c' → ['a.b.c', 'a.b', 'a', '']: a module and every module it is part of, up to the root."""
    chain = [name]
    while name:
        name = name.rpartition(".")[0]
        chain.append(name)
    return chain


def tensor_shapes(tree: Any) -> tuple[tuple[int, ...], ...]:
    """The shape of each tensor in `tree`, in order, as plain tuples of ints (a nested tensor is left out)."""
    shapes = []
    for t in tree_leaves(tree):
        if isinstance(t, torch.Tensor) and not t.is_nested:
            # a symbolic size (a run with symbolic sizes) at its hint, the size counted; read without a guard
            shape = tuple(d.node.hint if isinstance(d, torch.SymInt) else d for d in t.shape)
            if None not in shape:  # a size with no hint (data-dependent) is left out rather than made up
                shapes.append(shape)
    return tuple(shapes)


def _sizes(value: Any) -> str:
    """(3, 3) → '3'; (3, 5) → '3×5'; 'same' → 'same'."""
    if isinstance(value, (tuple, list)):
        return str(value[0]) if len(set(value)) == 1 else "×".join(str(v) for v in value)
    return str(value)


def module_type(module: torch.nn.Module) -> str:
    """The class name, or the name a quantized module gives itself: torch's quantized layers are all classes called
    `Linear`, `Conv2d`… in other packages, and say which they are through `_get_name()` (DynamicQuantizedLinear,
    QuantizedConv2d)."""
    kind = type(module).__name__
    if type(module).__module__.startswith(("torch.ao.nn.quantized", "torch.nn.quantized")):
        return str(module._get_name())  # type: ignore[no-untyped-call]
    return kind


def _has_all(module: torch.nn.Module, names: tuple[str, ...]) -> bool:
    if type(module).__getattr__ is torch.nn.Module.__getattr__:  # torch's own lookup never warns
        return all(hasattr(module, name) for name in names)
    with warnings.catch_warnings():  # diffusers warns on config attributes read through the module
        warnings.simplefilter("ignore", FutureWarning)
        return all(hasattr(module, name) for name in names)


def describe_module(module: torch.nn.Module) -> str:
    """A short description of a module's hyper-parameters: 'Conv2d 1→16, k3, s1, p1', 'Linear 10→20, no bias'."""
    kind = module_type(module)
    no_bias = getattr(module, "bias", True) is None
    # convolutions of any rank; a custom module with only some of these attributes (MimiConv1d) is described
    # by its extra_repr instead
    conv = _has_all(module, ("in_channels", "out_channels", "kernel_size", "stride", "padding"))
    if conv:
        parts = [f"{kind} {module.in_channels}→{module.out_channels}", f"k{_sizes(module.kernel_size)}"]
        parts += [f"s{_sizes(module.stride)}", f"p{_sizes(module.padding)}"]
        if any(d != 1 for d in getattr(module, "dilation", (1,))):
            parts.append(f"d{_sizes(module.dilation)}")
        if getattr(module, "groups", 1) != 1:
            parts.append(f"groups {module.groups}")
    elif all(isinstance(getattr(module, a, None), int) for a in ("in_features", "out_features")):  # Linear & co.
        parts = [f"{kind} {module.in_features}→{module.out_features}"]
    elif hasattr(module, "nx") and hasattr(module, "nf"):  # transformers' Conv1D (GPT-2 projections)
        parts = [f"{kind} {module.nx}→{module.nf}"]
    else:
        try:
            extra = module.extra_repr()
        except Exception:  # a custom extra_repr that fails must not stop the explanation
            extra = ""
        extra = extra if len(extra) <= 60 else extra[:59] + "…"
        return f"{kind} {extra}" if extra and "\n" not in extra else kind
    if no_bias:
        parts.append("no bias")
    return ", ".join(parts)
