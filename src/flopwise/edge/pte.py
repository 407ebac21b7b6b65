"""Counting an ExecuTorch program (`.pte`) from its execution plan, by the registry's formulas.

A `.pte` is a FlatBuffer (ExecuTorch's schema/program.fbs, file identifier ET12): each method is an execution plan
whose values table holds every tensor (sizes, scalar type, and for a constant the buffer or external file it
lives in) and argument, and whose instructions call kernels by operator name: `aten::convolution.out` with the
indices of its arguments, outputs last. Each kernel call is costed by the formula of the functional aten overload
its out variant stands for (`convolution.out` → `aten.convolution.default`), on meta tensors of the plan's sizes.
ExecuTorch's own operators are mapped to the aten op that does the same work: `et_view` is a view,
`_to_dim_order_copy` and `_clone_dim_order` copy, arithmetic on sizes costs nothing. A delegate call (XNNPACK,
Core ML, …) runs the backend's own payload, which flopwise does not read: it is unsupported, with a warning.
The file's weights are never loaded (a program whose constants live in a `.ptd` file counts the same).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from ..core.conventions import Convention, resolve
from ..report.report import Report
from .flatbuffer import Table, root
from .steps import FREE, Step, Tally, meta

# program.fbs: executorch_flatbuffer.ScalarType (c10's numbering) → torch dtypes
DTYPES: dict[int, torch.dtype] = {
    0: torch.uint8,
    1: torch.int8,
    2: torch.int16,
    3: torch.int32,
    4: torch.int64,
    5: torch.float16,
    6: torch.float32,
    7: torch.float64,
    11: torch.bool,
    12: torch.qint8,
    13: torch.quint8,
    14: torch.qint32,
    15: torch.bfloat16,
    16: torch.quint4x2,
    17: torch.quint2x4,
    22: torch.bits16,
    23: torch.float8_e5m2,
    24: torch.float8_e4m3fn,
    25: torch.float8_e5m2fnuz,
    26: torch.float8_e4m3fnuz,
    27: torch.uint16,
    28: torch.uint32,
    29: torch.uint64,
}
# field numbers of program.fbs (a union takes two: its type, then its value)
PROGRAM_PLANS = 1
PLAN_NAME, PLAN_VALUES, PLAN_INPUTS, PLAN_CHAINS, PLAN_OPERATORS, PLAN_DELEGATES = 0, 2, 3, 5, 6, 7
CHAIN_INSTRUCTIONS = 2
NULL, INT, BOOL, DOUBLE, TENSOR, STRING, INT_LIST, DOUBLE_LIST, BOOL_LIST, TENSOR_LIST, OPTIONAL_TENSORS = range(1, 12)
KERNEL_CALL, DELEGATE_CALL, MOVE_CALL, JUMP_FALSE_CALL, FREE_CALL = range(1, 6)
TENSOR_TYPE, TENSOR_SIZES, TENSOR_BUFFER, TENSOR_ALLOCATION, TENSOR_DYNAMISM, TENSOR_EXTRA = 0, 2, 5, 6, 8, 9
EXTERNAL = 1  # TensorDataLocation of ExtraTensorInfo (its field 2)

aten = torch.ops.aten
# ExecuTorch's own operators → the aten op that does their work (FREE: nothing computed, nothing moved)
OWN_OPS: dict[str, Any] = {
    "executorch_prim::et_view": aten.view.default,  # a view of the same memory
    "dim_order_ops::_to_dim_order_copy": aten._to_copy.default,  # a copy (dtype or memory layout)
    "dim_order_ops::_clone_dim_order": aten.clone.default,
    "dim_order_ops::_empty_dim_order": aten.empty.memory_format,
    "aten::sym_size": FREE,
    "aten::sym_numel": FREE,
    "aten::sym_stride": FREE,
}


def count_pte(path: str | Path, convention: str | Convention = "default", method: str = "forward") -> Report:
    """Count the MACs, FLOPs, parameters and bytes of one run of a method (`forward`, else the program's only one)
    of an ExecuTorch program, from its file. Parameters are the constant tensors some kernel reads (batch-norm
    statistics included: in a program they are constants like the weights; a 0-d literal, hardswish's 3 or 6, is
    not one). Raises ValueError when the file is not an ExecuTorch program or has no such method."""
    buf = Path(path).read_bytes()
    if not re.fullmatch(rb"ET\d\d", buf[4:8]):
        raise ValueError(f"not an ExecuTorch program (no ET12 file identifier; found {buf[4:8]!r})")
    plans = {plan.string(PLAN_NAME): plan for plan in root(buf).tables(PROGRAM_PLANS)}
    if method not in plans and len(plans) == 1:
        method = next(iter(plans))
    if method not in plans:
        raise ValueError(f"the program has no method {method!r}; its methods are {', '.join(plans) or '(none)'}")
    tally = Tally(resolve(convention))
    if len(plans) > 1:
        tally.warnings.append(f"the program has {len(plans)} methods ({', '.join(plans)}); counted {method}")
    values = _Values(plans[method].tables(PLAN_VALUES))
    return _count(plans[method], values, tally, Path(path).name)


def _count(plan: Table, values: _Values, tally: Tally, name: str) -> Report:
    operators = [(op.string(0), op.string(1)) for op in plan.tables(PLAN_OPERATORS)]
    delegates = [d.string(0) for d in plan.tables(PLAN_DELEGATES)]
    read: set[int] = set()
    delegated: dict[str, int] = {}
    for c, chain in enumerate(plan.tables(PLAN_CHAINS)):
        for i, instruction in enumerate(chain.tables(CHAIN_INSTRUCTIONS)):
            kind, call = instruction.union(0)
            where = f"instruction {i}" if c == 0 else f"chain {c}, instruction {i}"
            if kind == KERNEL_CALL and call is not None:
                args = call.scalars(1, "<i")
                tally.add(_kernel(operators[call.scalar(0, "<i")], args, values, where))
                read.update(args)
            elif kind == DELEGATE_CALL and call is not None:
                backend = delegates[call.scalar(0, "<i")] if call.scalar(0, "<i") < len(delegates) else "?"
                tally.add(Step(f"executorch.delegate.{backend}", where))
                delegated[backend] = delegated.get(backend, 0) + 1
            elif kind == JUMP_FALSE_CALL:
                tally.warnings.append(f"{where} is a conditional jump: every instruction is counted once")
    for backend, calls in delegated.items():
        tally.warnings.append(
            f"{calls} call(s) of a {backend} delegate: their work is in the backend's own payload, "
            "which flopwise does not read (export without a partitioner to count it)"
        )
    if values.dynamic:
        tally.warnings.append(
            f"{values.dynamic} tensors have dynamic sizes: counted at the upper bounds the program allocates for"
        )
    inputs = {f"input {n}": values.get(i) for n, i in enumerate(plan.scalars(PLAN_INPUTS, "<i"))}
    tensors = {k: v for k, v in inputs.items() if isinstance(v, torch.Tensor)}
    weights = [(values.get(i), {""}) for i in sorted(read) if i in values.constants and values.get(i).dim() > 0]
    return tally.report(name, tensors, weights)


class _Values:
    """The plan's values as a kernel takes them: tensors as meta tensors (one object per value, so that a tensor
    read twice counts once), scalars and lists as Python values."""

    def __init__(self, tables: list[Table]) -> None:
        self.tables = tables
        self.cache: dict[int, Any] = {}
        self.constants: set[int] = set()
        self.dynamic = 0

    def get(self, index: int) -> Any:
        if index < 0:
            return None
        if index not in self.cache:
            if index >= len(self.tables):
                raise ValueError(f"an argument refers to value {index}; the plan has {len(self.tables)}")
            self.cache[index] = self._make(index, *self.tables[index].union(0))
        return self.cache[index]

    def _make(self, index: int, kind: int, table: Table | None) -> Any:
        if table is None or kind == NULL:
            return None
        if kind == TENSOR:
            return self._tensor(index, table)
        simple = {INT: "<q", BOOL: "<?", DOUBLE: "<d"}
        if kind in simple:
            return table.scalar(0, simple[kind])
        if kind == STRING:
            return table.string(0)
        if kind in (DOUBLE_LIST, BOOL_LIST):
            return table.scalars(0, "<d" if kind == DOUBLE_LIST else "<?")
        if kind == INT_LIST:  # items are values (Int), so that a size can be symbolic
            return [self.get(i) for i in table.scalars(0, "<q")]
        if kind in (TENSOR_LIST, OPTIONAL_TENSORS):
            return [self.get(i) for i in table.scalars(0, "<i")]
        raise ValueError(f"value {index} has an unknown type ({kind})")

    def _tensor(self, index: int, table: Table) -> torch.Tensor:
        code = table.scalar(TENSOR_TYPE, "<b")
        if code not in DTYPES:
            raise ValueError(f"value {index} is a tensor of an unknown scalar type ({code})")
        extra = table.table(TENSOR_EXTRA)
        external = extra is not None and extra.scalar(2, "<b") == EXTERNAL
        if not table.has(TENSOR_ALLOCATION) and (table.scalar(TENSOR_BUFFER, "<I") or external):
            self.constants.add(index)  # its data is in the program (or a .ptd file), not planned memory
        self.dynamic += table.scalar(TENSOR_DYNAMISM, "<b") != 0
        return meta(table.scalars(TENSOR_SIZES, "<i"), DTYPES[code])


def _kernel(operator: tuple[str, str], args: list[int], values: _Values, where: str) -> Step:
    """A kernel call as the functional aten call it stands for; without one, an unsupported step."""
    name, overload = operator
    step = Step(f"executorch.{name}.{overload or 'default'}", where)
    own = OWN_OPS.get(
        name, FREE if name.startswith("executorch_prim::") and name != "executorch_prim::et_copy_index" else None
    )  # executorch_prim's other ops are arithmetic on sizes (SymInt add, mul, floordiv…)
    schema = _schema(name, overload)
    if own is not None or schema is None:
        if own is None:
            return step
        tensors = list(dict.fromkeys(i for i in args if isinstance(values.get(i), torch.Tensor)))  # out comes last
        out = values.get(tensors[-1]) if tensors else None  # (and again after it, as the kernel's return value)
        step.func, step.args, step.out = own, tuple(values.get(i) for i in tensors[:-1]), out
        step.reads, step.writes = list(step.args), [out] if out is not None else []
        return step
    functional, arguments = schema
    given = [values.get(i) for i in args[: len(arguments)]]
    positional, keywords, outputs = [], {}, []
    for argument, value in zip(arguments, given, strict=False):
        if argument.is_out:
            outputs.extend(value if isinstance(value, list) else [value])
        elif argument.kwarg_only:
            keywords[argument.name] = value
        else:
            positional.append(value)
    step.func, step.args, step.kwargs = functional, tuple(positional), keywords
    step.out = outputs[0] if len(outputs) == 1 else tuple(outputs)
    flat = [*positional, *keywords.values()]
    step.reads = [t for v in flat for t in (v if isinstance(v, list) else [v]) if isinstance(t, torch.Tensor)]
    step.writes = [t for t in outputs if isinstance(t, torch.Tensor)]
    if not outputs and len(args) > len(arguments):  # a functional kernel: its result follows its arguments
        step.out = values.get(args[len(arguments)])
        step.writes = [step.out] if isinstance(step.out, torch.Tensor) else []
    return step


def _schema(name: str, overload: str) -> tuple[Any, list[Any]] | None:
    """(the functional overload of an out-variant kernel, the kernel's schema arguments), or None when torch has
    no such operator or no functional overload with the same arguments."""
    namespace, _, op = name.partition("::")
    try:
        packet = getattr(getattr(torch.ops, namespace), op)
        kernel = getattr(packet, overload or "default")
    except (AttributeError, RuntimeError):
        return None
    arguments = list(kernel._schema.arguments)
    if not any(a.is_out for a in arguments):
        return kernel, arguments
    wanted = [(a.name, str(a.type)) for a in arguments if not a.is_out]
    for candidate in packet.overloads():
        functional = getattr(packet, candidate)
        if [(a.name, str(a.type)) for a in functional._schema.arguments] == wanted:
            return functional, arguments
    return None
