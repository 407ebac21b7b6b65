"""TFLite builtin operators → the aten op whose registered formula costs them, with its arguments.

Each builder fills a `Step` from an `Operator` (the operator's tensors as meta tensors, its builtin options table,
the data of its small integer constants). Convolutions and matrix products get stand-ins in PyTorch's layout
(NCHW, weight O×I×KH×KW, K×N operands), so that the formula sees the shapes it knows; the bytes are always the
file's own tensors. Field numbers are those of TFLite's schema.fbs options tables.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from typing import Any

import torch

from .flatbuffer import Table
from .steps import FREE, Step, meta

aten = torch.ops.aten


class Operator:
    """One operator as its builder sees it; `read` collects the positions of the inputs it reads as data (their
    bytes are the operator's reads; a shape, axes or permutation operand is a plain value to the aten op)."""

    def __init__(
        self,
        name: str,
        inputs: list[torch.Tensor | None],
        outputs: list[torch.Tensor],
        options: Table | None,
        data: dict[int, bytes],
    ) -> None:
        self.name, self.inputs, self.outputs, self.options, self.data = name, inputs, outputs, options, data
        self.read: list[int] = []

    def input(self, i: int) -> Any:
        """Input `i` (None when the operator leaves that optional input out)."""
        tensor = self.inputs[i] if i < len(self.inputs) else None
        if tensor is not None and i not in self.read:
            self.read.append(i)
        return tensor

    def ints(self, i: int) -> list[int]:
        """The values of constant integer input `i` (axes, a permutation), not read as data."""
        raw, tensor = self.data.get(i, b""), self.inputs[i] if i < len(self.inputs) else None
        if tensor is None or not raw:
            raise NotImplementedError(f"{self.name} with a computed (non-constant) input {i}")
        fmt = "<q" if tensor.dtype == torch.int64 else "<i"
        return [v for (v,) in struct.iter_unpack(fmt, raw)]

    def option(self, field: int, fmt: str, default: Any = 0) -> Any:
        return self.options.scalar(field, fmt, default) if self.options is not None else default

    def fill(
        self, step: Step, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any] | None = None, out: Any = None
    ) -> None:
        step.func, step.args, step.kwargs = func, args, kwargs or {}
        step.out = out if out is not None else self.outputs[0] if len(self.outputs) == 1 else tuple(self.outputs)
        step.reads = [t for i in self.read if (t := self.inputs[i]) is not None]
        step.writes = list(self.outputs)


Builder = Callable[[Operator, Step], None]


def _nchw(t: torch.Tensor) -> torch.Tensor:
    n, *spatial, c = t.shape
    return meta((n, c, *spatial), t.dtype)


def _conv(node: Operator, step: Step) -> None:
    """CONV_2D: input N×H×W×C, filter O×KH×KW×I (I = C / groups), bias O; options: stride w, h (1, 2), dilation
    w, h (4, 5)."""
    x, w, b = node.input(0), node.input(1), node.input(2)
    o, kh, kw, i = w.shape
    stride, dilation = (
        [node.option(2, "<i", 1), node.option(1, "<i", 1)],
        [node.option(5, "<i", 1), node.option(4, "<i", 1)],
    )
    node.fill(
        step,
        aten.convolution.default,
        (
            _nchw(x),
            meta((o, i, kh, kw), w.dtype),
            b,
            stride,
            [0, 0],
            dilation,
            False,
            [0, 0],
            int(x.shape[-1]) // max(int(i), 1),
        ),
        out=_nchw(node.outputs[0]),
    )


def _depthwise(node: Operator, step: Step) -> None:
    """DEPTHWISE_CONV_2D: filter 1×KH×KW×O (O = C × depth multiplier), one group per input channel; options:
    stride w, h (1, 2), dilation w, h (5, 6)."""
    x, w, b = node.input(0), node.input(1), node.input(2)
    _, kh, kw, o = w.shape
    stride, dilation = (
        [node.option(2, "<i", 1), node.option(1, "<i", 1)],
        [node.option(6, "<i", 1), node.option(5, "<i", 1)],
    )
    node.fill(
        step,
        aten.convolution.default,
        (_nchw(x), meta((o, 1, kh, kw), w.dtype), b, stride, [0, 0], dilation, False, [0, 0], int(x.shape[-1])),
        out=_nchw(node.outputs[0]),
    )


def _transpose_conv(node: Operator, step: Step) -> None:
    """TRANSPOSE_CONV: inputs output shape (a value), filter O×KH×KW×I, input N×H×W×I, bias O (optional)."""
    w, x, b = node.input(1), node.input(2), node.input(3) if len(node.inputs) > 3 else None
    o, kh, kw, i = w.shape
    stride = [node.option(2, "<i", 1), node.option(1, "<i", 1)]
    node.fill(
        step,
        aten.convolution.default,
        (_nchw(x), meta((i, o, kh, kw), w.dtype), b, stride, [0, 0], [1, 1], True, [0, 0], 1),
        out=_nchw(node.outputs[0]),
    )


def _fully_connected(node: Operator, step: Step) -> None:
    """FULLY_CONNECTED: rows of K (the input flattened) times the N×K weights, transposed, plus the bias: addmm."""
    x, w, b = node.input(0), node.input(1), node.input(2) if len(node.inputs) > 2 else None
    n, k = int(w.shape[0]), int(w.shape[1])
    rows = meta((x.numel() // max(k, 1), k), x.dtype)
    out = meta((rows.shape[0], n), node.outputs[0].dtype)
    weight = meta((k, n), w.dtype)
    if b is not None:
        node.fill(step, aten.addmm.default, (b, rows, weight), out=out)
    else:
        node.fill(step, aten.mm.default, (rows, weight), out=out)


def _batch_matmul(node: Operator, step: Step) -> None:
    """BATCH_MATMUL as torch.matmul runs it: a 2-d right operand folds the left one's batch into rows (mm), else
    bmm over the broadcast batch; adj_x and adj_y (options 0, 1) read an operand transposed."""
    a, b = node.input(0), node.input(1)
    a_shape, b_shape = list(a.shape), list(b.shape)
    if node.option(0, "<?", False):
        a_shape[-2:] = a_shape[-1], a_shape[-2]
    if node.option(1, "<?", False):
        b_shape[-2:] = b_shape[-1], b_shape[-2]
    (m, k), n = a_shape[-2:], b_shape[-1]
    if len(b_shape) == 2:
        rows = math.prod(a_shape[:-1])
        node.fill(
            step, aten.mm.default, (meta((rows, k), a.dtype), meta((k, n), b.dtype)), out=meta((rows, n), a.dtype)
        )
        return
    batch = math.prod(torch.broadcast_shapes(a_shape[:-2], b_shape[:-2]))  # type: ignore[no-untyped-call]
    node.fill(
        step,
        aten.bmm.default,
        (meta((batch, m, k), a.dtype), meta((batch, k, n), b.dtype)),
        out=meta((batch, m, n), a.dtype),
    )


def _pool(op: Any) -> Builder:
    """MAX_POOL_2D, AVERAGE_POOL_2D: filter width and height are options 3 and 4."""
    return lambda node, step: node.fill(
        step, op, (_nchw(node.input(0)), [node.option(4, "<i", 1), node.option(3, "<i", 1)]), out=_nchw(node.outputs[0])
    )


def _all(op: Any, *extra: Any) -> Builder:
    """Every input is an argument, in order (pointwise ops), then `extra` values."""
    return lambda node, step: node.fill(step, op, (*(node.input(i) for i in range(len(node.inputs))), *extra))


def _reduce(op: Any) -> Builder:
    """MEAN, SUM, REDUCE_MAX…: input, axes (a constant), keep_dims (option 0)."""
    return lambda node, step: node.fill(step, op, (node.input(0), node.ints(1), node.option(0, "<?", False)))


def _first(op: Any, *extra: Any) -> Builder:
    """Only the first input is read (a copy, a view, a cast)."""
    return lambda node, step: node.fill(step, op, (node.input(0), *extra))


def _resize(op: Any) -> Builder:
    """RESIZE_*: an N×H×W×C input resized to the output's H×W (the size input is a value)."""
    return lambda node, step: node.fill(
        step, op, (_nchw(node.input(0)), list(node.outputs[0].shape[1:3])), out=_nchw(node.outputs[0])
    )


def _split(node: Operator, step: Step) -> None:
    """SPLIT (axis, input) and SPLIT_V (input, sizes, axis): a copy of the input into the outputs."""
    x = node.input(1) if node.name == "SPLIT" else node.input(0)
    node.fill(step, aten.split_with_sizes_copy.default, (x, [1]))


def _gelu(node: Operator, step: Step) -> None:
    node.fill(step, aten.gelu.default, (node.input(0),), {"approximate": "tanh" if node.option(0, "<?") else "none"})


def _leaky_relu(node: Operator, step: Step) -> None:
    node.fill(step, aten.leaky_relu.default, (node.input(0), node.option(0, "<f", 0.2)))


BUILDERS: dict[str, Builder] = {
    # contractions
    "CONV_2D": _conv,
    "DEPTHWISE_CONV_2D": _depthwise,
    "TRANSPOSE_CONV": _transpose_conv,
    "FULLY_CONNECTED": _fully_connected,
    "BATCH_MATMUL": _batch_matmul,
    # pointwise arithmetic and activations
    "ADD": _all(aten.add.Tensor),
    "SUB": _all(aten.sub.Tensor),
    "MUL": _all(aten.mul.Tensor),
    "DIV": _all(aten.div.Tensor),
    "POW": _all(aten.pow.Tensor_Tensor),
    "MAXIMUM": _all(aten.maximum.default),
    "MINIMUM": _all(aten.minimum.default),
    "RELU": _all(aten.relu.default),
    "RELU6": _first(aten.hardtanh.default, 0.0, 6.0),
    "RELU_N1_TO_1": _first(aten.hardtanh.default, -1.0, 1.0),
    "RELU_0_TO_1": _first(aten.hardtanh.default, 0.0, 1.0),
    "LOGISTIC": _all(aten.sigmoid.default),
    "TANH": _all(aten.tanh.default),
    "HARD_SWISH": _all(aten.hardswish.default),
    "GELU": _gelu,
    "LEAKY_RELU": _leaky_relu,
    "PRELU": _all(aten._prelu_kernel.default),
    "ELU": _all(aten.elu.default),
    "EXP": _all(aten.exp.default),
    "LOG": _all(aten.log.default),
    "SQRT": _all(aten.sqrt.default),
    "RSQRT": _all(aten.rsqrt.default),
    "NEG": _all(aten.neg.default),
    "ABS": _all(aten.abs.default),
    "SIN": _all(aten.sin.default),
    "COS": _all(aten.cos.default),
    "FLOOR": _all(aten.floor.default),
    "CEIL": _all(aten.ceil.default),
    "ROUND": _all(aten.round.default),
    "SIGN": _all(aten.sign.default),
    "SQUARE": _first(aten.pow.Tensor_Scalar, 2),
    "SELECT": _all(aten.where.self),
    "SELECT_V2": _all(aten.where.self),
    "LESS": _all(aten.lt.Tensor),
    "GREATER": _all(aten.gt.Tensor),
    "EQUAL": _all(aten.eq.Tensor),
    "NOT_EQUAL": _all(aten.ne.Tensor),
    "LESS_EQUAL": _all(aten.le.Tensor),
    "GREATER_EQUAL": _all(aten.ge.Tensor),
    "LOGICAL_AND": _all(aten.logical_and.default),
    "LOGICAL_OR": _all(aten.logical_or.default),
    "LOGICAL_NOT": _all(aten.logical_not.default),
    "SOFTMAX": _first(aten._softmax.default, -1, False),
    "LOG_SOFTMAX": _first(aten._log_softmax.default, -1, False),
    # pooling and reductions
    "MAX_POOL_2D": _pool(aten.max_pool2d.default),
    "AVERAGE_POOL_2D": _pool(aten.avg_pool2d.default),
    "MEAN": _reduce(aten.mean.dim),
    "SUM": _reduce(aten.sum.dim_IntList),
    "REDUCE_MAX": _reduce(aten.amax.default),
    "REDUCE_MIN": _reduce(aten.amin.default),
    "ARG_MAX": _first(aten.argmax.default),
    "ARG_MIN": _first(aten.argmin.default),
    "CUMSUM": lambda node, step: node.fill(step, aten.cumsum.default, (node.input(0), node.ints(1)[0])),
    "RESIZE_BILINEAR": _resize(aten.upsample_bilinear2d.default),
    "RESIZE_NEAREST_NEIGHBOR": _resize(aten.upsample_nearest2d.default),
    # views: the same data seen with another shape (no arithmetic, no bytes, as in a PyTorch count)
    "RESHAPE": _first(aten.view.default),
    "SQUEEZE": _first(aten.view.default),
    "EXPAND_DIMS": _first(aten.view.default),
    # copies: no arithmetic, their bytes read and written (TFLite materialises a transpose or a slice)
    "TRANSPOSE": _first(aten.permute_copy.default),
    "CONCATENATION": lambda node, step: node.fill(
        step, aten.cat.default, ([node.input(i) for i in range(len(node.inputs))],)
    ),
    "PAD": _first(aten.constant_pad_nd.default),
    "PADV2": _first(aten.constant_pad_nd.default),
    "MIRROR_PAD": _first(aten.reflection_pad2d.default),
    "SLICE": _first(aten.slice_copy.Tensor),
    "STRIDED_SLICE": _first(aten.slice_copy.Tensor),
    "SPLIT": _split,
    "SPLIT_V": _split,
    "PACK": lambda node, step: node.fill(step, aten.stack.default, ([node.input(i) for i in range(len(node.inputs))],)),
    "UNPACK": _first(aten.unbind_copy.int),
    "TILE": _first(aten.repeat.default),
    "BROADCAST_TO": _first(aten.expand_copy.default),
    "CAST": _first(aten._to_copy.default),
    "DEQUANTIZE": _first(aten._to_copy.default),
    "ZEROS_LIKE": _first(aten.zeros_like.default),
    "GATHER": lambda node, step: node.fill(
        step, aten.index_select.default, (node.input(0), node.option(0, "<i"), node.input(1))
    ),
    "SHAPE": lambda node, step: setattr(step, "func", FREE),
}
# operators with a fused activation: the options field that holds it
FUSED = {
    "CONV_2D": 3,
    "DEPTHWISE_CONV_2D": 4,
    "TRANSPOSE_CONV": 3,
    "FULLY_CONNECTED": 0,
    "AVERAGE_POOL_2D": 5,
    "MAX_POOL_2D": 5,
    "ADD": 0,
    "SUB": 0,
    "MUL": 0,
    "DIV": 0,
    "CONCATENATION": 1,
}
_ACTIVATIONS: dict[int, tuple[str, Any, tuple[Any, ...]]] = {  # ActivationFunctionType
    1: ("RELU", aten.relu.default, ()),
    2: ("RELU_N1_TO_1", aten.hardtanh.default, (-1.0, 1.0)),
    3: ("RELU6", aten.hardtanh.default, (0.0, 6.0)),
    4: ("TANH", aten.tanh.default, ()),
    5: ("SIGN_BIT", aten.sign.default, ()),
}


def fused_activation(node: Operator, field: int) -> Step | None:
    """The operator's fused activation as a step of its own, on the output; it moves no bytes of its own."""
    kind = node.option(field, "<b")
    if kind not in _ACTIVATIONS:
        return None
    name, op, extra = _ACTIVATIONS[kind]
    out = node.outputs[0]
    return Step(f"tflite.{name} (fused)", "", func=op, args=(out, *extra), out=out)


# schema.fbs: BuiltinOperator codes → names (the ones flopwise maps or names in its messages)
_CODES = """
0 ADD  1 AVERAGE_POOL_2D  2 CONCATENATION  3 CONV_2D  4 DEPTHWISE_CONV_2D  5 DEPTH_TO_SPACE  6 DEQUANTIZE
7 EMBEDDING_LOOKUP  8 FLOOR  9 FULLY_CONNECTED  11 L2_NORMALIZATION  14 LOGISTIC  16 LSTM  17 MAX_POOL_2D
18 MUL  19 RELU  20 RELU_N1_TO_1  21 RELU6  22 RESHAPE  23 RESIZE_BILINEAR  25 SOFTMAX  26 SPACE_TO_DEPTH
28 TANH  31 CALL  32 CUSTOM  34 PAD  36 GATHER  39 TRANSPOSE  40 MEAN  41 SUB  42 DIV  43 SQUEEZE
44 UNIDIRECTIONAL_SEQUENCE_LSTM  45 STRIDED_SLICE  47 EXP  49 SPLIT  50 LOG_SOFTMAX  51 DELEGATE  53 CAST
54 PRELU  55 MAXIMUM  56 ARG_MAX  57 MINIMUM  58 LESS  59 NEG  60 PADV2  61 GREATER  62 GREATER_EQUAL
63 LESS_EQUAL  64 SELECT  65 SLICE  66 SIN  67 TRANSPOSE_CONV  69 TILE  70 EXPAND_DIMS  71 EQUAL  72 NOT_EQUAL
73 LOG  74 SUM  75 SQRT  76 RSQRT  77 SHAPE  78 POW  79 ARG_MIN  81 REDUCE_PROD  82 REDUCE_MAX  83 PACK
84 LOGICAL_OR  86 LOGICAL_AND  87 LOGICAL_NOT  88 UNPACK  89 REDUCE_MIN  92 SQUARE  93 ZEROS_LIKE  94 FILL
97 RESIZE_NEAREST_NEIGHBOR  98 LEAKY_RELU  99 SQUARED_DIFFERENCE  100 MIRROR_PAD  101 ABS  102 SPLIT_V
104 CEIL  106 ADD_N  107 GATHER_ND  108 COS  111 ELU  114 QUANTIZE  116 ROUND  117 HARD_SWISH  118 IF
119 WHILE  123 SELECT_V2  126 BATCH_MATMUL  128 CUMSUM  129 CALL_ONCE  130 BROADCAST_TO  132 CONV_3D  150 GELU
152 RELU_0_TO_1  158 SIGN  206 STABLEHLO_COMPOSITE
"""
NAMES: dict[int, str] = {int(code): name for code, name in zip(*[iter(_CODES.split())] * 2, strict=True)}
