"""Counting a LiteRT (TensorFlow Lite) flatbuffer, `.tflite`, by the registry's formulas.

A `.tflite` is a FlatBuffer (TFLite's schema.fbs, file identifier TFL3): subgraphs of tensors (shape, type, the
buffer a constant lives in) and operators (a builtin code, input and output tensor indices, builtin options).
Each builtin operator is costed by the formula of the aten op that does the same work (CONV_2D and
DEPTHWISE_CONV_2D by aten.convolution's, FULLY_CONNECTED by addmm's, BATCH_MATMUL by bmm's, ADD by add's, MEAN by
mean's…: tflite_ops.py), on meta tensors of the file's shapes; TFLite's NHWC layout is laid out as NCHW for the
formula, bytes stay the file's tensors. A fused activation (`fused_activation_function` RELU, RELU6…) is costed
as that activation on the output, with no bytes of its own. Operators with no mapping (custom ops, StableHLO
composites, control flow) are unsupported. The first subgraph is counted (its main function); weights are never
loaded.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..core.conventions import Convention, resolve
from ..report.report import Report
from .flatbuffer import Table, root
from .steps import Step, Tally
from .tflite_ops import BUILDERS, FUSED, NAMES, Operator, fused_activation

# schema.fbs: TensorType → torch dtypes
DTYPES: dict[int, torch.dtype] = {
    0: torch.float32,
    1: torch.float16,
    2: torch.int32,
    3: torch.uint8,
    4: torch.int64,
    6: torch.bool,
    7: torch.int16,
    8: torch.complex64,
    9: torch.int8,
    10: torch.float64,
    11: torch.complex128,
    12: torch.uint64,
    15: torch.uint32,
    16: torch.uint16,
    18: torch.bfloat16,
}
MODEL_CODES, MODEL_SUBGRAPHS, MODEL_BUFFERS = 1, 2, 4
GRAPH_TENSORS, GRAPH_INPUTS, GRAPH_OPERATORS = 0, 1, 3
TENSOR_SHAPE, TENSOR_TYPE, TENSOR_BUFFER, TENSOR_NAME, TENSOR_SIGNATURE = 0, 1, 2, 3, 7
OP_CODE, OP_INPUTS, OP_OUTPUTS, OP_OPTIONS = 0, 1, 2, 3
PRODUCTS = ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "FULLY_CONNECTED", "BATCH_MATMUL")


def count_tflite(path: str | Path, convention: str | Convention = "default") -> Report:
    """Count the MACs, FLOPs, parameters and bytes of one run of a LiteRT model (its first subgraph), from its file.
    Parameters are the constant tensors some operator reads as data (weights, biases; a shape, axes or
    permutation operand, which the aten op takes as plain values, is not one, nor is a 0-d literal such as 1/6).
    Raises ValueError when the file is not a TFLite flatbuffer."""
    buf = Path(path).read_bytes()
    model = root(buf, b"TFL3")
    graphs = model.tables(MODEL_SUBGRAPHS)
    if not graphs:
        raise ValueError("the model has no subgraph")
    tally = Tally(resolve(convention))
    if len(graphs) > 1:
        tally.warnings.append(
            f"the model has {len(graphs)} subgraphs; counted the first (the others run only "
            "when an operator calls them: IF, WHILE, CALL_ONCE)"
        )
    codes = [_builtin(code) for code in model.tables(MODEL_CODES)]
    buffers = model.tables(MODEL_BUFFERS)
    graph = graphs[0]
    tensors, constants, data, dynamic = _tensors(graph, buffers)
    if dynamic:
        tally.warnings.append(
            f"{dynamic} tensors have a dynamic dim (-1 in their shape signature): counted at the sizes the file stores"
        )
    weights: dict[int, set[str]] = {}
    graph_tensors = graph.tables(GRAPH_TENSORS)
    for index, op in enumerate(graph.tables(GRAPH_OPERATORS)):
        code, custom = codes[op.scalar(OP_CODE, "<I")] if op.scalar(OP_CODE, "<I") < len(codes) else (-1, "")
        name = custom if code == 32 else NAMES.get(code, f"BUILTIN_{code}")  # 32: CUSTOM
        inputs, outputs = op.scalars(OP_INPUTS, "<i"), op.scalars(OP_OUTPUTS, "<i")
        node = Operator(
            name,
            [tensors[i] if i >= 0 else None for i in inputs],
            [tensors[i] for i in outputs],
            op.union(OP_OPTIONS)[1],
            {pos: data[i] for pos, i in enumerate(inputs) if i in data},
        )
        names = [graph_tensors[i].string(TENSOR_NAME) for i in (*outputs, *(i for i in inputs if i in constants))]
        module = next((found for n in names if (found := _module(n, name, tally.types)) is not None), "")
        step = Step(f"tflite.{name}", f"operator {index}", module)
        build = BUILDERS.get(name) if code != 32 else None
        if build is not None and all(t is not None for t in node.outputs):
            try:
                build(node, step)
            except NotImplementedError as error:
                tally.warnings.append(f"operator {index} ({name}): {error} is not mapped to a formula")
                step = Step(f"tflite.{name}", f"operator {index}", module)
        tally.add(step)
        if name in FUSED and step.func is not None:
            activation = fused_activation(node, FUSED[name])
            if activation is not None:
                activation.module = module
                tally.add(activation)
        for i in node.read:
            if inputs[i] in constants and tensors[inputs[i]].dim() > 0:  # a 0-d constant is a literal (1/6)
                weights.setdefault(inputs[i], set()).add(module)
    named = {_name(graph, i): tensors[i] for i in graph.scalars(GRAPH_INPUTS, "<i")}
    return tally.report(Path(path).name, named, [(tensors[i], owners) for i, owners in weights.items()])


def _builtin(code: Table) -> tuple[int, str]:
    """(builtin operator code, custom code): the code is the larger of the deprecated int8 field and the int32
    one (schema 3a: codes past 127 live only in the second)."""
    return max(code.scalar(0, "<b"), code.scalar(3, "<i")), code.string(1)


def _tensors(graph: Table, buffers: list[Table]) -> tuple[list[torch.Tensor], set[int], dict[int, bytes], int]:
    """(every tensor as a meta tensor, the indices of constants, the data of small integer constants (shapes,
    axes, permutations) by index, how many tensors have a dynamic dim)."""
    tensors, constants, data, dynamic = [], set(), {}, 0
    for index, table in enumerate(graph.tables(GRAPH_TENSORS)):
        code = table.scalar(TENSOR_TYPE, "<b")
        dtype = DTYPES.get(code, torch.uint8)  # strings, resources, int4: as bytes
        tensors.append(torch.empty(table.scalars(TENSOR_SHAPE, "<i"), dtype=dtype, device="meta"))
        dynamic += any(d < 0 for d in table.scalars(TENSOR_SIGNATURE, "<i"))
        buffer = table.scalar(TENSOR_BUFFER, "<I")
        stored = buffers[buffer] if 0 < buffer < len(buffers) else None
        if stored is not None and (stored.has(0) or stored.scalar(2, "<Q") > 0):
            constants.add(index)
            if dtype in (torch.int32, torch.int64) and tensors[-1].numel() <= 64:
                data[index] = stored.blob(0)
    return tensors, constants, data, dynamic


def _name(graph: Table, index: int) -> str:
    tensor = graph.tables(GRAPH_TENSORS)[index]
    return tensor.string(TENSOR_NAME) or f"input {index}"


def _module(name: str, op: str, types: dict[str, str]) -> str | None:
    """The module an operator ran in, from its output tensor's name. litert-torch names a tensor by the module path
    it came from, one location per op fused into it: `pkg.ResNet/torch.nn.modules.container.Sequential_layer1/
    torchvision.models.resnet.BasicBlock_0/torch.nn.modules.conv.Conv2d_conv1;;…;1` is `layer1.0.conv1` (each step
    `<qualified class>_<attribute>`). An operator is put in the modules' common ancestor; a product fused with
    what followed it (a convolution with its batch norm and ReLU) in its convolution or linear module. Module
    types go into `types`. None for a name in no such form (the model's output): the names of the operator's
    constants (its weights) are tried next, then the root."""
    paths: list[str] = []
    for location in filter(None, name.split(";")):
        steps = location.split("/")
        if location.isdigit() or not steps[0] or "_" in steps[0].rpartition(".")[2]:
            continue
        types.setdefault("", steps[0].rpartition(".")[2])
        path = ""
        for step in steps[1:]:
            kind, _, attribute = step.rpartition(".")[2].partition("_")
            path = f"{path}.{attribute}" if path else attribute
            types.setdefault(path, kind)
        paths.append(path)
    if not paths:
        return None
    products = [p for p in paths if types.get(p, "").startswith(("Conv", "Linear"))]
    if op in PRODUCTS and len(products) == 1:
        return products[0]
    common = paths[0].split(".")
    for path in paths[1:]:
        parts = path.split(".")
        n = 0
        while n < min(len(common), len(parts)) and common[n] == parts[n]:
            n += 1
        common = common[:n]
    return ".".join(common)
