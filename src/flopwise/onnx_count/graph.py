"""Counting an ONNX file: shapes from ONNX shape inference, each node costed by flopwise's own formulas."""

from __future__ import annotations

import ast
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from ..core.conventions import Convention, resolve
from ..core.cost import ZERO, OpCall
from ..engine.memory import bytes_by_dtype
from ..engine.module_stack import ancestors
from ..engine.prepare import describe_inputs
from ..formulas.pricing import UNKNOWN, VIEW, cost_call, plan_of
from ..report.assemble import module_costs, subtree_params
from ..report.report import ModuleRow, Report
from .nodes import DTYPES, METADATA, STANDINS, Node

Sizes = Mapping[str, Sequence[int]] | Sequence[Sequence[int]]
_SCOPES, _CLASSES = "pkg.torch.onnx.name_scopes", "pkg.torch.onnx.class_hierarchy"  # torch.onnx's node metadata


def count_onnx(path: str | Path, input_sizes: Sizes | None = None, convention: str | Convention = "default") -> Report:
    """Count the MACs, FLOPs, parameters and bytes of one run of an ONNX model, from its file.

    Shapes come from ONNX shape inference; each node is costed by the formula of the aten op that does its work
    (nodes.py). `input_sizes` gives the graph inputs' sizes, by name or in order; it is needed where an input has
    a dynamic dim (a symbolic batch), and replaces the sizes the file declares. Parameters are the initializers
    some node reads as data (shapes, axes and scales are arguments, not weights). Rows are modules: the scopes
    torch.onnx gives each node (its metadata, else its name `/layer1/layer1.0/conv1/Conv`). A node with no known
    cost is in `report.unsupported` under its module and node name. Raises ValueError when the file cannot be
    counted as it stands.
    """
    import onnx  # an optional dependency: `pip install flopwise[onnx]`
    import onnx.inliner
    from google.protobuf.message import DecodeError  # onnx's own dependency

    try:
        model = onnx.load(str(path), load_external_data=False)  # shapes only: weights stay on disk
    except DecodeError as error:
        raise ValueError(f"not an ONNX model ({error})") from None
    if model.functions:
        model = onnx.inliner.inline_local_functions(model)
    graph = model.graph
    stored = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in stored]
    if input_sizes is not None:
        _set_sizes(graph, inputs, input_sizes)
    _refuse_dynamic(inputs)
    inferred, warnings = _infer(onnx, model)
    tensors = _tensors(inferred.graph)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
    rules = resolve(convention)
    calls: list[OpCall] = []
    unsupported: defaultdict[str, Counter[str]] = defaultdict(Counter)
    types: dict[str, str] = {}
    readers: defaultdict[str, set[str]] = defaultdict(set)  # initializer → the modules whose nodes read it
    for proto in graph.node:
        module = _module_of(proto, types)
        op = f"onnx.{proto.op_type}" if proto.domain in ("", "ai.onnx") else f"{proto.domain}.{proto.op_type}"
        call, read = _cost_node(onnx, proto, op, module, tensors, opset, rules, warnings)
        if call is None:
            unsupported[op][f"{module} (node {proto.name})" if module else f"node {proto.name}"] += 1
            call, read = OpCall(op, module, ZERO), [name for name in proto.input if name]  # any input may be data
        calls.append(call)
        for name in read:
            if name in stored:
                readers[name].add(module)
    weights = [(tensors[t.name], readers[t.name]) for t in graph.initializer if t.name in readers and t.name in tensors]
    return _report(
        Path(path).name, [tensors[i.name] for i in inputs], inputs, rules, calls, types, weights, unsupported, warnings
    )


def _cost_node(
    onnx: Any,
    proto: Any,
    op: str,
    module: str,
    tensors: dict[str, torch.Tensor],
    opset: int,
    rules: Convention,
    warnings: list[str],
) -> tuple[OpCall | None, list[str]]:
    """The node's call, costed (None when it has no known cost), and the names of the inputs it reads."""
    if proto.op_type in METADATA and proto.domain in ("", "ai.onnx"):
        return OpCall(op, module, ZERO), []
    build = STANDINS.get(proto.op_type) if proto.domain in ("", "ai.onnx") else None
    if build is None:
        return None, []
    unknown = [name for name in (*proto.input, *proto.output) if name and name not in tensors]
    if unknown:
        warnings.append(
            f"node {proto.name!r} ({op}): shape inference gave no static shape for "
            f"{', '.join(unknown)}; counted as unsupported"
        )
        return None, []
    attrs = {a.name: _plain(onnx.helper.get_attribute_value(a)) for a in proto.attribute}
    node = Node(proto, tensors, attrs, opset)
    try:
        func, args, kwargs = build(node)
    except NotImplementedError as error:
        warnings.append(f"node {proto.name!r} ({op}): {error} is not mapped to a formula")
        return None, []
    _, plan = plan_of(func, {})
    if plan is VIEW:
        return OpCall(op, module, ZERO), node.read
    if plan is UNKNOWN:
        return None, []
    outputs = [tensors[name] for name in proto.output if name]
    inputs = [tensors[name] for name in node.read]
    work, cost, shapes, dtype = cost_call(rules, plan, node.out, args, kwargs, inputs, outputs)
    return OpCall(op, module, cost, work, shapes, dtype), node.read


def _plain(value: Any) -> Any:
    """Attribute values as Python values: text decoded, repeated fields as lists."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _set_sizes(graph: Any, inputs: list[Any], sizes: Sizes) -> None:
    """The given sizes replace the inputs' declared ones; the shapes inferred before are dropped to be inferred
    again (outputs' declared shapes too, which the new sizes may change)."""
    names = [i.name for i in inputs]
    given = dict(sizes) if isinstance(sizes, Mapping) else dict(zip(names, sizes, strict=False))
    if not isinstance(sizes, Mapping) and len(sizes) > len(names):
        raise ValueError(f"{len(sizes)} input sizes given, but the graph has {len(names)} inputs ({', '.join(names)})")
    for name, shape in given.items():
        if name not in names:
            raise ValueError(f"the graph has no input {name!r}; its inputs are {', '.join(names)}")
        dims = inputs[names.index(name)].type.tensor_type.shape.dim
        if len(dims) != len(shape):
            raise ValueError(
                f"input {name!r} has {len(dims)} dims, but sizes {'×'.join(map(str, shape))} have {len(shape)}"
            )
        for dim, size in zip(dims, shape, strict=True):
            dim.dim_value = int(size)
    del graph.value_info[:]
    for output in graph.output:
        output.type.tensor_type.ClearField("shape")


def _refuse_dynamic(inputs: list[Any]) -> None:
    for value in inputs:
        dims = value.type.tensor_type.shape.dim
        dynamic = [f"{d.dim_param or '?'} at dim {i}" for i, d in enumerate(dims) if not d.HasField("dim_value")]
        if dynamic:
            example = "x".join(str(d.dim_value) if d.HasField("dim_value") else "N" for d in dims)
            raise ValueError(
                f"input {value.name!r} has dynamic sizes ({', '.join(dynamic)}): give its sizes, "
                f"e.g. --input {value.name}={example} with N a number"
            )


def _infer(onnx: Any, model: Any) -> tuple[Any, list[str]]:
    """ONNX shape inference, strict (an op it cannot infer is an error); if that fails, lenient, with a warning."""
    try:
        return onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True), []
    except onnx.shape_inference.InferenceError as strict:
        first = str(strict).strip().splitlines()[0] if str(strict).strip() else type(strict).__name__
        try:
            lenient = onnx.shape_inference.infer_shapes(model, data_prop=True)
        except onnx.shape_inference.InferenceError as error:
            raise ValueError(f"ONNX shape inference failed: {error}") from None
        return lenient, [f"strict ONNX shape inference failed ({first}); counted with the shapes it could infer"]


def _tensors(graph: Any) -> dict[str, torch.Tensor]:
    """Every value with a static shape and a known dtype, as a meta tensor (shape and dtype, no data)."""
    tensors: dict[str, torch.Tensor] = {}
    for value in (*graph.input, *graph.value_info, *graph.output):
        kind = value.type.tensor_type
        dims = kind.shape.dim
        if kind.HasField("shape") and all(d.HasField("dim_value") for d in dims) and kind.elem_type in DTYPES:
            tensors[value.name] = torch.empty([d.dim_value for d in dims], dtype=DTYPES[kind.elem_type], device="meta")
    for stored in graph.initializer:
        if stored.data_type in DTYPES:
            tensors[stored.name] = torch.empty(list(stored.dims), dtype=DTYPES[stored.data_type], device="meta")
    return tensors


def _module_of(proto: Any, types: dict[str, str]) -> str:
    """The qualified module a node ran in: torch.onnx's scopes (['', 'layer1', 'layer1.0', 'layer1.0.conv1', op])
    or the legacy exporter's node name ('/layer1/layer1.0/conv1/Conv'); each scope is either the full name or
    the name within its parent. Module types from the class hierarchy torch.onnx records go into `types`."""
    meta = {p.key: p.value for p in proto.metadata_props}
    try:
        scopes = ast.literal_eval(meta[_SCOPES])[1:-1] if _SCOPES in meta else proto.name.split("/")[1:-1]
        classes = ast.literal_eval(meta[_CLASSES]) if _CLASSES in meta else []
    except (ValueError, SyntaxError):
        scopes, classes = [], []
    path = ""
    if classes:
        types.setdefault("", classes[0].rpartition(".")[2])
    for i, scope in enumerate(scopes):
        path = scope if not path or scope.startswith(path + ".") else f"{path}.{scope}"
        if i + 1 < len(classes):
            types.setdefault(path, classes[i + 1].rpartition(".")[2])
    return path


def _report(
    model: str,
    input_tensors: list[torch.Tensor],
    inputs: list[Any],
    rules: Convention,
    calls: list[OpCall],
    types: dict[str, str],
    weights: list[tuple[torch.Tensor, set[str]]],
    unsupported: Mapping[str, Counter[str]],
    warnings: list[str],
) -> Report:
    own, inclusive = module_costs(calls)
    order: dict[str, None] = {"": None}  # modules in the order the graph first reaches them, parents first
    for call in calls:
        for name in reversed(ancestors(call.module)):
            order.setdefault(name)
    params = subtree_params((int(t.numel()), True, owners) for t, owners in weights)
    rows = {
        name: ModuleRow(
            name,
            types.get(name, ""),
            inclusive.get(name, ZERO),
            own.get(name, ZERO),
            *params.get(name, (0, 0)),
            calls=1,
        )
        for name in order
    }
    described = describe_inputs((), {value.name: t for value, t in zip(inputs, input_tensors, strict=True)})
    return Report(
        model=model,
        inputs=described,
        convention=rules,
        calls=tuple(calls),
        modules=rows,
        params=rows[""].params,
        trainable_params=rows[""].trainable_params,
        unsupported_where={op: dict(where) for op, where in unsupported.items()},
        param_bytes=bytes_by_dtype(t for t, _ in weights),
        warnings=warnings,
    )
