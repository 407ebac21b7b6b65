"""Fused recurrent kernels: mkldnn (CPU), cuDNN, MIOpen, and the fused CUDA cells.

Per time step and batch row, a layer multiplies its input by W_ih (G·H × I) and its previous hidden state by
W_hh (G·H × H), G gates (LSTM 4, GRU 3, RNN 1):
    MACs = T·B·G·H·(I + H)     (+ T·B·P·H for an LSTM projection of size P)
Gate arithmetic per hidden unit and step (documented in `costs`): LSTM 30, GRU 21, RNN-tanh 6, RNN-ReLU 2,
plus 2·G bias adds when the layer has biases. Packed sequences count the real steps (sum of batch_sizes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import ops

from ..core.cost import Flops, Term, Work
from . import flops_per_element as costs
from .registry import TensorSpec, formula

aten = ops.aten

# cuDNN's mode numbers, shared by mkldnn and MIOpen: 0 RNN-ReLU, 1 RNN-tanh, 2 LSTM, 3 GRU
_CELL_FLOPS = {0: costs.RNN_RELU_CELL, 1: costs.RNN_TANH_CELL, 2: costs.LSTM_CELL, 3: costs.GRU_CELL}
GATES = {0: 1, 1: 1, 2: 4, 3: 3}


def steps_of(x: TensorSpec, batch_sizes: Sequence[int] | None, batch_first: bool) -> int:
    """Time steps × batch rows actually computed."""
    if batch_sizes is not None and len(batch_sizes) > 0:
        return int(sum(int(b) for b in batch_sizes))  # packed: x is (sum of batch sizes, I)
    if x.dim() == 2:  # unbatched (T, I)
        return int(x.shape[0])
    return int(x.shape[0]) * int(x.shape[1])


def layer_work(steps: int, shapes: Sequence[Sequence[Sequence[int]]], mode: int, has_biases: bool, hidden: int) -> Work:
    """Work of all (layer, direction) groups: each group is the shapes of (w_ih, w_hh[, w_hr])."""
    weight_elements = sum(int(w[0]) * int(w[1]) for group in shapes for w in group)
    groups = len(shapes)
    macs = Term("S·W", S=steps, W=weight_elements)
    gates = GATES[mode]
    flops = [Flops("rnn_cell", Term("S·L·H·c", S=steps, L=groups, H=hidden, c=_CELL_FLOPS[mode]))]
    if has_biases:
        flops.append(Flops("bias", Term("S·L·2·G·H", S=steps, L=groups, G=gates, H=hidden)))
    dots = steps * sum(int(w[0]) for group in shapes for w in group)
    note = "W = weight elements multiplied per step (W_ih, W_hh of every layer and direction)"
    return Work(macs=macs, dots=dots, flops=tuple(flops), note=note)


@formula(aten.mkldnn_rnn_layer)
def mkldnn_rnn_layer(
    result: tuple[TensorSpec, ...],
    x: TensorSpec,
    w_ih: TensorSpec,
    w_hh: TensorSpec,
    b_ih: TensorSpec,
    b_hh: TensorSpec,
    hx: TensorSpec,
    cx: TensorSpec,
    reverse: bool,
    batch_sizes: Sequence[int],
    mode: int,
    hidden_size: int,
    num_layers: int,
    has_biases: bool,
    bidirectional: bool,
    batch_first: bool,
    train: bool,
) -> Work:
    steps = steps_of(x, batch_sizes, bool(batch_first))
    return layer_work(steps, [[w_ih.shape, w_hh.shape]], int(mode), bool(has_biases), int(hidden_size))


@formula(aten.mkldnn_rnn_layer_backward)
def mkldnn_rnn_layer_backward(
    result: tuple[TensorSpec | None, ...],
    x: TensorSpec,
    w_ih: TensorSpec,
    w_hh: TensorSpec,
    b_ih: TensorSpec,
    b_hh: TensorSpec,
    hx: TensorSpec,
    cx: TensorSpec,
    output: TensorSpec,
    hy: TensorSpec,
    cy: TensorSpec,
    grad_output: TensorSpec | None,
    grad_hy: TensorSpec | None,
    grad_cy: TensorSpec | None,
    reverse: bool,
    mode: int,
    hidden_size: int,
    num_layers: int,
    has_biases: bool,
    train: bool,
    bidirectional: bool,
    batch_sizes: Sequence[int],
    batch_first: bool,
    workspace: TensorSpec,
) -> Work:
    # gradients for the inputs and for the weights each repeat the forward's products
    steps = steps_of(x, batch_sizes, bool(batch_first))
    forward = layer_work(steps, [[w_ih.shape, w_hh.shape]], int(mode), bool(has_biases), int(hidden_size))
    assert forward.macs is not None
    macs = Term("2·S·W", **dict(forward.macs.sizes))
    note = "backward = 2 × forward MACs (input and weight gradients); gate arithmetic as in the forward"
    return Work(macs=macs, dots=2 * forward.dots, flops=forward.flops, note=note)


def _grouped(weights: list[TensorSpec], stride: int) -> list[list[Sequence[int]]]:
    """cuDNN's flat weight list → the shapes of [(w_ih, w_hh[, w_hr])] per layer and direction, biases dropped."""
    groups = []
    for start in range(0, len(weights), stride):
        group = weights[start : start + stride]
        matrices: list[Sequence[int]] = [w.shape for w in group if w.dim() == 2]
        groups.append(matrices)
    return groups


@formula(aten._cudnn_rnn, aten.miopen_rnn)
def cudnn_rnn(
    result: tuple[TensorSpec, ...], x: TensorSpec, weight: Sequence[TensorSpec], weight_stride0: int, *rest: Any
) -> Work:
    # _cudnn_rnn: weight_buf, hx, cx, mode, hidden_size, proj_size, num_layers, batch_first, dropout, train,
    #             bidirectional, batch_sizes, dropout_state; miopen_rnn lacks weight_buf and proj_size
    if len(rest) == 13:
        _, _, _, mode, hidden, _, _, batch_first, _, _, _, batch_sizes, _ = rest
    else:
        _, _, mode, hidden, _, batch_first, _, _, _, batch_sizes, _ = rest
    groups = _grouped(list(weight), int(weight_stride0))
    has_biases = any(w.dim() == 1 for w in weight)
    return layer_work(steps_of(x, batch_sizes, bool(batch_first)), groups, int(mode), has_biases, int(hidden))


def _fused_cell(state: TensorSpec, has_bias: bool, gates: int, per_unit: int) -> Work:
    """Gate arithmetic of one fused CUDA cell step; its matrix products ran before it, as mm/addmm."""
    rows, hidden = int(state.shape[0]) if state.dim() > 1 else 1, int(state.shape[-1])
    flops = [Flops("rnn_cell", Term("B·H·c", B=rows, H=hidden, c=per_unit))]
    if has_bias:
        flops.append(Flops("bias", Term("B·2·G·H", B=rows, G=gates, H=hidden)))
    return Work(flops=tuple(flops))


@formula(aten._thnn_fused_lstm_cell)
def fused_lstm_cell(
    result: tuple[TensorSpec, ...],
    input_gates: TensorSpec,
    hidden_gates: TensorSpec,
    cx: TensorSpec,
    input_bias: TensorSpec | None = None,
    hidden_bias: TensorSpec | None = None,
) -> Work:
    return _fused_cell(cx, input_bias is not None, 4, costs.LSTM_CELL)


@formula(aten._thnn_fused_gru_cell)
def fused_gru_cell(
    result: tuple[TensorSpec, ...],
    input_gates: TensorSpec,
    hidden_gates: TensorSpec,
    hx: TensorSpec,
    input_bias: TensorSpec | None = None,
    hidden_bias: TensorSpec | None = None,
) -> Work:
    return _fused_cell(hx, input_bias is not None, 3, costs.GRU_CELL)
