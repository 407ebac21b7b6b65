"""Decode steps costed from one run with the cache length symbolic (count_generate on fake tensors).

Decode step after step runs the same ops on a KV cache one token longer. So one decode forward runs with the
cache's length a symbol of a torch ShapeEnv (symbolic/trace.py), every op recorded as a recipe; a step over a cache
of c tokens is then that forward's calls, each costed by its formula at c — the ops and the costs a count of that
step makes, for every c where the run's guards hold (a sliding window's crop, a kernel chosen by length: any branch
on the length is a guard). Where one fails, count_generate runs every step instead.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable
from typing import Any

import sympy
import torch

from ..core.conventions import resolve, with_attention
from ..core.cost import OpCall
from ..counter import counting_on_fakes
from ..engine.prepare import prepare, running_on
from ..formulas.pricing import cost_call
from ..symbolic.trace import Trace, TraceBroken

CONTEXT = "context"


class DecodeTrace:
    """One decode forward with the cache length symbolic; `calls_at(c)` are a step's records over c cached tokens."""

    def __init__(
        self, trace: Trace, calls: list[OpCall], keys: list[Any], cache_bytes: Any, module_calls: Counter[str]
    ) -> None:
        self.trace, self.calls, self.keys, self._cache_bytes = trace, calls, keys, cache_bytes
        self.module_calls = module_calls  # each module's calls in one step
        used = {key for key in keys if key is not None}
        self._varying = {key for key in used if _has_symbols(trace.recipes[key])}
        self._fixed = {key: trace.cost_at(key) for key in used - self._varying}

    def holds_at(self, context: int) -> bool:
        return self.trace.holds_at({CONTEXT: context})

    def calls_at(self, context: int) -> list[OpCall]:
        sizes = {CONTEXT: context}
        costed = dict(self._fixed)  # recipes with no size in the cache length cost the same at every step
        costed.update((key, self.trace.cost_at(key, sizes)) for key in self._varying)
        return [
            call
            if key is None
            else call._replace(cost=costed[key][1], work=costed[key][0], shapes=costed[key][2], dtype=costed[key][3])
            for call, key in zip(self.calls, self.keys, strict=True)
        ]

    def cache_bytes(self, context: int) -> int:
        """Bytes of the cache after a step over `context` cached tokens (the step appends one)."""
        return int(self._cache_bytes.xreplace({self.trace.symbols[CONTEXT]: context}))


def trace_decode(
    model: torch.nn.Module,
    batch: int,
    first_context: int,
    convention: Any,
    attention: str | None,
    make_cache: Callable[[], Any],
) -> DecodeTrace | None:
    """The decode forward over a cache of a symbolic length (its hint: `first_context`), or None where such a run
    cannot be made (the steps are then counted one by one)."""
    rules = resolve(convention)
    if attention is not None:
        rules = with_attention(rules, attention)
    if rules.masked:  # masked attention counts the pairs mask values keep: no symbolic run follows values
        return None
    shapes = _cache_shapes(model, batch, make_cache)
    if shapes is None:
        return None
    trace = Trace({})
    trace.cost = functools.partial(cost_call, rules)
    context = trace.size(CONTEXT, first_context)
    state = prepare(model, (), {}, "meta", trace.fake)[0] or {}
    cache = make_cache()
    with torch.no_grad(), trace.fake:
        for layer, (b, heads, width, dtype) in enumerate(shapes):
            cached = torch.empty(b, heads, context, width, dtype=dtype)
            cache.update(cached, torch.empty(b, heads, context, width, dtype=dtype), layer)
        kwargs = {
            "input_ids": torch.zeros(batch, 1, dtype=torch.long),
            "past_key_values": cache,
            "position_ids": torch.zeros(batch, 1, dtype=torch.long),
            "logits_to_keep": 1,
            "use_cache": True,
            "return_dict": True,
        }
    try:
        with torch.no_grad(), trace.fake, counting_on_fakes(model, trace.fake, rules, trace=trace) as session:
            assert session._mode is not None
            with running_on(model, state):
                model(**kwargs)
            calls = list(session._mode.calls)
            assert session._stack is not None
            module_calls = Counter(session._stack.calls)
    except (TraceBroken, RuntimeError, TypeError, ValueError, AssertionError):  # noqa: BLE001 - counted step by step
        return None
    if not trace.symbolic():
        return None
    keys = [trace.recipe_of.get(id(call)) for call in calls]
    with trace.bookkeeping():
        after = sum(_expression(t.numel()) * t.element_size() for t in _cache_tensors(cache))
    return DecodeTrace(trace, calls, keys, sympy.sympify(after), module_calls)


def _cache_shapes(model: torch.nn.Module, batch: int, make_cache: Callable[[], Any]) -> list[Any] | None:
    """(batch, heads, width, dtype) of each layer's cached keys, from the model's config (transformers' names); None
    when it does not say (the steps are then counted one by one; a wrong guess fails the traced run the same way)."""
    config = getattr(model, "config", None)
    config = getattr(config, "get_text_config", lambda: config)()
    layers, heads = getattr(config, "num_hidden_layers", None), getattr(config, "num_attention_heads", None)
    hidden = getattr(config, "hidden_size", None)
    if not isinstance(layers, int) or not isinstance(heads, int) or not isinstance(hidden, int):
        return None
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    width = getattr(config, "head_dim", None) or hidden // heads
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    return [(batch, int(kv_heads), int(width), dtype)] * layers


def _has_symbols(recipe: Any) -> bool:
    """Whether any size of a recipe is an expression in a symbol (the cache length)."""
    found = False

    def visit(x: Any) -> None:
        nonlocal found
        if isinstance(x, sympy.Basic):
            found = found or bool(x.free_symbols)
        elif isinstance(x, (tuple, list)):
            for item in x:
                visit(item)
        elif isinstance(x, dict):
            for item in x.values():
                visit(item)

    visit((recipe.out, recipe.args, recipe.extra))
    return found


def _cache_tensors(cache: Any) -> list[torch.Tensor]:
    return [
        t
        for layer in getattr(cache, "layers", ()) or ()
        for t in (getattr(layer, "keys", None), getattr(layer, "values", None))
        if isinstance(t, torch.Tensor)
    ]


def _expression(n: Any) -> Any:
    return n.node.expr if isinstance(n, torch.SymInt) else sympy.Integer(int(n))
