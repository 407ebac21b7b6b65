"""Dynamically quantized recurrent layers: `quantize_dynamic` on nn.LSTM, nn.GRU, nn.LSTMCell, nn.GRUCell and
nn.RNNCell (DynamicQuantizedLSTM, …), each one op for the whole layer.

Their gate products are those of the float layers (rnn.py): per time step and batch row, each layer and
direction multiplies its input by W_ih (G·H × I) and its hidden state by W_hh (G·H × H),
    MACs = T·B·G·H·(I + H)     (a layer after the first reads D·H inputs, D directions)
in int8 when the weights are qint8 (fbgemm quantizes the float input and hidden state at each step and multiplies
8 by 8 bits), in float32 when they are float16 (fbgemm widens each fp16 weight to fp32 and multiplies in fp32).
The gate arithmetic (sigmoids, tanh, the cell update) and the bias adds run in float on the dequantized products:
counted as for the float layers (`costs`), under the input's dtype — `report.by_dtype()` splits the call.
The weights are packed script objects, not tensors: their bytes (1 per int8 element, 2 per float16 one) and the
float32 biases are added to the bytes the op reads.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import ops
from torch.utils._python_dispatch import _disable_current_modes

from ..core.cost import Work
from .quantized import tensor_bytes, unpacked
from .registry import TensorSpec, dtype_name, formula, output_rule
from .rnn import GATES, layer_work, steps_of

aten, quantized = ops.aten, ops.quantized

LSTM, GRU, RNN_TANH, RNN_RELU = 2, 3, 1, 0  # cuDNN's mode numbers, as rnn.py uses them


def _hidden(hx: TensorSpec | list[TensorSpec] | tuple[TensorSpec, ...]) -> TensorSpec:
    """The hidden state: an LSTM passes (h, c), the others h."""
    hidden: TensorSpec = hx[0] if isinstance(hx, (list, tuple)) else hx
    return hidden


def _in_fp16(cell_params: Any) -> bool:  # a script object (CellParamsBase): its methods are not typed
    """Whether a quantized RNN's cell parameters hold float16 weights ('quantized_dynamic_fp16', 'quantized_fp16')
    rather than qint8 ones ('quantized_dynamic', 'quantized'): the kind their serialized state names first."""
    with _disable_current_modes():  # reading a script object's state is no op of the model's
        state = cell_params.__getstate__()
    kind = state[0][0] if isinstance(state[0], tuple) else state[0]
    return "fp16" in str(kind)


def _quantized_work(work: Work, x: TensorSpec, fp16: bool, read: int) -> Work:
    """`work` with the dtype of its products (int8, or the input's float for fp16 weights) and the bytes it reads."""
    if fp16:  # products in the input's float dtype, as its tensors say
        note = f"{work.note}; float16 weights, widened to float32 before each multiply-add"
        return dataclasses.replace(work, bytes_read=read, note=note)
    note = f"{work.note}; int8 products (input and hidden state quantized at each step), gate arithmetic in float"
    return dataclasses.replace(work, dtype="int8", other_dtype=dtype_name(x.dtype), bytes_read=read, note=note)


def _padded(args: tuple[Any, ...]) -> bool:
    """Whether a quantized LSTM or GRU call is the `.input` form (a padded batch), not `.data` (a packed sequence):
    `.input` passes its cell parameters third, `.data` its hidden state."""
    third = args[2]
    return isinstance(third, (list, tuple)) and not any(isinstance(p, (TensorSpec, torch.Tensor)) for p in third)


@output_rule(aten.quantized_lstm, aten.quantized_gru)
def packed_sequence_output(*args: Any, **kwargs: Any) -> tuple[torch.Tensor, ...] | None:
    """On fake tensors: the packed-sequence form has no fake kernel (the padded one has). Its output holds the
    same rows as its input, D·H wide, then the final hidden states, shaped as the initial ones."""
    if _padded(args):
        return None
    x, _, hx, _, _, _, _, _, bidirectional = args
    states = list(hx) if isinstance(hx, (list, tuple)) else [hx]
    out = x.new_empty((x.shape[0], (2 if bidirectional else 1) * states[0].shape[-1]))
    return (out, *(h.new_empty(h.shape) for h in states))


def _layers(mode: int, args: tuple[Any, ...]) -> Work:
    """Every layer and direction of a quantized LSTM or GRU; the `.input` and `.data` (packed sequence) forms."""
    if _padded(args):
        x, hx, params, has_biases, layers, _, _, bidirectional, *rest = args  # .input: batch_first last
        steps = steps_of(x, None, bool(rest[0]) if rest else False)
    else:
        x, _, hx, params, has_biases, layers, _, _, bidirectional = args  # .data: x holds only the real steps
        steps = int(x.shape[0])
    hidden, directions, gates = int(_hidden(hx).shape[-1]), 2 if bidirectional else 1, GATES[mode]
    shapes = [
        [(gates * hidden, int(x.shape[-1]) if layer == 0 else directions * hidden), (gates * hidden, hidden)]
        for layer in range(int(layers))
        for _ in range(directions)
    ]
    fp16 = _in_fp16(params[0])
    weight_elements = sum(rows * columns for group in shapes for rows, columns in group)
    biases = len(shapes) * 2 * gates * hidden * 4 if has_biases else 0  # b_ih and b_hh, float32
    read = tensor_bytes(args) + weight_elements * (2 if fp16 else 1) + biases
    return _quantized_work(layer_work(steps, shapes, mode, bool(has_biases), hidden), x, fp16, read)


@formula(aten.quantized_lstm)
def quantized_lstm(result: tuple[TensorSpec, ...], *args: Any, **kwargs: Any) -> Work:
    """LSTM gate products T·B·4H·(I + H) per layer and direction, int8 (qint8 weights) or float32 (float16)."""
    return _layers(LSTM, args)


@formula(aten.quantized_gru)
def quantized_gru(result: tuple[TensorSpec, ...], *args: Any, **kwargs: Any) -> Work:
    """GRU gate products T·B·3H·(I + H) per layer and direction, int8 (qint8 weights) or float32 (float16)."""
    return _layers(GRU, args)


def _cell(
    mode: int,
    x: TensorSpec,
    hx: TensorSpec | list[TensorSpec],
    w_ih: Any,
    w_hh: Any,
    b_ih: TensorSpec | None,
    b_hh: TensorSpec | None,
) -> Work:
    """One step of a quantized cell: B rows (1 for an unbatched input)."""
    rows = int(x.shape[0]) if x.dim() > 1 else 1
    hidden, gates = int(_hidden(hx).shape[-1]), GATES[mode]
    shapes = [[(gates * hidden, int(x.shape[-1])), (gates * hidden, hidden)]]
    weight = unpacked(w_ih)[0]
    fp16 = weight.is_floating_point()  # fp16-packed weights unpack widened to float32; qint8 ones stay qint8
    read = tensor_bytes((x, hx, w_ih, w_hh, b_ih, b_hh))
    return _quantized_work(layer_work(rows, shapes, mode, b_ih is not None, hidden), x, fp16, read)


@formula(quantized.quantized_lstm_cell_dynamic)
def lstm_cell(
    result: tuple[TensorSpec, ...],
    x: TensorSpec,
    hx: list[TensorSpec],
    w_ih: Any,
    w_hh: Any,
    b_ih: TensorSpec | None = None,
    b_hh: TensorSpec | None = None,
) -> Work:
    """One LSTM step: B·4H·(I + H) gate products, int8 (qint8 weights) or float32 (float16)."""
    return _cell(LSTM, x, hx, w_ih, w_hh, b_ih, b_hh)


@formula(quantized.quantized_gru_cell_dynamic)
def gru_cell(
    result: TensorSpec,
    x: TensorSpec,
    hx: TensorSpec,
    w_ih: Any,
    w_hh: Any,
    b_ih: TensorSpec | None = None,
    b_hh: TensorSpec | None = None,
) -> Work:
    """One GRU step: B·3H·(I + H) gate products, int8 (qint8 weights) or float32 (float16)."""
    return _cell(GRU, x, hx, w_ih, w_hh, b_ih, b_hh)


@formula(quantized.quantized_rnn_tanh_cell_dynamic)
def rnn_tanh_cell(
    result: TensorSpec,
    x: TensorSpec,
    hx: TensorSpec,
    w_ih: Any,
    w_hh: Any,
    b_ih: TensorSpec | None = None,
    b_hh: TensorSpec | None = None,
) -> Work:
    """One tanh RNN step: B·H·(I + H) products, int8 (qint8 weights) or float32 (float16)."""
    return _cell(RNN_TANH, x, hx, w_ih, w_hh, b_ih, b_hh)


@formula(quantized.quantized_rnn_relu_cell_dynamic)
def rnn_relu_cell(
    result: TensorSpec,
    x: TensorSpec,
    hx: TensorSpec,
    w_ih: Any,
    w_hh: Any,
    b_ih: TensorSpec | None = None,
    b_hh: TensorSpec | None = None,
) -> Work:
    """One ReLU RNN step: B·H·(I + H) products, int8 (qint8 weights) or float32 (float16)."""
    return _cell(RNN_RELU, x, hx, w_ih, w_hh, b_ih, b_hh)
