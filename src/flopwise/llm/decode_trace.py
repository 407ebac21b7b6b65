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
from ..core.cost import Cost, OpCall, summed
from ..counter import counting_on_fakes
from ..engine.prepare import prepare, running_on
from ..formulas.pricing import cost_call
from ..symbolic.trace import Trace, TraceBroken
from .cache import cache_argument

CONTEXT = "context"


class DecodeTrace:
    """One decode forward with the cache length symbolic; `step_at(c)`: a step's records over c cached tokens."""

    def __init__(
        self, trace: Trace, calls: list[OpCall], keys: list[Any], cache_bytes: Any, module_calls: Counter[str]
    ) -> None:
        self.trace, self._cache_bytes = trace, cache_bytes
        self.module_calls = module_calls  # each module's calls in one step
        used = {key for key in keys if key is not None}
        varying = {key for key in used if _has_symbols(trace.recipes[key])}
        fixed = {key: trace.cost_at(key) for key in used - varying}
        # recipes with no size in the cache length cost the same at every step: those calls are made once
        self._template = [
            call if key is None or key in varying else _costed(call, fixed[key])
            for call, key in zip(calls, keys, strict=True)
        ]
        self._varying = [(i, key) for i, key in enumerate(keys) if key in varying]
        self._fixed_cost = summed(self._template[i].cost for i in range(len(keys)) if keys[i] not in varying)
        self._cache_bytes_terms = _polynomial(cache_bytes, trace.symbols[CONTEXT])

    def holds_at(self, context: int) -> bool:
        return self.trace.holds_at({CONTEXT: context})

    def step_at(self, context: int) -> tuple[list[OpCall], Cost]:
        """The records of a step over `context` cached tokens, and their total cost."""
        sizes = {CONTEXT: context}
        calls, costed = list(self._template), {}
        for i, key in self._varying:
            if key not in costed:
                costed[key] = self.trace.cost_at(key, sizes)
            calls[i] = _costed(calls[i], costed[key])
        return calls, self._fixed_cost + summed(calls[i].cost for i, _ in self._varying)

    def cache_bytes(self, context: int) -> int:
        """Bytes of the cache after a step over `context` cached tokens (the step appends one)."""
        if self._cache_bytes_terms is None:
            return int(self._cache_bytes.xreplace({self.trace.symbols[CONTEXT]: context}))
        total = 0
        for coefficient in self._cache_bytes_terms:  # Horner's rule on integer coefficients: exact
            total = total * context + coefficient
        return total


def _costed(call: OpCall, costed: Any) -> OpCall:
    """A traced call with the work, cost, shapes and dtype of its recipe costed at one cache length."""
    work, cost, shapes, dtype = costed
    return OpCall(call.op, call.module, cost, work, shapes, dtype)


def _polynomial(expression: Any, symbol: Any) -> list[int] | None:
    """The integer coefficients of a polynomial in `symbol`, highest power first; None when it is not one."""
    try:
        coefficients = sympy.Poly(expression, symbol).all_coeffs()
    except sympy.PolynomialError:
        return None
    if not all(c.is_Integer for c in coefficients):
        return None
    return [int(c) for c in coefficients]


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
    try:
        with torch.no_grad(), trace.fake, counting_on_fakes(model, trace.fake, rules, trace=trace) as session:
            assert session._mode is not None and session._stack is not None
            # the cache, of a symbolic length, is made under the count so that each layer's update replays the
            # first's; its ops and the inputs' are not the step's
            for layer, (b, heads, width, dtype) in enumerate(shapes):
                cached = torch.empty(b, heads, context, width, dtype=dtype)
                cache.update(cached, torch.empty(b, heads, context, width, dtype=dtype), layer)
            kwargs = {
                "input_ids": torch.zeros(batch, 1, dtype=torch.long),
                cache_argument(model): cache,
                "position_ids": torch.zeros(batch, 1, dtype=torch.long),
                "logits_to_keep": 1,
                "use_cache": True,
                "return_dict": True,
            }
            made = len(session._mode.calls)
            with running_on(model, state):
                model(**kwargs)
            calls = session._mode.calls[made:]
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
