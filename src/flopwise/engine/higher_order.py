"""Higher-order operators (HOPs: `flex_attention`, `torch.cond`, `while_loop`, `invoke_subgraph`, …) under the
counting mode.

A HOP reaches the mode's `__torch_dispatch__` with the mode popped. Each is handled in one of three ways:

- flex attention (forward and backward) is costed by a formula (`ops/attention.py`) and then run without the
  mode, so the unfused eager implementation's many small ops are not counted in its place;
- `cond` and `while_loop` run the branch / body that executes, under the mode, so its ops are counted where
  they ran; when the predicate is data-dependent (fake and meta tensors) `cond` counts the costlier branch and
  says so in the warnings, `while_loop` is reported unsupported;
- any other HOP runs its own implementation with each callable argument (its subgraphs) wrapped to run under
  the mode; if that fails it runs as is and is reported unsupported with where it ran.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import torch

from ..core.cost import OpCall, Work
from ..formulas.attention import flex_attention_work
from ..formulas.attention_backward import flex_attention_backward_work
from ..formulas.registry import lookup, op_name, specs
from .mask_census import block_mask_pairs


class CountingMode(Protocol):
    """What a higher-order operator needs of the dispatch mode (named here: engine/dispatch.py imports this module)."""

    calls: list[OpCall]
    unsupported: Any  # op name → Counter of modules
    warnings: list[str]
    modules: Any  # the ModuleStack
    overrides: dict[str, Any]
    convention: Any  # the Convention (attention="masked" reads its block mask)
    values: Any  # the Values of a shape-only count, or None (a BlockMask's block counts follow from the inputs)

    def __enter__(self) -> Any: ...
    def __exit__(self, exc_type: Any, exc: Any, traceback: Any, /) -> Any: ...
    def record_work(self, name: str, work: Work, inputs: list[torch.Tensor], out: Any) -> None: ...
    def record_unsupported(self, name: str) -> None: ...


def hop_name(func: torch._ops.HigherOrderOperator) -> str:
    return f"higher_order.{func._name}"


def run_hop(
    mode: CountingMode, func: torch._ops.HigherOrderOperator, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    name = func._name  # by name: importing torch._higher_order_ops would slow down `import flopwise`
    if name == "flex_attention":
        return _flex(mode, func, args, kwargs)
    if name == "flex_attention_backward":
        work = flex_attention_backward_work(*args[:6])
        return _costed(mode, func, work, args, kwargs)
    if name == "cond":
        return _cond(mode, *args, **kwargs)
    if name == "while_loop":
        return _while_loop(mode, func, args, kwargs)
    if name == "out_dtype":
        return _out_dtype(mode, func, args, kwargs)
    return _generic(mode, func, args, kwargs)


@contextlib.contextmanager
def fullgraph_tolerated() -> Iterator[None]:
    """flex_attention (like torch.cond and while_loop) wraps its HOP in `torch.compile(fullgraph=True)`. A
    dispatch mode makes dynamo skip that frame and run it eagerly, which is how the HOP reaches the mode; but
    flex_attention then fails with "torch.compile with fullgraph=True found no compiled frames". Within the
    count, dynamo's fullgraph frame counter is kept active, which makes each such compile a nested one that
    does not check (torch's `_hop_compile_and_call` does the same for cond and while_loop)."""
    from torch._C._dynamo.eval_frame import set_fullgraph_compiled_frame_count

    before = set_fullgraph_compiled_frame_count(0)  # any value ≥ 0 activates the counter at 0; −1 turns it off
    try:
        yield
    finally:
        set_fullgraph_compiled_frame_count(before)


def _costed(
    mode: CountingMode, func: torch._ops.HigherOrderOperator, work: Work, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    out = func(*args, **kwargs)
    mode.record_work(hop_name(func), work, [a for a in args if isinstance(a, torch.Tensor)], out)
    return out


def _flex(
    mode: CountingMode, func: torch._ops.HigherOrderOperator, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    query, key, value, score_mod, block_mask, *_ = args
    score_buffers = args[7] if len(args) > 7 else kwargs.get("score_mod_other_buffers", ())
    mask_buffers = args[8] if len(args) > 8 else kwargs.get("mask_mod_other_buffers", ())
    # score_mod and mask_mod run once per query–key pair: cost one pair on 0-d tensors, as the kernel sees them
    precision = torch.float64 if query.dtype == torch.float64 else torch.float32
    score = torch.zeros((), dtype=precision, device=query.device)
    index = torch.zeros((), dtype=torch.int32, device=query.device)
    per_pair = {
        "score_mod": _one_call_flops(mode, score_mod, (score, index, index, index, index, *score_buffers)),
        "mask_mod": _one_call_flops(mode, block_mask[-1], (index, index, index, index, *mask_buffers)),
    }
    blocks = None
    if mode.convention.masked:
        heads = query.shape[-3]
        batch = query.numel() // (heads * query.shape[-2] * query.shape[-1])
        blocks = block_mask_pairs(block_mask, batch, heads, mode.values)
        if blocks is None and "flex_attention: BlockMask values unknown, counted dense" not in mode.warnings:
            mode.warnings.append("flex_attention: BlockMask values unknown, counted dense")
    return _costed(mode, func, flex_attention_work(query, key, value, per_pair, blocks), args, kwargs)


def _one_call_flops(mode: CountingMode, fn: Callable[..., Any], args: tuple[Any, ...]) -> int | str:
    """Non-contraction FLOPs of one call of `fn` (ops it cannot cost stay reported); or why it could not run."""
    start = len(mode.calls)
    try:
        with mode:
            fn(*args)
    except Exception as error:  # e.g. a captured CPU tensor indexed with a meta index
        return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    finally:
        probe = mode.calls[start:]
        del mode.calls[start:]
    return sum(f.term.value for call in probe for f in call.work.flops)


def _cond(
    mode: CountingMode, pred: Any, true_fn: Callable[..., Any], false_fn: Callable[..., Any], operands: Any
) -> Any:
    try:
        take = bool(pred)
    except Exception:  # a fake or meta predicate has no value
        return _costlier_branch(mode, true_fn, false_fn, tuple(operands))
    with mode:
        return (true_fn if take else false_fn)(*operands)


def _costlier_branch(
    mode: CountingMode, true_fn: Callable[..., Any], false_fn: Callable[..., Any], operands: tuple[Any, ...]
) -> Any:
    start, unsupported = len(mode.calls), _copy(mode.unsupported)
    runs = []
    for branch in (true_fn, false_fn):
        with mode:
            out = branch(*operands)
        calls = mode.calls[start:]
        runs.append(
            (sum(c.cost.flops for c in calls), sum(c.cost.macs for c in calls), out, calls, _copy(mode.unsupported))
        )
        del mode.calls[start:]
        mode.unsupported.clear()
        mode.unsupported.update(_copy(unsupported))
    kept = 0 if runs[0][:2] >= runs[1][:2] else 1
    _, _, out, calls, after = runs[kept]
    mode.calls.extend(calls)
    mode.unsupported.clear()
    mode.unsupported.update(after)
    mode.warnings.append(
        f"torch.cond in {mode.modules.current or '(root)'!r}: the predicate has no value in fake/meta mode; "
        f"counted the costlier branch ({'true' if kept == 0 else 'false'}_fn)"
    )
    return out


def _copy(unsupported: dict[str, Counter[str]]) -> dict[str, Counter[str]]:
    return {op: Counter(where) for op, where in unsupported.items()}


def _while_loop(
    mode: CountingMode, func: torch._ops.HigherOrderOperator, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    cond_fn, body_fn, carried, additional = args[:4]
    start = len(mode.calls)
    try:
        with mode:  # the loop of while_loop's eager implementation, its body counted on each turn
            values, turns = tuple(carried), 0
            while bool(cond_fn(*values, *additional)):
                values, turns = tuple(body_fn(*values, *additional)), turns + 1
    except Exception:  # a data-dependent condition on fake or meta tensors: the number of turns is unknown
        del mode.calls[start:]
        where = mode.modules.current
        mode.record_unsupported(hop_name(func))
        mode.warnings.append(
            f"torch while_loop in {where or '(root)'!r}: its condition has no value in fake/meta mode; "
            "the loop was not counted (count it in real mode)"
        )
        return tuple(v.clone() if isinstance(v, torch.Tensor) else v for v in carried)
    if not turns:  # like the eager implementation: outputs never alias the inputs
        return tuple(v.clone() if isinstance(v, torch.Tensor) else v for v in values)
    return values


def _out_dtype(
    mode: CountingMode, func: torch._ops.HigherOrderOperator, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """out_dtype(op, dtype, *args): `op` computed with a wider result (int8 × int8 → int32); costed by op's formula."""
    op, _, *op_args = args
    fn = lookup(op_name(op), mode.overrides) if isinstance(op, torch._ops.OpOverload) else False
    if fn is False:
        return _generic(mode, func, args, kwargs)
    out = func(*args, **kwargs)
    work = fn(*specs((out, *op_args))) if callable(fn) else Work()  # None: an override ignores the op
    mode.record_work(op_name(op), work, [a for a in op_args if isinstance(a, torch.Tensor)], out)
    return out


def _generic(
    mode: CountingMode, func: torch._ops.HigherOrderOperator, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    def counted(fn: Callable[..., Any]) -> Callable[..., Any]:
        def run(*a: Any, **k: Any) -> Any:
            with mode:
                return fn(*a, **k)

        return run

    wrapped = tuple(counted(a) if callable(a) and not isinstance(a, torch.Tensor) else a for a in args)
    start, unsupported = len(mode.calls), _copy(mode.unsupported)
    if any(w is not a for w, a in zip(wrapped, args, strict=True)):
        try:
            return func(*wrapped, **kwargs)
        except Exception:  # its implementation does not accept our wrappers: run it as is, uncounted
            del mode.calls[start:]
            mode.unsupported.clear()
            mode.unsupported.update(unsupported)
    out = func(*args, **kwargs)
    mode.record_unsupported(hop_name(func))
    return out
