"""Op → formula registry, and the explicit list of ops that do no arithmetic.

A formula is a pure function of the op's arguments' shapes (and its non-tensor arguments): it is called as
`fn(result, *args, **kwargs)` with the op's output first and returns a `Work`. Every tensor reaches it as a
`TensorSpec` (shape, dtype, layout: never the values), so that promise is kept by construction. Registering by overload
packet covers every overload (`aten.add.Tensor`, `.Scalar`, `.out`); in-place ones (`aten.add_`) use the functional's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.utils._pytree import tree_map_only

from ..core.cost import Work

Formula = Callable[..., Work]
OpLike = Any  # torch._ops.OpOverloadPacket | torch._ops.OpOverload | str

FORMULAS: dict[str, Formula] = {}
ZERO_COST: dict[str, str] = {}  # op name → why it does no arithmetic (it still moves bytes unless it is a view)
# op name → the op's output from its arguments' shapes, for fake and meta tensors whose meta kernel refuses what
# the real (CPU) kernel accepts; it returns None where the meta kernel is right.
OUTPUT_RULES: dict[str, Callable[..., Any]] = {}
# op name → why fake and meta tensors cannot stand in for it (its result has no fake form: a quantized tensor);
# a shape-only count that meets it counts again in real mode, with a warning (count.py)
REAL_ONLY: dict[str, str] = {}
_changes = [0]  # registrations so far: what a cost kept across counts was computed under (shortcuts/replay.py)


def version() -> tuple[int, ...]:
    """The registry's state: a memo of costs is valid only under the version it was made with (the sizes too, so
    that an entry taken out of a table directly still changes it)."""
    return _changes[0], len(FORMULAS), len(ZERO_COST), len(REAL_ONLY), len(OUTPUT_RULES)


def op_name(op: OpLike) -> str:
    """`aten.mm`, `aten.add_` — the overload packet's qualified name without the `.default` overload."""
    if isinstance(op, str):
        return op
    packet: Any = getattr(op, "overloadpacket", op)
    return str(packet._qualified_op_name).replace("::", ".")


def nested_sizes(t: Any) -> tuple[tuple[int, ...], ...] | None:
    """The sizes of a nested tensor's components — e.g. ((5, 16), (3, 16)) for two sequences of 5 and 3 tokens —
    or None for a regular tensor. They are metadata (the nested tensor's size table), not its data."""
    if not (isinstance(t, torch.Tensor) and t.is_nested and t.layout == torch.strided):
        return None  # jagged nested tensors dispatch as regular tensors on their values
    return tuple(tuple(int(d) for d in row) for row in t._nested_tensor_size().tolist())


def padded_shape(t: torch.Tensor) -> tuple[int, ...]:
    """A tensor's shape; for a nested tensor, the shape it has once padded: (components, largest sizes…)."""
    sizes = nested_sizes(t)
    if sizes is None:
        return tuple(int(d) for d in t.shape)
    return (len(sizes), *(max(column, default=0) for column in zip(*sizes, strict=True)))


_SPARSE = (torch.sparse_coo, torch.sparse_csr, torch.sparse_csc, torch.sparse_bsr, torch.sparse_bsc)
_BLOCKED = (torch.sparse_bsr, torch.sparse_bsc)


def stored_values(t: torch.Tensor) -> tuple[int, tuple[int, int] | None] | None:
    """(values stored, block size) of a sparse tensor — its metadata (the length of its value array), not its
    values — or None for a strided tensor. A block-sparse tensor stores whole blocks, zeros inside them too, so
    its stored values are blocks·bh·bw; COO, CSR and CSC store one value per non-zero (times any dense dims)."""
    if t.layout not in _SPARSE:
        return None
    values = t._values() if t.layout == torch.sparse_coo else t.values()
    block = (int(values.shape[1]), int(values.shape[2])) if t.layout in _BLOCKED else None
    return int(values.numel()), block


def stored_bytes(t: torch.Tensor) -> int:
    """Bytes a tensor holds: every element for a strided tensor; values and indices for a sparse one."""
    if t.layout not in _SPARSE:
        return int(t.numel()) * t.element_size()
    if t.layout == torch.sparse_coo:
        parts = [t._values(), t._indices()]
    elif t.layout in (torch.sparse_csr, torch.sparse_bsr):
        parts = [t.values(), t.crow_indices(), t.col_indices()]
    else:
        parts = [t.values(), t.ccol_indices(), t.row_indices()]
    return sum(int(p.numel()) * p.element_size() for p in parts)


class TensorSpec:
    """What a formula may know of a tensor: its shape, dtype and layout, never its values.

    A nested tensor has the shape it would have once padded, and `nested` holds its components' sizes. A sparse
    tensor (COO, CSR, CSC, BSR, BSC) has `nnz`, the values it stores, and BSR/BSC their `blocksize` (bh, bw);
    both are None for a strided tensor. An attention mask carries `kept`, the query–key pairs it keeps
    (masks.py), when attention="masked" asks; the offsets of packed sequences (`cu_seq_q`) carry `lengths`, the
    sequence lengths they delimit (engine/mask_census.py), the one other value a formula is given.
    """

    __slots__ = ("blocksize", "dtype", "kept", "layout", "lengths", "nested", "nnz", "shape")

    def __init__(self, tensor: torch.Tensor) -> None:
        self.nested = nested_sizes(tensor)
        self.shape = torch.Size(padded_shape(tensor)) if self.nested is not None else tensor.shape
        self.dtype = tensor.dtype
        self.layout = tensor.layout
        self.kept: int | None = None
        self.lengths: tuple[int, ...] | None = None  # offsets of packed sequences: the lengths they delimit
        sparse = stored_values(tensor)
        self.nnz: int | None = sparse[0] if sparse is not None else None
        self.blocksize: tuple[int, int] | None = sparse[1] if sparse is not None else None

    @property
    def is_sparse(self) -> bool:
        return self.nnz is not None

    def numel(self) -> int:
        return math.prod(self.shape)

    def dim(self) -> int:
        return len(self.shape)

    def element_size(self) -> int:
        return self.dtype.itemsize

    def is_floating_point(self) -> bool:
        return self.dtype.is_floating_point

    def is_complex(self) -> bool:
        return self.dtype.is_complex

    def __repr__(self) -> str:
        return f"TensorSpec({tuple(self.shape)}, {self.dtype})"


_FLOAT8 = {d for d in vars(torch).values() if isinstance(d, torch.dtype) and str(d).startswith("torch.float8")}
_QUANTIZED_NAMES = {
    torch.qint8: "int8",
    torch.quint8: "int8",
    torch.qint32: "int32",
    torch.quint4x2: "int4",
    torch.quint2x4: "int2",
}


def dtype_name(dtype: torch.dtype) -> str:
    """The name a dtype has in `report.by_dtype()`: 'float32', 'bfloat16'… Every float8 format is 'float8' (their
    products mix e4m3 with e5m2, and no energy source tells them apart); quantized integers are named by their
    width (qint8 and quint8 are 'int8')."""
    if dtype in _FLOAT8:
        return "float8"
    return _QUANTIZED_NAMES.get(dtype) or str(dtype).removeprefix("torch.")


def compute_dtype(inputs: list[Any], outputs: list[Any]) -> str:
    """The dtype an op computes in, from its tensors (TensorSpecs or tensors): the dtype of its floating-point
    output (a cast counts under the dtype it produces; autocast's inputs arrive already cast); for an op with no
    such output (a comparison, argmax), its widest floating-point input; for integer and bool ops, the first
    non-bool input, else bool; for an op with no inputs (arange, zeros), its output. A formula whose op computes
    in another dtype (a dynamically quantized linear layer: int8 products of float tensors) says so in
    `Work.dtype`."""
    floats = [t.dtype for t in outputs if t.dtype.is_floating_point or t.dtype.is_complex]
    if floats:
        return dtype_name(floats[0])
    floats = [t.dtype for t in inputs if t.dtype.is_floating_point or t.dtype.is_complex]
    if floats:
        return dtype_name(max(floats, key=lambda d: d.itemsize))
    for t in inputs or outputs:
        if t.dtype != torch.bool:
            return dtype_name(t.dtype)
    return "bool" if inputs or outputs else ""


def specs(tree: Any) -> Any:
    """The op's arguments or outputs, every tensor a `TensorSpec` (aten's containers walked here: pytree is slow)."""
    if isinstance(tree, torch.Tensor):
        return TensorSpec(tree)
    if type(tree) in (tuple, list):
        return type(tree)(map(specs, tree))
    if type(tree) is dict:
        return {key: specs(value) for key, value in tree.items()}
    return tree if type(tree) in PLAIN_TYPES else tree_map_only(torch.Tensor, TensorSpec, tree)  # a namedtuple…


def tensors_in(tree: Any) -> list[torch.Tensor]:
    """The tensors in an op's arguments or outputs: (nested) tuples, lists and dicts, as aten passes them."""
    found: list[torch.Tensor] = []
    pending = [tree]
    while pending:
        item = pending.pop()
        if isinstance(item, torch.Tensor):
            found.append(item)
        elif isinstance(item, (tuple, list)):
            pending.extend(reversed(item))
        elif isinstance(item, dict):
            pending.extend(reversed(list(item.values())))
    return found


def formula(*ops: OpLike, replace: bool = False) -> Callable[[Formula], Formula]:
    """Register `fn` as the formula for each op (decorator).

    An op has one formula: registering a second raises, unless `replace=True` says the replacement is meant
    (for one count only, pass `overrides=` to `count` instead).
    """

    def register(fn: Formula) -> Formula:
        for op in ops:
            name = op_name(op)
            if name in FORMULAS and not replace and FORMULAS[name] is not fn:
                raise ValueError(
                    f"{name} already has a formula ({FORMULAS[name].__module__}.{FORMULAS[name].__qualname__}); "
                    "pass replace=True to replace it, or overrides={op: fn} to count() for one count"
                )
            FORMULAS[name] = fn
        _changes[0] += 1
        return fn

    return register


def zero_cost(reason: str, ops: Iterable[OpLike]) -> None:
    """Declare ops that do no floating-point arithmetic (copies, fills, indexing, metadata)."""
    for op in ops:
        ZERO_COST[op_name(op)] = reason
    _changes[0] += 1


def real_only(reason: str, ops: Iterable[OpLike]) -> None:
    """Declare ops that shape-only counts cannot run (see `REAL_ONLY`); `reason` completes "OP in module M …"."""
    for op in ops:
        REAL_ONLY[op_name(op)] = reason
    _changes[0] += 1


def output_rule(*ops: OpLike) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register how to allocate an op's output in shape-only modes when torch's meta kernel is stricter than the
    real one (decorator; see `OUTPUT_RULES`)."""

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        for op in ops:
            OUTPUT_RULES[op_name(op)] = fn
        _changes[0] += 1
        return fn

    return register


def functional_name(name: str) -> str:
    """`aten.add_` → `aten.add`: in-place variants cost the same as their functional op."""
    namespace, base = name.split(".", 1)
    return f"{namespace}.{base[:-1]}" if base.endswith("_") and not base.endswith("__") else name


def lookup(name: str, overrides: dict[str, Formula | None] | None = None) -> Formula | None | bool:
    """The formula for an op; None if an override ignores it; False if nothing is known."""
    for candidate in (name, functional_name(name)):
        if overrides and candidate in overrides:
            return overrides[candidate]
        if candidate in FORMULAS:
            return FORMULAS[candidate]
    return False


def is_zero_cost(name: str) -> bool:
    return name in ZERO_COST or functional_name(name) in ZERO_COST


# Views whose schema does not say so: they return tensors sharing the input's storage without annotating it. A
# functional collective's wait and autograd wrap return the collective's own output: no bytes move (eager runs wrap
# and wait later, fake-tensor runs wait at once; either way the traffic is the collective's, counted once).
_UNANNOTATED_VIEWS = {
    "aten._unsafe_view",
    "aten.unsafe_split",
    "aten.unsafe_split_with_sizes",
    "aten.unsafe_chunk",
    "_c10d_functional.wait_tensor",
    "_c10d_functional._wrap_tensor_autograd",
}
# Queries of a tensor's metadata: they read no element.
_METADATA = {
    "prim.device",
    "prim.layout",
    "aten.sym_size",
    "aten.sym_stride",
    "aten.sym_numel",
    "aten.sym_storage_offset",
    "aten.is_same_size",
    "aten.is_contiguous",
    "aten.is_strides_like_format",
    "aten.is_non_overlapping_and_dense",
}


def is_view(func: torch._ops.OpOverload) -> bool:
    """A view returns an alias of an input (or changes only its metadata): no arithmetic, no bytes moved."""
    name = op_name(func)
    if torch.Tag.inplace_view in func.tags or name in _UNANNOTATED_VIEWS or name in _METADATA:
        return True
    returns = func._schema.returns
    return bool(returns) and all(r.alias_info is not None and not r.alias_info.is_write for r in returns)


# Plain argument values, keyed by value (shortcuts/keys.py).
_PLAIN = (int, float, bool, str, type(None), torch.dtype, torch.device, torch.memory_format, torch.layout)
PLAIN_TYPES = frozenset(_PLAIN)


class Unkeyable(Exception):
    """An argument (a SymInt, an object) that cannot be part of a key."""
