"""One counted run with symbolic sizes: every op's cost at any size, from a single forward.

The named input sizes become symbols of a torch `ShapeEnv`, and the model runs once on fake tensors whose sizes
are expressions in them (`s0`, `2*s0 + 1`). Each op the count records is kept as a *recipe*: its formula and its
arguments, tensors described by symbolic shape, stride, dtype and device. Evaluating the recipes at other sizes
(`Trace.values`) gives, op by op, exactly what a count at those sizes would record, because:

- the op sequence is the same at every size where torch's guards hold: any branch on a size, in the model's
  Python or in torch (a kernel chosen by length, a broadcast of size 1), is recorded as a guard, and a size that
  breaks one (or a size of 1, which torch never makes symbolic) is counted directly instead;
- formulas see plain integer shapes at each size, the same ones they see in a direct count.

What cannot be traced (a data-dependent value, a higher-order operator, sparse or nested tensors) raises
`TraceBroken`, and the fit counts each size directly.
The count of the traced run itself is made at the sizes' real values (the guards' hints): it is the count of
the given inputs.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections import Counter
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch._subclasses.fake_tensor import FakeTensor
from torch.utils._pytree import tree_map

from ..shapes_only.mode import CpuFakeTensorMode

SymbolicSizes = dict[str, tuple[Any, ...]]  # name → where it labels the inputs (symbolic.Dim.where)
Values = tuple[tuple[Any, int], ...]  # (symbol, size) pairs: one point at which recipes are costed


class Shaped(NamedTuple):
    """A tensor of a recipe: which tensor of the call it is (identity matters: `x * x` reads x once), and its
    metadata as expressions in the symbols."""

    number: int
    shape: tuple[Any, ...]
    stride: tuple[Any, ...]
    dtype: torch.dtype
    device: torch.device


class Sized(NamedTuple):
    """A size argument (a SymInt) of a recipe: an expression in the symbols."""

    expr: Any


class Recipe(NamedTuple):
    plan: Any  # the formula (or capture's UNKNOWN / ZERO plan)
    out: Any
    args: tuple[Any, ...]
    extra: dict[str, Any]
    inputs: tuple[int, ...]  # tensor indices read, in the order the count lists them
    outputs: tuple[int, ...]
    mask: tuple[str, int | None]


class _GuardsSuppressed(contextlib.AbstractContextManager[None]):
    """`ShapeEnv.suppress_guards()` as one reusable object (a stack: it nests). It is entered around every op the
    count keeps, where the generator-based context manager and the event recording around its two steps cost more
    than the suppression itself; this ShapeEnv records no events, so the steps are called unwrapped."""

    def __init__(self, env: Any) -> None:
        self.env = env
        enter, leave = type(env)._suppress_guards_enter, type(env)._suppress_guards_exit
        recorded = env.should_record_events
        self._enter = enter if recorded else getattr(enter, "__wrapped__", enter)
        self._exit = leave if recorded else getattr(leave, "__wrapped__", leave)

    def __enter__(self) -> None:
        self._enter(self.env)

    def __exit__(self, *raised: object) -> None:
        self._exit(self.env)


@functools.cache
def _shape_env_class(base: type) -> type:
    """torch's ShapeEnv, but where a symbol or guard was made is not looked up: that location is only for torch's
    own messages, and finding it the first time imports torch._inductor (about a second) to know its files."""

    class FlopwiseShapeEnv(base):  # type: ignore[misc]
        def _get_stack_summary(self, is_debug: bool = False, framework_loc: str | None = None) -> Any:
            return super()._get_stack_summary(is_debug, framework_loc or "flopwise trace")

    return FlopwiseShapeEnv


class Trace:
    """Recipes of one symbolic run, how often each ran, and the guards they hold under."""

    def __init__(self, dims: dict[str, Any]) -> None:
        """`dims`: name → symbolic.Dim (the input dimensions it labels)."""
        from torch.fx.experimental.symbolic_shapes import ShapeEnv

        self.dims = dims
        self.cost: Callable[..., Any] | None = None  # capture.cost_call under the count's convention, once set

        self.env = _shape_env_class(ShapeEnv)(duck_shape=False)  # two names of equal size are two symbols
        self.fake = CpuFakeTensorMode(shape_env=self.env, allow_non_fake_inputs=True)
        # torch's cache of fake kernels' outputs is kept per ShapeEnv, and this one serves a single run whose
        # repeated ops are replayed (replay.py): making its entries is all it would cost
        self.fake.cache_enabled = False
        self.symbols: dict[str, Any] = {}  # name → sympy symbol
        self.hints: dict[str, int] = {}
        self.recipes: dict[Any, Recipe] = {}
        self.uses: Counter[Any] = Counter()
        self.recipe_of: dict[int, Any] = {}  # id of a cost record → its recipe key (replays repeat records)
        self._suppressed = _GuardsSuppressed(self.env)

    def size(self, name: str, hint: int) -> torch.SymInt:
        """The SymInt standing for the named size (its hint: the size in the given inputs)."""
        from torch._dynamo.source import ConstantSource  # creating a ShapeEnv has imported torch._dynamo already
        from torch.fx.experimental.symbolic_shapes import DimDynamic

        source = ConstantSource(name)
        if name not in self.symbols:
            self.symbols[name] = self.env.create_symbol(hint, source=source, dynamic_dim=DimDynamic.DYNAMIC)
            self.hints[name] = hint
        symbol = self.symbols[name]
        made = self.env.create_symintnode(symbol, hint=self.hints[name], source=source)
        assert isinstance(made, torch.SymInt)  # a symbol, not a constant: create_symbol keeps sizes ≥ 2 symbolic
        return made

    def inputs(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The call's inputs with each labelled dimension symbolic (other inputs as given)."""
        labelled: dict[Any, dict[int, str]] = {}
        for name, dim in self.dims.items():
            for key, axis in dim.where:
                labelled.setdefault(key, {})[axis] = name
        new_args, new_kwargs = list(args), dict(kwargs)
        for key, sizes in labelled.items():
            source: Any = new_kwargs if isinstance(key, str) else new_args
            t = source[key]
            source[key] = self.symbolic_input(t, {axis % t.dim(): name for axis, name in sizes.items()})
        return tuple(new_args), new_kwargs

    def symbolic_input(self, t: torch.Tensor, sizes: dict[int, str]) -> torch.Tensor:
        """A fake copy of input `t` whose dimensions `sizes` (dim → name) are symbolic."""
        shape = [self.size(sizes[d], int(n)) if d in sizes else int(n) for d, n in enumerate(t.shape)]
        with self.fake:
            return torch.empty(shape, dtype=t.dtype, device=t.device if not t.is_meta else "cpu")

    def bookkeeping(self) -> contextlib.AbstractContextManager[None]:
        """The count's own use of sizes (costs at the hints, memory) must not become guards of the trace."""
        return self._suppressed

    def record(
        self,
        plan: Any,
        out: Any,
        args: tuple[Any, ...],
        extra: dict[str, Any],
        inputs: list[torch.Tensor],
        outputs: list[torch.Tensor],
        mask: tuple[str, int | None],
    ) -> Any:
        """The call's recipe key (its recipe kept once); TraceBroken when an argument cannot be described."""
        ids: dict[int, int] = {}
        recipe = Recipe(
            plan,
            _describe(out, ids),
            _describe(args, ids),
            _describe(extra, ids),
            tuple(ids[id(t)] for t in inputs),
            tuple(ids[id(t)] for t in outputs),
            mask,
        )
        key = (
            id(plan) if callable(plan) else plan,
            _frozen((recipe.out, recipe.args, recipe.extra)),
            recipe.inputs,
            recipe.outputs,
            mask,
        )
        try:
            hash(key)
        except TypeError as error:  # an argument of a type no key can hold
            raise TraceBroken(f"an op's arguments cannot be traced ({error})") from None
        self.recipes.setdefault(key, recipe)
        self.uses[key] += 1
        return key

    def replayed(self, taped: Any, made: Any) -> None:
        """A replay repeated the taped record `taped` as `made`: its recipe ran once more (a view has none)."""
        key = self.recipe_of.get(id(taped))
        if key is not None:
            self.uses[key] += 1
            self.recipe_of[id(made)] = key

    def cost_at(self, key: Any, sizes: dict[str, int] | None = None) -> Any:
        """`cost(plan, out, args, …)` of one recipe at `sizes` (by default the given inputs'): work, cost, shapes."""
        assert self.cost is not None
        recipe = self.recipes[key]
        return self.cost(recipe.plan, *self._made(recipe, self._values(sizes or self.hints)), recipe.mask)

    def totals(self, sizes: dict[str, int]) -> tuple[int, int, int, int]:
        """(MACs, FLOPs, bytes read, bytes written) of the traced run at `sizes`: each recipe costed there."""
        assert self.cost is not None
        values = self._values(sizes)
        macs = flops = read = written = 0
        for key, recipe in self.recipes.items():
            _, c, _, _ = self.cost(recipe.plan, *self._made(recipe, values), recipe.mask)
            n = self.uses[key]
            macs, flops = macs + n * c.macs, flops + n * c.flops
            read, written = read + n * c.bytes_read, written + n * c.bytes_written
        return macs, flops, read, written

    def _values(self, sizes: dict[str, int]) -> Values:
        return tuple((self.symbols[n], sizes[n]) for n in self.symbols)

    @staticmethod
    def _made(recipe: Recipe, values: Values) -> tuple[Any, ...]:
        """(out, args, extra, inputs, outputs) of a recipe as meta tensors of these sizes."""
        made: dict[int, torch.Tensor] = {}
        out, args, extra = (_make(part, values, made) for part in (recipe.out, recipe.args, recipe.extra))
        return out, args, extra, [made[i] for i in recipe.inputs], [made[i] for i in recipe.outputs]

    def symbolic(self) -> bool:
        """Whether every named size became a symbol (not a constant torch specialized it to)."""
        import sympy

        return all(isinstance(s, sympy.Symbol) for s in self.symbols.values())

    def holds_at(self, sizes: dict[str, int]) -> bool:
        """Whether the traced run stands for these sizes: every size ≥ 2 (torch never makes 0 or 1 symbolic) and
        every guard recorded while the model ran holds."""
        if any(sizes[n] < 2 for n in self.symbols):
            return False
        values = {self.symbols[n]: sizes[n] for n in self.symbols}
        return all(bool(guard.expr.xreplace(values)) for guard in self.env.guards)

    def guards(self) -> list[str]:
        """The guards, in the sizes' names (for the explanation)."""
        names = {symbol: _symbol(name) for name, symbol in self.symbols.items()}
        return [str(guard.expr.xreplace(names)) for guard in self.env.guards]


class TraceBroken(RuntimeError):
    """The run met what a run with symbolic sizes cannot stand for: the fit counts each size instead."""


def _symbol(name: str) -> Any:
    import sympy

    return sympy.Symbol(name, integer=True, positive=True)


def _expr(value: Any) -> Any:
    if isinstance(value, torch.SymInt):
        return value.node.expr
    if isinstance(value, (torch.SymFloat, torch.SymBool)):
        raise TraceBroken("a symbolic float or bool argument")
    return value


def _describe(tree: Any, ids: dict[int, int]) -> Any:
    def one(x: Any) -> Any:
        if isinstance(x, torch.Tensor):
            if x.layout != torch.strided or x.is_nested or x.is_quantized:
                raise TraceBroken(f"a {x.layout} tensor")  # formulas of these read more than shapes
            index = ids.setdefault(id(x), len(ids))
            device = x.fake_device if type(x) is FakeTensor else x.device
            return Shaped(index, tuple(map(_expr, x.shape)), tuple(map(_expr, x.stride())), x.dtype, device)
        return Sized(x.node.expr) if isinstance(x, torch.SymInt) else _expr(x)

    return tree_map(one, tree)


def _frozen(tree: Any) -> Any:
    """`tree` hashable: lists (of sizes) as tuples, dicts as their items."""
    if isinstance(tree, (list, tuple)) and not isinstance(tree, (Shaped, Sized)):
        return tuple(_frozen(x) for x in tree)
    if isinstance(tree, dict):
        return tuple((k, _frozen(v)) for k, v in tree.items())
    return tree


def _make(tree: Any, values: Values, made: dict[int, torch.Tensor]) -> Any:
    def one(x: Any) -> Any:
        if isinstance(x, Shaped):
            if x.number not in made:
                shape = [_value(d, values) for d in x.shape]
                stride = [_value(d, values) for d in x.stride]
                with torch._C._DisableTorchDispatch():  # a plain meta tensor, also while the run's fake mode is on
                    made[x.number] = torch.empty_strided(shape, stride, dtype=x.dtype, device="meta")
            return made[x.number]
        if isinstance(x, Sized):
            return _value(x.expr, values)
        return x

    return _mapped(tree, one)


def _mapped(tree: Any, one: Callable[[Any], Any]) -> Any:
    """`tree_map(one, tree)` over the tuples, lists and dicts `_describe` left (a recipe's arguments), with Shaped
    and Sized as leaves: a fit costs every recipe at several sizes, and torch's pytree walk was most of that."""
    kind = type(tree)
    if kind is tuple or kind is list:
        return kind(_mapped(x, one) for x in tree)
    if kind is dict:
        return {k: _mapped(v, one) for k, v in tree.items()}
    if isinstance(tree, tuple) and kind not in (Shaped, Sized):  # a named tuple, as tree_map keeps one
        return kind(*(_mapped(x, one) for x in tree))
    return one(tree)


@functools.lru_cache(maxsize=1 << 14)
def _value(expr: Any, values: Values) -> int:
    """An expression's value at these (symbol, size) pairs: evaluated once, as one expression serves many shapes."""
    if isinstance(expr, int):
        return expr
    return fast(dict(values)) if (fast := _arithmetic(expr)) is not None else int(expr.xreplace(dict(values)))


@functools.lru_cache(maxsize=1 << 12)
def _arithmetic(expr: Any) -> Callable[[dict[Any, int]], int] | None:
    """Sums, products and whole powers of integers and symbols as plain integer arithmetic (sympy's substitution is
    far slower, and a sweep evaluates every shape at every size); None for any other expression (FloorDiv, Mod)."""
    if expr.is_Integer or expr.is_Symbol:
        return (lambda values: int(expr)) if expr.is_Integer else (lambda values: values[expr])
    power = expr.is_Pow and expr.exp.is_Integer and expr.exp >= 0
    parts = [_arithmetic(a) for a in expr.args] if power or expr.is_Add or expr.is_Mul else [None]
    combine: Callable[[list[int]], int] = (lambda xs: xs[0] ** xs[1]) if power else sum if expr.is_Add else math.prod
    return None if None in parts else lambda values: combine([part(values) for part in parts])  # type: ignore[misc]
