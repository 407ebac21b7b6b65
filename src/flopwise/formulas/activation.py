"""Activations, softmax and dropout, with their gradients. Per-element costs are in `costs`.

Dropout costs nothing at inference (the op is not even called); in training it multiplies by the mask and
by 1/(1−p): 2 FLOPs per element (drawing the random mask is not floating-point arithmetic).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import ops

from ..core.cost import Flops, Term, Work
from . import flops_per_element as costs
from .pointwise import per_element
from .registry import TensorSpec, formula, zero_cost
from .shapes import Scalar, first, nested_sizes

aten = ops.aten

formula(aten.relu, aten.threshold)(per_element("activation", costs.RELU))
formula(aten.tanh)(per_element("activation", costs.TANH))
formula(aten.sigmoid)(per_element("activation", costs.SIGMOID))
formula(aten.silu)(per_element("activation", costs.SILU))
formula(aten.mish)(per_element("activation", costs.MISH))
formula(aten.softplus)(per_element("activation", costs.SOFTPLUS))
formula(aten.leaky_relu, aten._prelu_kernel)(per_element("activation", costs.LEAKY_RELU))
formula(aten.elu, aten.celu)(per_element("activation", costs.ELU))
formula(aten.selu)(per_element("activation", costs.SELU))
formula(aten.hardtanh)(per_element("activation", costs.HARDTANH))
formula(aten.hardsigmoid)(per_element("activation", costs.HARDSIGMOID))
formula(aten.hardswish)(per_element("activation", costs.HARDSWISH))
formula(aten.logit)(per_element("activation", 3))  # log(p / (1 − p)): subtract, divide, log

formula(aten.clamp_min, aten.clamp_max)(per_element("activation", 1))  # one compare


@formula(aten.clamp)
def clamp(
    result: TensorSpec,
    x: TensorSpec,
    min: TensorSpec | Scalar | None = None,
    max: TensorSpec | Scalar | None = None,
    **kwargs: Any,
) -> Work:
    """One compare per bound given, per element."""
    bounds = (min is not None) + (max is not None)  # one compare per bound given
    return Work(flops=(Flops("activation", Term("E·c", E=first(result).numel(), c=bounds)),))


formula(aten.threshold_backward)(per_element("activation_backward", costs.RELU_BACKWARD))
formula(aten.sigmoid_backward)(per_element("activation_backward", costs.SIGMOID_BACKWARD))
formula(aten.tanh_backward)(per_element("activation_backward", costs.TANH_BACKWARD))
formula(aten.silu_backward)(per_element("activation_backward", costs.SILU_BACKWARD))
formula(aten.hardtanh_backward)(per_element("activation_backward", costs.HARDTANH_BACKWARD))
formula(aten.hardsigmoid_backward)(per_element("activation_backward", costs.HARDSIGMOID_BACKWARD))
formula(aten.hardswish_backward)(per_element("activation_backward", costs.HARDSWISH_BACKWARD))
formula(aten.leaky_relu_backward)(per_element("activation_backward", costs.LEAKY_RELU_BACKWARD))
formula(aten.elu_backward)(per_element("activation_backward", costs.ELU_BACKWARD))


@formula(aten.gelu)
def gelu(result: TensorSpec, x: TensorSpec, approximate: str = "none") -> Work:
    """5 FLOPs per element (erf form) or 13 (tanh approximation)."""
    cost = costs.GELU_TANH if approximate == "tanh" else costs.GELU
    note = "tanh approximation" if approximate == "tanh" else "exact (erf) form"
    return Work(flops=(Flops("activation", Term("E·c", E=first(result).numel(), c=cost)),), note=note)


@formula(aten.gelu_backward)
def gelu_backward(result: TensorSpec, grad: TensorSpec, x: TensorSpec, approximate: str = "none") -> Work:
    """11 FLOPs per gradient element (erf form) or 18 (tanh approximation)."""
    # the tanh form's derivative costs about what its forward does plus the chain-rule products
    cost = costs.GELU_TANH + 5 if approximate == "tanh" else costs.GELU_BACKWARD
    return Work(flops=(Flops("activation_backward", Term("E·c", E=first(result).numel(), c=cost)),))


def _rows(x: TensorSpec, dim: int) -> tuple[int, int]:
    """(rows, n): the softmax runs over `n` elements of dim `dim`, once per row."""
    n = int(x.shape[dim]) if x.dim() else 1
    return (x.numel() // n if n else 0), n


@formula(aten._softmax, aten._safe_softmax, aten.softmax)  # softmax: its out= overload
def softmax(result: TensorSpec, x: TensorSpec, dim: int, *args: bool | torch.dtype | None, **kwargs: Any) -> Work:
    """3n−1 per row of n (the guide): n exps, n−1 adds, n divides."""
    rows, n = _rows(x, dim)
    return Work(flops=(Flops("softmax", Term("R·(3·n−1)", R=rows, n=n)),))


@formula(aten._log_softmax, aten.log_softmax)  # log_softmax: its out= overload
def log_softmax(result: TensorSpec, x: TensorSpec, dim: int, *args: bool | torch.dtype | None, **kwargs: Any) -> Work:
    """3n per row of n: n exps, n−1 adds, one log, n subtracts."""
    rows, n = _rows(x, dim)  # n exps, n−1 adds, one log, n subtracts
    return Work(flops=(Flops("softmax", Term("R·3·n", R=rows, n=n)),))


@formula(aten._softmax_backward_data, aten._log_softmax_backward_data)
def softmax_backward(
    result: TensorSpec, grad: TensorSpec, output: TensorSpec, dim: int, *args: torch.dtype, **kwargs: Any
) -> Work:
    """4n−1 per row of n: y·(g − Σ g·y)."""
    rows, n = _rows(grad, dim)  # y·(g − Σ g·y), or g − e^y·Σ g: 4n−1 per row either way
    return Work(flops=(Flops("softmax_backward", Term("R·(4·n−1)", R=rows, n=n)),))


@formula(aten._masked_softmax)
def masked_softmax(
    result: TensorSpec, x: TensorSpec, mask: TensorSpec, dim: int | None = None, *args: int | None, **kwargs: Any
) -> Work:
    """The fast path's softmax with a boolean mask: 3n−1 per row of n, as softmax (the mask selects, no FLOP)."""
    rows, n = _rows(x, -1 if dim is None else dim)
    return Work(flops=(Flops("softmax", Term("R·(3·n−1)", R=rows, n=n)),))


@formula(aten._masked_softmax_backward)
def masked_softmax_backward(
    result: TensorSpec,
    grad: TensorSpec,
    output: TensorSpec,
    mask: TensorSpec,
    dim: int | None = None,
    *args: Any,
    **kwargs: Any,
) -> Work:
    """4n−1 per row of n, as softmax's gradient (the mask selects, no FLOP)."""
    rows, n = _rows(grad, -1 if dim is None else dim)
    return Work(flops=(Flops("softmax_backward", Term("R·(4·n−1)", R=rows, n=n)),))


@formula(aten._nested_tensor_softmax_with_shape)
def nested_scores_softmax(result: TensorSpec, scores: TensorSpec, query: TensorSpec) -> Work:
    """Softmax of padded (B, H, L, L) attention scores over each sequence's real L_i×L_i block (the lengths
    come from the nested `query`): Σ_i H·L_i·(3·L_i−1) = H·(3·Q − T), Q = Σ L_i², T = Σ L_i."""
    sizes = nested_sizes(query)
    if sizes is None:  # a regular query: every row of the scores is real
        return softmax(result, scores, -1)
    lengths = [int(s[0]) for s in sizes]
    q, t = sum(n * n for n in lengths), sum(lengths)
    return Work(flops=(Flops("softmax", Term("H·(3·Q − T)", H=int(scores.shape[1]), Q=q, T=t)),))


@formula(aten.native_dropout)
def native_dropout(result: tuple[TensorSpec, ...], x: TensorSpec, p: float, train: bool | None) -> Work:
    """0 at inference; in training 2 per element (mask multiply, 1/(1−p) scale)."""
    if not train:
        return Work(note="dropout at inference: identity")
    return Work(flops=(Flops("dropout", Term("E·2", E=x.numel())),), note="mask multiply and 1/(1−p) scale")


formula(aten.native_dropout_backward)(per_element("dropout", 2))  # g · mask · scale

zero_cost(
    "draws random numbers (no floating-point arithmetic counted)",
    [
        aten.bernoulli,
        aten.rand,
        aten.rand_like,
        aten.randn,
        aten.randn_like,
        aten.randint,
        aten.randint_like,
        aten.randperm,
        aten.normal,
        aten.uniform,
        aten.exponential,
        aten.multinomial,
        aten.poisson,
    ],
)

formula(aten.rrelu_with_noise, aten.rrelu_with_noise_functional, aten.rrelu_with_noise_backward)(
    per_element("activation", costs.LEAKY_RELU)
)  # a leaky ReLU with a drawn slope: compare, multiply
formula(aten.softshrink_backward, aten.hardshrink_backward)(per_element("activation_backward", 2))  # two compares
formula(aten.logit_backward)(per_element("activation_backward", 3))  # g / (x·(1 − x)): subtract, multiply, divide
formula(aten._fused_dropout)(per_element("dropout", 2))  # x · mask · 1/(1 − p), the mask drawn
zero_cost(
    "draws random numbers (no floating-point arithmetic counted)",
    [
        aten.random,
        aten.geometric,
        aten.log_normal,
        aten.cauchy,
        aten.binomial,
        aten._standard_gamma,
        aten._sample_dirichlet,
        aten.normal_functional,
        aten._philox_normal,
        aten._philox_uniform,
        aten._philox_key_split,
        aten._philox_key_fold_in,
        aten._fill_mem_eff_dropout_mask_,
        aten._cudnn_init_dropout_state,
    ],
)
