"""ONNX operators → the aten op whose registered formula costs them, with its arguments.

An ONNX node is costed by the formula of the aten op that does the same work (Conv → aten.convolution, Gemm →
aten.addmm, Relu → aten.relu, …), called on stand-ins: meta tensors of the shapes ONNX shape inference gave. No
formula is written twice. Ops that only reshape, transpose or describe a tensor are views, as in a PyTorch count
(no arithmetic, no bytes); copies and concatenations move bytes; an op missing from `STANDINS` is unsupported.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

aten = torch.ops.aten

# ONNX TensorProto element types → torch dtypes (the types a formula or a byte count can meet)
DTYPES: dict[int, torch.dtype] = {
    1: torch.float32,
    2: torch.uint8,
    3: torch.int8,
    4: torch.uint16,
    5: torch.int16,
    6: torch.int32,
    7: torch.int64,
    9: torch.bool,
    10: torch.float16,
    11: torch.float64,
    12: torch.uint32,
    13: torch.uint64,
    14: torch.complex64,
    15: torch.complex128,
    16: torch.bfloat16,
    17: torch.float8_e4m3fn,
    18: torch.float8_e4m3fnuz,
    19: torch.float8_e5m2,
    20: torch.float8_e5m2fnuz,
}
METADATA = {"Constant", "Shape", "Size"}  # values known from the model itself: no arithmetic, nothing moved


class Node:
    """One ONNX node as its stand-in sees it: inputs and outputs as meta tensors, attributes by name. `read`
    collects the names of the inputs the stand-in reads: their bytes are the node's reads (a shape, axes or scales
    input that the aten op takes as plain values is not read)."""

    def __init__(self, proto: Any, tensors: dict[str, torch.Tensor], attrs: dict[str, Any], opset: int) -> None:
        self.proto = proto
        self.tensors = tensors
        self.attrs = attrs
        self.opset = opset
        self.read: list[str] = []

    def input(self, i: int) -> Any:
        """Input `i` (None when the node leaves that optional input out)."""
        name = self.proto.input[i] if i < len(self.proto.input) else ""
        if not name:
            return None
        if name not in self.read:
            self.read.append(name)
        return self.tensors[name]

    def inputs(self) -> list[Any]:
        return [self.input(i) for i in range(len(self.proto.input)) if self.proto.input[i]]

    def standin(self, i: int, shape: tuple[int, ...]) -> torch.Tensor:
        """Input `i` seen with another shape (a transposed or flattened operand): the bytes are still input i's."""
        return torch.empty(shape, dtype=self.input(i).dtype, device="meta")

    @property
    def out(self) -> Any:
        """The output as the aten op returns it: one tensor, or a tuple when the node has several."""
        outputs = [self.tensors[name] for name in self.proto.output if name]
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    def ints(self, name: str, default: list[int]) -> list[int]:
        return [int(v) for v in self.attrs.get(name, default)]


Standin = tuple[Any, tuple[Any, ...], dict[str, Any]]  # (aten overload, args, kwargs)
Builder = Callable[[Node], Standin]


def _all(op: Any, **kwargs: Any) -> Builder:
    """The node's inputs, in order, are the op's arguments (pointwise ops)."""
    return lambda node: (op, tuple(node.inputs()), kwargs)


def _first(op: Any) -> Builder:
    """Only the first input is the op's argument (a reduction, a view, a copy)."""
    return lambda node: (op, (node.input(0),), {})


def _conv(node: Node, transposed: bool = False) -> Standin:
    x, w, b = node.input(0), node.input(1), node.input(2)
    rank = w.dim() - 2
    ones = [1] * rank
    pads = node.ints("pads", [0] * 2 * rank)[:rank]  # begin pads; the output shape already has the end ones
    out_pad = node.ints("output_padding", [0] * rank)
    return (
        aten.convolution.default,
        (
            x,
            w,
            b,
            node.ints("strides", ones),
            pads,
            node.ints("dilations", ones),
            transposed,
            out_pad,
            int(node.attrs.get("group", 1)),
        ),
        {},
    )


def _transposed(shape: torch.Size) -> tuple[int, int]:
    return int(shape[1]), int(shape[0])


def _gemm(node: Node) -> Standin:
    """A·B (+ C): transA/transB read the operands transposed."""
    a, b, c = node.input(0), node.input(1), node.input(2)
    if node.attrs.get("transA"):
        a = node.standin(0, _transposed(a.shape))
    if node.attrs.get("transB"):
        b = node.standin(1, _transposed(b.shape))
    return (aten.addmm.default, (c, a, b), {}) if c is not None else (aten.mm.default, (a, b), {})


def _matmul(node: Node) -> Standin:
    """numpy matmul as torch.matmul runs it: a 2-d right operand folds the left one's batch into rows (mm);
    otherwise a batched product over the broadcast batch (bmm). A 1-d operand is a row (left) or column (right)."""
    a, b = node.input(0), node.input(1)
    a_shape = tuple(a.shape) if a.dim() > 1 else (1, *a.shape)
    b_shape = tuple(b.shape) if b.dim() > 1 else (*b.shape, 1)
    (m, k), n = a_shape[-2:], b_shape[-1]
    if len(b_shape) == 2:
        return aten.mm.default, (node.standin(0, (math.prod(a_shape[:-1]), k)), node.standin(1, (k, n))), {}
    batch = math.prod(torch.broadcast_shapes(a_shape[:-2], b_shape[:-2]))  # type: ignore[no-untyped-call]
    return aten.bmm.default, (node.standin(0, (batch, m, k)), node.standin(1, (batch, k, n))), {}


def _pool(ops: dict[int, Any]) -> Builder:
    def build(node: Node) -> Standin:
        kernel = node.ints("kernel_shape", [])
        return ops[len(kernel)], (node.input(0), kernel), {}

    return build


def _global(op: Any) -> Builder:
    return lambda node: (op, (node.input(0), list(range(2, node.input(0).dim())), True), {})


def _softmax(op: Any) -> Builder:
    """Over one axis (opset ≥ 13); before opset 13 over the input flattened to 2-d from the axis on."""

    def build(node: Node) -> Standin:
        x = node.input(0)
        axis = int(node.attrs.get("axis", -1 if node.opset >= 13 else 1)) % max(x.dim(), 1)
        if node.opset >= 13:
            return op, (x, axis, False), {}
        rows = node.standin(0, (math.prod(x.shape[:axis]), math.prod(x.shape[axis:])))
        return op, (rows, 1, False), {}

    return build


_RESIZE = {
    "nearest": {
        1: aten.upsample_nearest1d.default,
        2: aten.upsample_nearest2d.default,
        3: aten.upsample_nearest3d.default,
    },
    "linear": {
        1: aten.upsample_linear1d.default,
        2: aten.upsample_bilinear2d.default,
        3: aten.upsample_trilinear3d.default,
    },
    "cubic": {2: aten.upsample_bicubic2d.default},
}


def _resize(node: Node) -> Standin:
    """Interpolation over the dims after N and C, by mode (nearest copies; linear and cubic weigh 2ᵈ and 4ᵈ inputs)."""
    x, mode = node.input(0), str(node.attrs.get("mode", "nearest"))
    op = _RESIZE.get(mode, {}).get(x.dim() - 2)
    if op is None:
        raise NotImplementedError(f"Resize ({mode}) of a {x.dim()}-d input")
    return op, (x, list(node.out.shape[2:])), {}


def _batch_norm(node: Node) -> Standin:
    x, scale, bias, mean, var = (node.input(i) for i in range(5))
    eps, momentum = node.attrs.get("epsilon", 1e-5), node.attrs.get("momentum", 0.9)
    if node.attrs.get("training_mode"):
        return aten.native_batch_norm.default, (x, scale, bias, mean, var, True, momentum, eps), {}
    return aten._native_batch_norm_legit_no_training.default, (x, scale, bias, mean, var, momentum, eps), {}


def _layer_norm(node: Node) -> Standin:
    x = node.input(0)
    axis = int(node.attrs.get("axis", -1)) % x.dim()
    eps = node.attrs.get("epsilon", 1e-5)
    return aten.native_layer_norm.default, (x, list(x.shape[axis:]), node.input(1), node.input(2), eps), {}


def _group_norm(node: Node, instance: bool = False) -> Standin:
    x = node.input(0)
    n, c = int(x.shape[0]), int(x.shape[1])
    groups = c if instance else int(node.attrs["num_groups"])
    eps = node.attrs.get("epsilon", 1e-5)
    return (
        aten.native_group_norm.default,
        (x, node.input(1), node.input(2), n, c, math.prod(x.shape[2:]), groups, eps),
        {},
    )


def _clip(node: Node) -> Standin:
    """One compare per bound: bounds are inputs from opset 11 on, attributes before."""
    if node.opset >= 11:
        return aten.clamp.Tensor, (node.input(0), node.input(1), node.input(2)), {}
    return aten.clamp.default, (node.input(0), node.attrs.get("min"), node.attrs.get("max")), {}


def _gelu(node: Node) -> Standin:
    return aten.gelu.default, (node.input(0),), {"approximate": str(node.attrs.get("approximate", "none"))}


def _binary(op: Any) -> Builder:
    """An ONNX variadic op (Sum, Max, Min) with two inputs is the binary aten op; more are not mapped."""

    def build(node: Node) -> Standin:
        if len(node.inputs()) != 2:
            raise NotImplementedError(f"{node.proto.op_type} of {len(node.inputs())} inputs")
        return op, tuple(node.inputs()), {}

    return build


STANDINS: dict[str, Builder] = {
    # contractions
    "Conv": _conv,
    "ConvTranspose": lambda node: _conv(node, transposed=True),
    "Gemm": _gemm,
    "MatMul": _matmul,
    # pointwise arithmetic and activations
    "Add": _all(aten.add.Tensor),
    "Sub": _all(aten.sub.Tensor),
    "Mul": _all(aten.mul.Tensor),
    "Div": _all(aten.div.Tensor),
    "Pow": _all(aten.pow.Tensor_Tensor),
    "Sum": _binary(aten.add.Tensor),
    "Max": _binary(aten.maximum.default),
    "Min": _binary(aten.minimum.default),
    "Relu": _all(aten.relu.default),
    "Sigmoid": _all(aten.sigmoid.default),
    "Tanh": _all(aten.tanh.default),
    "Erf": _all(aten.erf.default),
    "Exp": _all(aten.exp.default),
    "Log": _all(aten.log.default),
    "Sqrt": _all(aten.sqrt.default),
    "Reciprocal": _all(aten.reciprocal.default),
    "Neg": _all(aten.neg.default),
    "Abs": _all(aten.abs.default),
    "Sin": _all(aten.sin.default),
    "Cos": _all(aten.cos.default),
    "Tan": _all(aten.tan.default),
    "Floor": _all(aten.floor.default),
    "Ceil": _all(aten.ceil.default),
    "Round": _all(aten.round.default),
    "Sign": _all(aten.sign.default),
    "Softplus": _all(aten.softplus.default),
    "HardSwish": _all(aten.hardswish.default),
    "HardSigmoid": _first(aten.hardsigmoid.default),
    "LeakyRelu": _first(aten.leaky_relu.default),
    "Elu": _first(aten.elu.default),
    "Selu": _first(aten.selu.default),
    "Celu": _first(aten.celu.default),
    "PRelu": _all(aten._prelu_kernel.default),
    "Gelu": _gelu,
    "Clip": _clip,
    "Where": _all(aten.where.self),
    "Equal": _all(aten.eq.Tensor),
    "Greater": _all(aten.gt.Tensor),
    "Less": _all(aten.lt.Tensor),
    "GreaterOrEqual": _all(aten.ge.Tensor),
    "LessOrEqual": _all(aten.le.Tensor),
    "Not": _all(aten.logical_not.default),
    "And": _all(aten.logical_and.default),
    "Or": _all(aten.logical_or.default),
    "Softmax": _softmax(aten._softmax.default),
    "LogSoftmax": _softmax(aten._log_softmax.default),
    # pooling, reductions, normalization
    "MaxPool": _pool({1: aten.max_pool1d.default, 2: aten.max_pool2d.default, 3: aten.max_pool3d.default}),
    "AveragePool": _pool({1: aten.avg_pool1d.default, 2: aten.avg_pool2d.default, 3: aten.avg_pool3d.default}),
    "GlobalAveragePool": _global(aten.mean.dim),
    "GlobalMaxPool": _global(aten.amax.default),
    "ReduceMean": _first(aten.mean.default),
    "ReduceSum": _first(aten.sum.default),
    "ReduceMax": _first(aten.amax.default),
    "ReduceMin": _first(aten.amin.default),
    "ReduceProd": _first(aten.prod.default),
    "ReduceL2": _first(aten.linalg_vector_norm.default),
    "ArgMax": _first(aten.argmax.default),
    "ArgMin": _first(aten.argmin.default),
    "CumSum": lambda node: (aten.cumsum.default, (node.input(0), int(node.attrs.get("axis", 0))), {}),
    "Resize": _resize,
    "BatchNormalization": _batch_norm,
    "LayerNormalization": _layer_norm,
    "GroupNormalization": _group_norm,
    "InstanceNormalization": lambda node: _group_norm(node, instance=True),
    # views: no arithmetic and, as in a PyTorch count, no bytes
    "Reshape": _first(aten.view.default),
    "Flatten": _first(aten.view.default),
    "Squeeze": _first(aten.view.default),
    "Unsqueeze": _first(aten.view.default),
    "Expand": _first(aten.expand.default),
    "Identity": _first(aten.alias.default),
    "Dropout": _first(aten.alias.default),  # inference: passes through
    "Transpose": lambda node: (aten.permute.default, (node.input(0), node.ints("perm", [])), {}),
    "Slice": _first(aten.slice.Tensor),
    "Split": _first(aten.split.Tensor),
    # data movement: no arithmetic, bytes read and written
    "Concat": lambda node: (aten.cat.default, (node.inputs(), int(node.attrs.get("axis", 0))), {}),
    "Cast": _first(aten._to_copy.default),
    "Pad": _first(aten.constant_pad_nd.default),
    "Tile": _first(aten.repeat.default),
    "ConstantOfShape": lambda node: (aten.full.default, ([], 0.0), {}),
    "Range": lambda node: (aten.arange.start_step, (0, 1, 1), {}),
    "Gather": lambda node: (
        aten.index_select.default,
        (node.input(0), int(node.attrs.get("axis", 0)), node.input(1)),
        {},
    ),
    "GatherElements": lambda node: (
        aten.gather.default,
        (node.input(0), int(node.attrs.get("axis", 0)), node.input(1)),
        {},
    ),
}
