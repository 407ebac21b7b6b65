"""Sample calls for tests/test_explain.py's check that every registered formula is explained and adds up.

SAMPLES: op → a call that runs it (on CPU, or on meta tensors for kernels this machine lacks). DIRECT: op →
the (result, *args) its formula is called with, for kernels with neither a CPU nor a meta implementation.
Ops in neither are tried with generic pointwise arguments (`_generic` in the test).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch._inductor.inductor_prims  # noqa: F401 - registers prims.fma, which has a formula
import torch.nn.functional as F
from torch import nn

A = torch.ops.aten


def _meta(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.empty(shape, device="meta", dtype=dtype)


def _half(*shape: int) -> torch.Tensor:
    return _meta(*shape, dtype=torch.float16)


def _backward(module: nn.Module, x: torch.Tensor) -> Callable[[], object]:
    def run() -> object:
        with torch.enable_grad():
            out = module(x.requires_grad_())
            return (out[0] if isinstance(out, tuple) else out).sum().backward()

    return run


# Op → a call that runs it (CPU, or meta tensors for kernels this machine lacks). Ops missing here are tried
# with generic pointwise arguments; add a row when a new formula needs more.
def _sparse(rows: int = 4, cols: int = 5) -> torch.Tensor:
    """A COO matrix with a known pattern: every other element stored."""
    dense = torch.arange(rows * cols, dtype=torch.float32).reshape(rows, cols)
    return (dense * (dense % 2 == 0)).to_sparse()


SAMPLES: dict[str, Callable[[], object]] = {
    "aten._addmm_activation": lambda: A._addmm_activation(
        torch.randn(3), torch.randn(2, 4), torch.randn(4, 3), use_gelu=True
    ),
    "aten._convolution": lambda: A._convolution(
        torch.randn(1, 2, 5, 5),
        torch.randn(3, 2, 3, 3),
        torch.randn(3),
        [1, 1],
        [0, 0],
        [1, 1],
        False,
        [0, 0],
        1,
        False,
        False,
        False,
        False,
    ),
    "aten.convolution": lambda: F.conv2d(torch.randn(1, 4, 6, 6), torch.randn(6, 2, 3, 3), None, 2, 1, 1, 2),
    "aten.convolution_backward": _backward(nn.Conv1d(2, 3, 3), torch.randn(1, 2, 7)),
    "aten._cudnn_rnn": lambda: A._cudnn_rnn(
        _meta(5, 2, 3),
        [_meta(16, 3), _meta(16, 4), _meta(16), _meta(16)],
        4,
        None,
        _meta(1, 2, 4),
        _meta(1, 2, 4),
        2,
        4,
        0,
        1,
        False,
        0.0,
        False,
        False,
        [],
        None,
    ),
    "aten.miopen_rnn": lambda: A.miopen_rnn(
        _meta(5, 2, 3),
        [_meta(16, 3), _meta(16, 4), _meta(16), _meta(16)],
        4,
        _meta(1, 2, 4),
        _meta(1, 2, 4),
        2,
        4,
        1,
        False,
        0.0,
        False,
        False,
        [],
        None,
    ),
    "aten.mkldnn_rnn_layer": lambda: nn.LSTM(3, 4)(torch.randn(5, 2, 3)),
    "aten.mkldnn_rnn_layer_backward": _backward(nn.LSTM(3, 4), torch.randn(5, 2, 3)),
    "aten._thnn_fused_lstm_cell": lambda: A._thnn_fused_lstm_cell(
        _meta(2, 16), _meta(2, 16), _meta(2, 4), _meta(16), _meta(16)
    ),
    "aten._int_mm": lambda: A._int_mm(torch.ones(32, 64, dtype=torch.int8), torch.ones(64, 32, dtype=torch.int8)),
    "aten._scaled_mm": lambda: A._scaled_mm(
        _meta(16, 32, dtype=torch.float8_e4m3fn),
        _meta(16, 32, dtype=torch.float8_e4m3fn).t(),
        _meta(),
        _meta(),
        out_dtype=torch.float32,
    ),
    "aten._scaled_dot_product_flash_attention_for_cpu": lambda: F.scaled_dot_product_attention(
        torch.randn(1, 2, 6, 8), torch.randn(1, 2, 5, 8), torch.randn(1, 2, 5, 8), attn_mask=torch.randn(6, 5)
    ),
    "aten.mm": lambda: torch.mm(torch.randn(2, 3), torch.randn(3, 4)),
    "aten._sparse_addmm": lambda: torch.sparse.addmm(torch.randn(4, 3), _sparse(), torch.randn(5, 3)),
    "aten.sspaddmm": lambda: torch.sspaddmm(_sparse(4, 3), _sparse(), torch.randn(5, 3)),
    "aten.hspmm": lambda: torch.hspmm(_sparse(), torch.randn(5, 3)),
    "aten.addmm": lambda: torch.addmm(torch.randn(4), torch.randn(2, 3), torch.randn(3, 4)),
    "aten.bmm": lambda: torch.bmm(torch.randn(2, 2, 3), torch.randn(2, 3, 4)),
    "aten._scaled_dot_product_flash_attention": lambda: A._scaled_dot_product_flash_attention(
        _half(1, 2, 8, 16), _half(1, 2, 8, 16), _half(1, 2, 8, 16), is_causal=True
    ),
    "aten._scaled_dot_product_efficient_attention": lambda: A._scaled_dot_product_efficient_attention(
        _meta(1, 2, 8, 16), _meta(1, 2, 8, 16), _meta(1, 2, 8, 16), _meta(1, 2, 8, 8), False
    ),
    "aten._scaled_dot_product_cudnn_attention": lambda: A._scaled_dot_product_cudnn_attention(
        _half(1, 2, 8, 16), _half(1, 2, 8, 16), _half(1, 2, 8, 16), None, False
    ),
    "aten._scaled_dot_product_fused_attention_overrideable": lambda: A._scaled_dot_product_fused_attention_overrideable(
        _meta(1, 2, 8, 16), _meta(1, 2, 8, 16), _meta(1, 2, 8, 16)
    ),
    "aten._flash_attention_forward": lambda: A._flash_attention_forward(
        _half(1, 8, 2, 16), _half(1, 8, 2, 16), _half(1, 8, 2, 16), None, None, 8, 8, 0.0, True, False
    ),
    "aten._efficient_attention_forward": lambda: A._efficient_attention_forward(
        _meta(1, 8, 2, 16), _meta(1, 8, 2, 16), _meta(1, 8, 2, 16), None, None, None, 8, 8, 0.0, 1, False
    ),
    "aten._native_multi_head_attention": lambda: nn.MultiheadAttention(8, 2, batch_first=True).eval()(
        *(torch.randn(2, 5, 8),) * 3, need_weights=False
    ),
    "aten._transformer_encoder_layer_fwd": lambda: nn.TransformerEncoderLayer(8, 2, 16, batch_first=True).eval()(
        torch.randn(2, 5, 8)
    ),
    "aten.addbmm": lambda: torch.addbmm(torch.randn(3, 4), torch.randn(2, 3, 5), torch.randn(2, 5, 4)),
    "aten.baddbmm": lambda: torch.baddbmm(torch.randn(2, 3, 4), torch.randn(2, 3, 5), torch.randn(2, 5, 4)),
    "aten.addmv": lambda: torch.addmv(torch.randn(3), torch.randn(3, 5), torch.randn(5)),
    "aten.mv": lambda: torch.mv(torch.randn(3, 5), torch.randn(5)),
    "aten.dot": lambda: torch.dot(torch.randn(5), torch.randn(5)),
    "aten.vdot": lambda: torch.vdot(torch.randn(5), torch.randn(5)),
    "aten.threshold": lambda: F.threshold(torch.randn(4), 0.1, 0.0),
    "aten.masked_fill": lambda: torch.randn(4).masked_fill(torch.rand(4) > 0.5, 0.0),
    "aten.where": lambda: torch.where(torch.rand(4) > 0.5, torch.randn(4), torch.randn(4)),
    "aten._grouped_mm": lambda: A._grouped_mm(
        torch.randn(8, 16), torch.randn(2, 16, 8), torch.tensor([3, 8], dtype=torch.int32)
    ),
    "aten.histc": lambda: (torch.histc(torch.randn(10), bins=4), torch.histc(torch.randn(10), 4, -1, 1)),
    "aten.aminmax": lambda: torch.aminmax(torch.randn(4, 5), dim=1),
    "aten.floor_divide": lambda: torch.randn(4) // 0.3,
    "aten.quantize_per_tensor": lambda: torch.quantize_per_tensor(torch.randn(4), 0.1, 0, torch.qint8),
    "aten.quantize_per_channel": lambda: torch.quantize_per_channel(
        torch.randn(2, 3), torch.ones(2), torch.zeros(2, dtype=torch.long), 0, torch.qint8
    ),
    "aten.dequantize": lambda: torch.quantize_per_tensor(torch.randn(4), 0.1, 0, torch.qint8).dequantize(),
    # matmul reaches the mode only for nested tensors (dense ones decompose into mm/bmm first)
    "aten.matmul": lambda: torch.matmul(
        torch.nested.nested_tensor([torch.randn(2, 3), torch.randn(4, 3)]),
        torch.nested.nested_tensor([torch.randn(3, 5), torch.randn(3, 5)]),
    ),
}


# Kernels with neither a CPU nor a meta implementation: the formula is called directly on meta tensors
# (the count of such a call is `convention.flops(work)`, which the test below checks the explanation against).
DIRECT: dict[str, Callable[[], tuple]] = {
    "aten._thnn_fused_gru_cell": lambda: (_meta(2, 4), _meta(2, 12), _meta(2, 12), _meta(2, 4), _meta(12), _meta(12)),
    # fp8 grouped products (CUDA only): result (M, N), a (M, K), b (G, K, N), scales, offs
    "aten._scaled_grouped_mm": lambda: (
        _meta(8, 16),
        _meta(8, 32),
        _meta(2, 32, 16),
        _meta(8),
        _meta(2, 16),
        _meta(2, dtype=torch.int32),
    ),
    "aten._scaled_grouped_mm_v2": lambda: (_meta(3, 8, 16), _meta(3, 8, 32), _meta(3, 32, 16)),
    # varlen attention (a CUDA kernel): result, q, k, v (16 tokens, 2 heads, width 8), the offsets, max lengths
    "torch_attn._varlen_attn": lambda: (
        (_meta(16, 2, 8),),
        _meta(16, 2, 8),
        _meta(16, 2, 8),
        _meta(16, 2, 8),
        _meta(4, dtype=torch.int32),
        _meta(4, dtype=torch.int32),
        8,
        8,
    ),
}


# — families added by the all-ops triage (issue 10) ———————————————————————————————————————————————————————


def _pos(*shape: int) -> torch.Tensor:
    return torch.rand(shape) + 0.5  # positive, away from 0: every pointwise function is defined there


def _spd(n: int = 3) -> torch.Tensor:
    a = torch.randn(n, n)
    return a @ a.T + n * torch.eye(n)  # symmetric positive definite


def _lower(n: int = 3) -> torch.Tensor:
    return torch.linalg.cholesky(_spd(n))


def _quietly(fn: Callable[[], object]) -> Callable[[], object]:
    def run() -> object:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # quantized tensors and nested tensors warn that they are deprecated
            return fn()

    return run


# every `_foreach_X` on one list of two small tensors (a matrix and a vector)


def _LIST() -> list[torch.Tensor]:  # noqa: N802 - a constant's shape, built fresh for each call
    return [_pos(2, 3), _pos(4)]


_FOREACH_UNARY = """abs acos asin atan ceil cos cosh erf erfc exp expm1 floor frac lgamma log log10 log1p log2 neg
reciprocal round rsqrt sigmoid sign sin sinh sqrt tan tanh trunc max norm powsum""".split()
_FOREACH_BINARY = "add sub mul div maximum minimum pow clamp_max clamp_min".split()
SAMPLES.update({f"aten._foreach_{n}": (lambda op=getattr(A, f"_foreach_{n}"): op(_LIST())) for n in _FOREACH_UNARY})
SAMPLES.update(
    {f"aten._foreach_{n}": (lambda op=getattr(A, f"_foreach_{n}"): op(_LIST(), _LIST())) for n in _FOREACH_BINARY}
)
SAMPLES.update(
    {
        "aten._foreach_addcdiv": lambda: A._foreach_addcdiv(_LIST(), _LIST(), _LIST()),
        "aten._foreach_addcmul": lambda: A._foreach_addcmul(_LIST(), _LIST(), _LIST(), 0.5),
        "aten._foreach_lerp": lambda: A._foreach_lerp(_LIST(), _LIST(), 0.5),
        "aten._foreach_mm": lambda: A._foreach_mm([_pos(2, 3), _pos(3, 3)], [_pos(3, 4), _pos(3, 2)]),
        "aten._amp_foreach_non_finite_check_and_unscale": lambda: A._amp_foreach_non_finite_check_and_unscale_(
            _LIST(), torch.zeros(1), torch.ones(1)
        ),
    }
)


def _optimizer_step(optimizer: type[torch.optim.Optimizer], **options: object) -> Callable[[], object]:
    def run() -> object:
        params = [nn.Parameter(torch.randn(2, 3)), nn.Parameter(torch.randn(4))]
        for p in params:
            p.grad = torch.randn_like(p)
        return optimizer(params, lr=0.1, fused=True, **options).step()  # type: ignore[call-arg]

    return run


SAMPLES.update(
    {
        "aten._fused_adam": _optimizer_step(torch.optim.Adam),
        "aten._fused_adamw": _optimizer_step(torch.optim.AdamW, weight_decay=0.1),
        "aten._fused_sgd": _optimizer_step(torch.optim.SGD, momentum=0.9),
        "aten._fused_adagrad": _optimizer_step(torch.optim.Adagrad),
    }
)

# dense linear algebra on 3×3 matrices (b: two right-hand-side columns)
SAMPLES.update(
    {
        "aten._linalg_det": lambda: torch.linalg.det(_spd()),
        "aten._linalg_slogdet": lambda: torch.linalg.slogdet(_spd()),
        "aten._linalg_eigh": lambda: torch.linalg.eigh(_spd()),
        "aten._linalg_eigvals": lambda: A._linalg_eigvals(_spd()),
        "aten.linalg_eigvals": lambda: A.linalg_eigvals(_spd()),
        "aten.linalg_eig": lambda: torch.linalg.eig(_spd()),
        "aten._linalg_solve_ex": lambda: torch.linalg.solve(_spd(), torch.randn(3, 2)),
        "aten.cholesky_inverse": lambda: torch.cholesky_inverse(_lower()),
        "aten.cholesky_solve": lambda: torch.cholesky_solve(torch.randn(3, 2), _lower()),
        "aten.linalg_cholesky_ex": lambda: torch.linalg.cholesky_ex(_spd()),
        "aten.linalg_inv_ex": lambda: torch.linalg.inv_ex(_spd()),
        "aten.linalg_householder_product": lambda: torch.linalg.householder_product(*torch.geqrf(torch.randn(4, 3))),
        "aten.ormqr": lambda: torch.ormqr(*torch.geqrf(torch.randn(4, 3)), torch.randn(4, 2)),
        "aten.linalg_ldl_factor_ex": lambda: torch.linalg.ldl_factor_ex(_spd()),
        "aten.linalg_ldl_solve": lambda: torch.linalg.ldl_solve(*torch.linalg.ldl_factor(_spd()), torch.randn(3, 2)),
        "aten.linalg_lu_solve": lambda: torch.linalg.lu_solve(*torch.linalg.lu_factor(_spd()), torch.randn(3, 2)),
        "aten.linalg_solve_triangular": lambda: torch.linalg.solve_triangular(_lower(), torch.randn(3, 2), upper=False),
        "aten.triangular_solve": lambda: torch.triangular_solve(torch.randn(3, 2), _lower(), upper=False),
    }
)

# pointwise, window and reduction kernels whose arguments the generic patterns do not fit
SAMPLES.update(
    {
        "aten._conj_copy": lambda: A._conj_copy(torch.randn(3, dtype=torch.complex64)),
        "aten._cummax_helper": lambda: A._cummax_helper(
            _pos(2, 3), torch.empty(2, 3), torch.empty(2, 3, dtype=torch.long), 1
        ),
        "aten._cummin_helper": lambda: A._cummin_helper(
            _pos(2, 3), torch.empty(2, 3), torch.empty(2, 3, dtype=torch.long), 1
        ),
        "aten.addr": lambda: torch.addr(torch.randn(2, 3), torch.randn(2), torch.randn(3), alpha=2),
        "aten.polygamma": lambda: torch.polygamma(1, _pos(2, 3)),
        "aten.rrelu_with_noise_backward": lambda: A.rrelu_with_noise_backward(
            torch.randn(2, 3), torch.randn(2, 3), torch.rand(2, 3), 0.1, 0.3, True, False
        ),
        "aten.fft_fftfreq": lambda: torch.fft.fftfreq(5),
        "aten.fft_rfftfreq": lambda: torch.fft.rfftfreq(5),
        **{
            f"aten.{n}_window": (lambda fn=getattr(torch, f"{n}_window"): fn(5))
            for n in ("bartlett", "blackman", "hamming", "kaiser")
        },
        "aten._trilinear": lambda: F.bilinear(torch.randn(2, 3), torch.randn(2, 4), torch.randn(5, 3, 4)),
        "aten._masked_softmax": lambda: A._masked_softmax(torch.randn(2, 4), torch.rand(2, 4) > 0.5, 1),
        "aten._masked_softmax_backward": lambda: A._masked_softmax_backward(
            torch.randn(2, 4), torch.rand(2, 4), torch.rand(2, 4) > 0.5, 1
        ),
        "aten._nested_tensor_softmax_with_shape": _quietly(
            lambda: A._nested_tensor_softmax_with_shape(
                torch.randn(2, 2, 4, 4), torch.nested.nested_tensor([torch.randn(3, 8), torch.randn(4, 8)])
            )
        ),
        "aten._transform_bias_rescale_qkv": lambda: A._transform_bias_rescale_qkv(
            torch.randn(2, 5, 24), torch.randn(24), 2
        ),
    }
)

# pooling and linear kernels of the CPU backends (mkldnn tensors), and their gradients
SAMPLES.update(
    {
        "aten.adaptive_avg_pool3d_backward": lambda: A.adaptive_avg_pool3d_backward.grad_input(
            torch.randn(1, 1, 2, 2, 2), torch.randn(1, 1, 4, 4, 4), grad_input=torch.empty(1, 1, 4, 4, 4)
        ),
        "aten.fractional_max_pool2d": lambda: F.fractional_max_pool2d(torch.randn(1, 1, 5, 5), 2, output_size=2),
        "aten.fractional_max_pool3d": lambda: F.fractional_max_pool3d(torch.randn(1, 1, 5, 5, 5), 2, output_size=2),
        "aten.fractional_max_pool2d_backward": _backward(
            nn.FractionalMaxPool2d(2, output_size=2), torch.randn(1, 1, 5, 5)
        ),
        "aten.fractional_max_pool3d_backward": _backward(
            nn.FractionalMaxPool3d(2, output_size=2), torch.randn(1, 1, 5, 5, 5)
        ),
        "aten.linear_backward": lambda: A.linear_backward(_meta(2, 3), _meta(2, 4), _meta(4, 3), [True, True, True]),
        "aten.mkldnn_adaptive_avg_pool2d": lambda: A.mkldnn_adaptive_avg_pool2d(
            torch.randn(1, 2, 4, 4).to_mkldnn(), [2, 2]
        ),
        "aten.mkldnn_max_pool2d": lambda: A.mkldnn_max_pool2d(torch.randn(1, 2, 4, 4).to_mkldnn(), [2, 2]),
        "aten.mkldnn_max_pool3d": lambda: A.mkldnn_max_pool3d(torch.randn(1, 2, 4, 4, 4).to_mkldnn(), [2, 2, 2]),
        "aten.mkldnn_linear": lambda: A.mkldnn_linear(torch.randn(2, 3).to_mkldnn(), torch.randn(4, 3).to_mkldnn()),
    }
)

# convolution kernels of the CPU backends (run) and of devices this machine lacks (DIRECT below)


def _X() -> torch.Tensor:  # noqa: N802 - input, weight and bias of a 2→4 channel 3×3 convolution
    return torch.randn(1, 2, 5, 5)


def _W() -> torch.Tensor:  # noqa: N802
    return torch.randn(4, 2, 3, 3)


def _B() -> torch.Tensor:  # noqa: N802
    return torch.randn(4)


SAMPLES.update(
    {
        "aten.conv_tbc": lambda: torch.conv_tbc(torch.randn(6, 2, 3), torch.randn(3, 3, 4), torch.randn(4), 1),
        "aten.mkldnn_convolution": lambda: A.mkldnn_convolution(_X(), _W(), _B(), [0, 0], [1, 1], [1, 1], 1),
        "aten._nnpack_spatial_convolution": lambda: A._nnpack_spatial_convolution(_X(), _W(), _B(), [1, 1]),
        "aten._slow_conv2d_forward": lambda: A._slow_conv2d_forward(_X(), _W(), [3, 3], _B(), [1, 1], [0, 0]),
        "aten._slow_conv2d_backward": lambda: A._slow_conv2d_backward(
            torch.randn(1, 4, 3, 3), _X(), _W(), [3, 3], [1, 1], [0, 0], [True, True, True]
        ),
        "aten.slow_conv_dilated2d": lambda: A.slow_conv_dilated2d(_X(), _W(), [3, 3], _B(), [1, 1], [0, 0], [2, 2]),
        "aten.slow_conv_dilated3d": lambda: A.slow_conv_dilated3d(
            torch.randn(1, 2, 5, 5, 5), torch.randn(4, 2, 2, 2, 2), [2, 2, 2], None, [1, 1, 1], [0, 0, 0], [2, 2, 2]
        ),
        "aten.slow_conv3d_forward": lambda: A.slow_conv3d_forward(
            torch.randn(1, 2, 4, 4, 4), torch.randn(4, 2, 2, 2, 2), [2, 2, 2], None, [1, 1, 1], [0, 0, 0]
        ),
        "aten.slow_conv_transpose2d": lambda: A.slow_conv_transpose2d(_X(), torch.randn(2, 4, 3, 3), [3, 3], _B()),
        "aten.slow_conv_transpose3d": lambda: A.slow_conv_transpose3d(
            torch.randn(1, 2, 3, 3, 3), torch.randn(2, 4, 2, 2, 2), [2, 2, 2]
        ),
    }
)

# quantized kernels with packed weights (int8 MACs)
Q = torch.ops.quantized


def _q(*shape: int, dtype: torch.dtype = torch.quint8) -> torch.Tensor:
    return torch.quantize_per_tensor(torch.randn(shape), 0.1, 0, dtype)


def _linear_pack() -> object:
    return Q.linear_prepack(_q(4, 8, dtype=torch.qint8), None)


def _conv_pack(dims: int, transposed: bool = False) -> object:
    weight = _q(*((2, 4) if transposed else (4, 2)), *(3,) * dims, dtype=torch.qint8)
    ones, zeros = [1] * dims, [0] * dims
    if transposed:
        return getattr(Q, f"conv_transpose{dims}d_prepack")(weight, None, ones, zeros, zeros, ones, 1)
    return getattr(Q, f"conv{dims}d_prepack")(weight, None, ones, zeros, ones, 1)


def _qconv(name: str, dims: int, dynamic: bool = False) -> Callable[[], object]:
    transposed = "transpose" in name
    op = getattr(Q, name)
    op = getattr(op, "new", op) if dims > 1 and not transposed and not dynamic else op

    def run() -> object:
        x = torch.randn(1, 2, *(5,) * dims) if dynamic else _q(1, 2, *(5,) * dims)
        return op(x, _conv_pack(dims, transposed), False) if dynamic else op(x, _conv_pack(dims, transposed), 0.2, 0)

    return _quietly(run)


def _onednn(fn: Callable[[], object]) -> Callable[[], object]:
    """Kernels only the oneDNN quantized engine has (fused tanh, leaky ReLU, conv + add)."""

    def run() -> object:
        engine = torch.backends.quantized.engine
        torch.backends.quantized.engine = "onednn"
        try:
            return _quietly(fn)()
        finally:
            torch.backends.quantized.engine = engine

    return run


def _dynamic(layer: nn.Module) -> nn.Module:
    """`layer` dynamically quantized to int8 (DynamicQuantizedLSTM, …): one packed kernel call per forward."""
    return torch.ao.quantization.quantize_dynamic(nn.Sequential(layer), {type(layer)}, dtype=torch.qint8)


_QCONVS = {f"conv{d}d{s}": d for d in (1, 2, 3) for s in ("", "_relu")} | {f"conv_transpose{d}d": d for d in (1, 2, 3)}
SAMPLES.update({f"quantized.{name}": _qconv(name, dims) for name, dims in _QCONVS.items()})
SAMPLES.update(
    {
        f"quantized.{name}_dynamic": _qconv(f"{name}_dynamic", dims, dynamic=True)
        for name, dims in _QCONVS.items()
        if "relu" not in name
    }
)
SAMPLES.update(
    {
        f"quantized.{name}": _quietly(lambda op=getattr(Q, name): op(_q(2, 8), _linear_pack(), 0.2, 0))
        for name in ("linear", "linear_relu")
    }
)
SAMPLES.update(
    {
        f"quantized.{name}": _quietly(lambda op=getattr(Q, name): op(torch.randn(2, 8), _linear_pack()))
        for name in ("linear_dynamic", "linear_relu_dynamic")
    }
)
SAMPLES.update(
    {
        f"quantized.{name}": (
            lambda op=getattr(Q, name): op(torch.randn(2, 8), Q.linear_prepack_fp16(torch.randn(4, 8), None))
        )
        for name in ("linear_dynamic_fp16", "linear_relu_dynamic_fp16")
    }
)
SAMPLES.update(
    {
        f"quantized.{name}": _quietly(lambda op=getattr(Q, name): op(torch.randn(2, 8), 0.1, 0, _linear_pack()))
        for name in (
            "linear_with_input_q_dq_qweight_dq_output_fp32",
            "linear_with_input_q_dq_qweight_dq_relu_output_fp32",
        )
    }
)
SAMPLES.update(
    {
        "quantized.linear_tanh": _onednn(lambda: Q.linear_tanh(_q(2, 8), _linear_pack(), 0.2, 0)),
        "quantized.linear_leaky_relu": _onednn(lambda: Q.linear_leaky_relu(_q(2, 8), _linear_pack(), 0.2, 0, 0.01)),
        "quantized.linear_dynamic_fp16_unpacked_weight": lambda: Q.linear_dynamic_fp16_unpacked_weight(
            torch.randn(2, 8), torch.randn(4, 8), None
        ),
        "quantized.matmul": _quietly(lambda: Q.matmul(_q(2, 3), _q(3, 4), 0.2, 0)),
        "quantized.conv2d_add": _onednn(lambda: Q.conv2d_add(_q(1, 2, 5, 5), _q(1, 4, 3, 3), _conv_pack(2), 0.2, 0)),
        "quantized.conv2d_add_relu": _onednn(
            lambda: Q.conv2d_add_relu(_q(1, 2, 5, 5), _q(1, 4, 3, 3), _conv_pack(2), 0.2, 0)
        ),
        "aten.quantized_lstm": _quietly(lambda: _dynamic(nn.LSTM(3, 4))(torch.randn(5, 2, 3))),
        "aten.quantized_gru": _quietly(lambda: _dynamic(nn.GRU(3, 4))(torch.randn(5, 2, 3))),
        "quantized.quantized_lstm_cell_dynamic": _quietly(lambda: _dynamic(nn.LSTMCell(3, 4))(torch.randn(2, 3))),
        "quantized.quantized_gru_cell_dynamic": _quietly(lambda: _dynamic(nn.GRUCell(3, 4))(torch.randn(2, 3))),
        "quantized.quantized_rnn_tanh_cell_dynamic": _quietly(lambda: _dynamic(nn.RNNCell(3, 4))(torch.randn(2, 3))),
        "quantized.quantized_rnn_relu_cell_dynamic": _quietly(
            lambda: _dynamic(nn.RNNCell(3, 4, nonlinearity="relu"))(torch.randn(2, 3))
        ),
        "aten._weight_int8pack_mm": lambda: A._weight_int8pack_mm(
            torch.randn(2, 8), torch.randint(-8, 8, (4, 8), dtype=torch.int8), torch.rand(4)
        ),
    }
)

# prims whose arguments the generic patterns do not fit (dims lists, keyword-only arguments)
P = torch.ops.prims


def _c() -> torch.Tensor:
    return torch.randn(4, dtype=torch.complex64)


SAMPLES.update({f"prims.{n}": (lambda op=getattr(P, n): op(_pos(2, 3), [0])) for n in ("amax", "amin", "sum", "prod")})
SAMPLES.update(
    {
        "prims.var": lambda: P.var(_pos(2, 3), [0], 1.0),
        "prims.conj_physical": lambda: P.conj_physical(_c()),
        "prims.empty": lambda: P.empty([2, 3], dtype=torch.float32, device=torch.device("cpu"), requires_grad=False),
        "prims.empty_strided": lambda: P.empty_strided(
            [2, 3], [3, 1], dtype=torch.float32, device=torch.device("cpu"), requires_grad=False
        ),
        "prims.fft_r2c": lambda: P.fft_r2c(torch.randn(4), dim=[0], onesided=True),
        "prims.fft_c2c": lambda: P.fft_c2c(_c(), dim=[0], forward=True),
        "prims.fft_c2r": lambda: P.fft_c2r(_c(), dim=[0], last_dim_size=6),
        "prims.svd": lambda: P.svd(torch.randn(4, 3), full_matrices=False),
        "prims.fma": lambda: P.fma(_pos(2, 3), _pos(2, 3), _pos(2, 3)),  # registered when torch._inductor is imported
    }
)

# kernels of devices this machine lacks (CUDA, ROCm, MPS, sparse or mkldnn-only gradients): (result, *args) on meta
# tensors, as the kernel would get them. Convolutions: a 2→4 channel 3×3 kernel on 5×5 (transposed: 5×5 → 7×7),
# depthwise 2 channels.


def _CONV() -> tuple:  # noqa: N802
    return _meta(1, 4, 3, 3), _meta(1, 2, 5, 5), _meta(4, 2, 3, 3)


def _CONV_T() -> tuple:  # noqa: N802
    return _meta(1, 4, 7, 7), _meta(1, 2, 5, 5), _meta(2, 4, 3, 3)


def _INT4() -> tuple:  # noqa: N802 - (M, N) from (M, K = 64) and an int4-packed (N, K) weight, groups of 32
    return _meta(2, 4), _meta(2, 64), _meta(4, 32, dtype=torch.uint8), 32, _meta(2, 4, 2)


DIRECT.update({f"aten.{n}": _CONV for n in ("cudnn_convolution", "miopen_convolution", "_mps_convolution")})
DIRECT.update(
    {
        f"aten.{n}": _CONV_T
        for n in ("cudnn_convolution_transpose", "miopen_convolution_transpose", "_mps_convolution_transpose")
    }
)
DIRECT.update(
    {
        f"aten.{n}": _INT4
        for n in ("_weight_int4pack_mm", "_weight_int4pack_mm_for_cpu", "_weight_int4pack_mm_with_scales_and_zeros")
    }
)
DIRECT.update(
    {f"aten.{n}": (lambda: (*_CONV(), _meta(4))) for n in ("cudnn_convolution_relu", "miopen_convolution_relu")}
)
DIRECT.update(
    {
        f"aten.{n}": (lambda: (*_CONV(), _meta(1, 4, 3, 3), 1.0, _meta(4)))
        for n in ("cudnn_convolution_add_relu", "miopen_convolution_add_relu")
    }
)
DIRECT.update(
    {
        "aten.miopen_depthwise_convolution": lambda: (_meta(1, 2, 3, 3), _meta(1, 2, 5, 5), _meta(2, 1, 3, 3)),
        "aten._conv_depthwise2d": lambda: (_meta(1, 2, 3, 3), _meta(1, 2, 5, 5), _meta(2, 1, 3, 3), [3, 3], _meta(2)),
        "aten.conv_depthwise3d": lambda: (_meta(1, 2, 3, 3, 3), _meta(1, 2, 4, 4, 4), _meta(2, 1, 2, 2, 2), [2, 2, 2]),
        "aten.convolution_overrideable": lambda: (*_CONV(), _meta(4), [1, 1], [0, 0], [1, 1], False, [0, 0], 1),
        "aten.convolution_backward_overrideable": lambda: (
            (_meta(1, 2, 5, 5), _meta(4, 2, 3, 3), _meta(4)),
            _meta(1, 4, 3, 3),
            _meta(1, 2, 5, 5),
            _meta(4, 2, 3, 3),
            [1, 1],
            [0, 0],
            [1, 1],
            False,
            [0, 0],
            1,
            [True, True, True],
        ),
        "aten.native_norm": lambda: (_meta(), _meta(2, 3)),
        "aten.max_pool2d_backward": lambda: (_meta(1, 1, 4, 4), _meta(1, 1, 2, 2), _meta(1, 1, 4, 4), [2, 2]),
        "aten.mkldnn_max_pool2d_backward": lambda: (
            _meta(1, 1, 4, 4),
            _meta(1, 1, 2, 2),
            _meta(1, 1, 2, 2),
            _meta(1, 1, 4, 4),
            [2, 2],
        ),
        "aten.mkldnn_max_pool3d_backward": lambda: (
            _meta(1, 1, 4, 4, 4),
            _meta(1, 1, 2, 2, 2),
            _meta(1, 1, 2, 2, 2),
            _meta(1, 1, 4, 4, 4),
            [2, 2, 2],
        ),
        "aten.mkldnn_adaptive_avg_pool2d_backward": lambda: (_meta(1, 2, 4, 4), _meta(1, 2, 2, 2), _meta(1, 2, 4, 4)),
        "aten.mkldnn_linear_backward": lambda: (
            (_meta(2, 3), _meta(4, 3), _meta(4)),
            _meta(2, 3),
            _meta(2, 4),
            _meta(4, 3),
            [True, True, True],
        ),
        "aten.mkldnn_linear_backward_input": lambda: (_meta(2, 3), [2, 3], _meta(2, 4), _meta(4, 3)),
        "aten.mkldnn_linear_backward_weights": lambda: (
            (_meta(4, 3), _meta(4)),
            _meta(2, 4),
            _meta(2, 3),
            _meta(4, 3),
            True,
        ),
        "aten.matmul_backward": lambda: (
            (_meta(2, 3), _meta(3, 4)),
            _meta(2, 4),
            _meta(2, 3),
            _meta(3, 4),
            [True, True],
        ),
        "aten._fused_dropout": lambda: ((_meta(2, 3), _meta(2, 3, dtype=torch.uint8)), _meta(2, 3), 0.5),
        "aten._masked_scale": lambda: (_meta(2, 3), _meta(2, 3), _meta(2, 3, dtype=torch.uint8), 2.0),
        "aten._mixed_dtypes_linear": lambda: (_meta(2, 4), _half(2, 8), _meta(8, 4, dtype=torch.int8), _half(4)),
        "aten._scaled_mm_v2": lambda: (
            _meta(16, 16),
            _meta(16, 32, dtype=torch.float8_e4m3fn),
            _meta(32, 16, dtype=torch.float8_e4m3fn),
        ),
        "aten._dyn_quant_matmul_4bit": lambda: (_meta(2, 4), _meta(2, 64), _meta(128, dtype=torch.uint8), 32, 64, 4),
        "quantized.int4mm_packed_weight_cpu": lambda: (
            _meta(2, 4),
            _meta(2, 64),
            _meta(4, 32, dtype=torch.uint8),
            _meta(1, dtype=torch.int64),
            _meta(2, 4, 2),
        ),
    }
)


# quantized kernels outside the contractions (formulas/quantized_elementwise.py): the float op they quantize
def _QA() -> torch.Tensor:  # noqa: N802
    return _q(2, 3, 4, 4)


def _QB() -> torch.Tensor:  # noqa: N802
    return _q(2, 3, 4, 4)


def _BN() -> tuple:  # noqa: N802 - weight, bias, mean, var, eps, output scale and zero point
    return torch.ones(3), torch.zeros(3), torch.zeros(3), torch.ones(3), 1e-5, 0.1, 0


SAMPLES.update(
    {
        f"quantized.{name}": _quietly(lambda op=getattr(Q, name): op(_QA(), _QB(), 0.2, 0))
        for name in ("add", "add_relu", "mul", "mul_relu")
    }
)
SAMPLES.update(
    {
        f"quantized.{name}_out": _quietly(lambda op=getattr(Q, f"{name}_out"): op(_QA(), _QB(), out=_QA()))
        for name in ("add", "add_relu", "mul", "mul_relu")
    }
)
SAMPLES.update(
    {
        f"quantized.{name}": _quietly(lambda op=getattr(Q, name): op(_QA(), 2.0))
        for name in ("add_scalar", "add_scalar_relu", "mul_scalar", "mul_scalar_relu")
    }
)
SAMPLES.update(
    {
        f"quantized.{name}_out": _quietly(lambda op=getattr(Q, f"{name}_out"): op(_QA(), 2.0, out=_QA()))
        for name in ("add_scalar", "add_scalar_relu", "mul_scalar", "mul_scalar_relu")
    }
)
SAMPLES.update(
    {
        f"quantized.{name}": _quietly(lambda op=getattr(Q, name): op(_QA(), *_BN()))
        for name in ("batch_norm", "batch_norm2d", "batch_norm_relu", "batch_norm2d_relu")
    }
)
SAMPLES.update(
    {
        f"quantized.{name}": _quietly(lambda op=getattr(Q, name): op(_q(2, 3, 4), *_BN()))
        for name in ("batch_norm1d", "batch_norm1d_relu")
    }
)
SAMPLES.update(
    {
        f"quantized.{name}": _quietly(lambda op=getattr(Q, name): op(_q(1, 3, 2, 2, 2), *_BN()))
        for name in ("batch_norm3d", "batch_norm3d_relu")
    }
)
SAMPLES.update(
    {
        "quantized.cat_relu": _quietly(lambda: Q.cat_relu([_QA(), _QB()], 1, 0.1, 0)),
        "quantized.cat_relu_out": _quietly(lambda: Q.cat_relu_out([_QA(), _QB()], 1, out=_q(2, 6, 4, 4))),
        "quantized.hardswish": _quietly(lambda: Q.hardswish(_QA(), 0.1, 0)),
        "quantized.sigmoid": _quietly(lambda: Q.sigmoid(_QA(), 1 / 256, 0)),
        "quantized.elu": _quietly(lambda: Q.elu(_QA(), 0.1, 0)),
        "quantized.celu": _quietly(lambda: Q.celu(_QA(), 0.1, 0)),
        "quantized.leaky_relu": _quietly(lambda: Q.leaky_relu(_QA(), 0.01, False, 0.1, 0)),
        "quantized.prelu": _quietly(lambda: Q.prelu(_QA(), _q(3), 0.1, 0)),
        "quantized.threshold": _quietly(lambda: Q.threshold(_QA(), 0.5, 0.0)),
        "quantized.relu6": _quietly(lambda: Q.relu6(_QA())),
        "quantized.clamp": _quietly(lambda: Q.clamp(_QA(), 0.0, 1.0)),
        "quantized.softmax": _quietly(lambda: Q.softmax(_QA(), 1, 1 / 256, 0)),
        "quantized.layer_norm": _quietly(
            lambda: Q.layer_norm(_QA(), [4, 4], torch.ones(4, 4), torch.zeros(4, 4), 1e-5, 0.1, 0)
        ),
        "quantized.group_norm": _quietly(lambda: Q.group_norm(_QA(), 3, torch.ones(3), torch.zeros(3), 1e-5, 0.1, 0)),
        "quantized.instance_norm": _quietly(
            lambda: Q.instance_norm(_QA(), torch.ones(3), torch.zeros(3), 1e-5, 0.1, 0)
        ),
    }
)


# PT2E's reference ops (torch.ao.quantization.fx._decomposed registers them)
def _qd() -> object:
    import torch.ao.quantization.fx._decomposed  # noqa: F401

    return torch.ops.quantized_decomposed


def _int8(*shape: int) -> torch.Tensor:
    return torch.randint(-128, 127, shape, dtype=torch.int8)


_I8 = (-128, 127, torch.int8)
SAMPLES.update(
    {
        "quantized_decomposed.quantize_per_tensor": lambda: _qd().quantize_per_tensor(torch.randn(2, 8), 0.1, 0, *_I8),
        "quantized_decomposed.quantize_per_channel": lambda: _qd().quantize_per_channel(
            torch.randn(2, 8), torch.ones(2), torch.zeros(2, dtype=torch.int64), 0, *_I8
        ),
        "quantized_decomposed.quantize_per_token": lambda: _qd().quantize_per_token(
            torch.randn(2, 8), torch.ones(2, 1), torch.zeros(2, 1), *_I8
        ),
        "quantized_decomposed.quantize_per_channel_group": lambda: _qd().quantize_per_channel_group(
            torch.randn(2, 8), torch.ones(2, 2), torch.zeros(2, 2), *_I8, 4
        ),
        "quantized_decomposed.dequantize_per_tensor": lambda: _qd().dequantize_per_tensor(_int8(2, 8), 0.1, 0, *_I8),
        "quantized_decomposed.dequantize_per_channel": lambda: _qd().dequantize_per_channel(
            _int8(2, 8), torch.ones(2), torch.zeros(2, dtype=torch.int64), 0, *_I8
        ),
        "quantized_decomposed.dequantize_per_token": lambda: _qd().dequantize_per_token(
            _int8(2, 8), torch.ones(2, 1), torch.zeros(2, 1), *_I8, torch.float32
        ),
        "quantized_decomposed.dequantize_per_channel_group": lambda: _qd().dequantize_per_channel_group(
            _int8(2, 8), torch.ones(2, 2), torch.zeros(2, 2), *_I8, 4, torch.float32
        ),
        "quantized_decomposed.choose_qparams": lambda: _qd().choose_qparams.tensor(
            torch.randn(2, 8), -128, 127, 1e-5, torch.int8
        ),
        "quantized_decomposed.choose_qparams_symmetric": lambda: _qd().choose_qparams_symmetric.tensor(
            torch.randn(2, 8), -128, 127, 1e-5, torch.int8
        ),
        "quantized_decomposed.choose_qparams_per_token": lambda: _qd().choose_qparams_per_token(
            torch.randn(2, 8), torch.int8
        ),
        "quantized_decomposed.choose_qparams_per_token_asymmetric": lambda: _qd().choose_qparams_per_token_asymmetric(
            torch.randn(2, 8), torch.int8
        ),
        "quantized_decomposed._choose_qparams_per_token_asymmetric_impl": lambda: (
            _qd()._choose_qparams_per_token_asymmetric_impl(torch.randn(2, 8), torch.int8)
        ),
    }
)


# torchvision's detection ops (formulas/vision.py)
def _tv() -> object:
    import torchvision  # noqa: F401 - registers torch.ops.torchvision

    return torch.ops.torchvision


def _rois() -> torch.Tensor:
    return torch.tensor([[0, 0, 0, 4, 4], [0, 1, 1, 7, 6.0]])


def _boxes() -> torch.Tensor:
    return torch.tensor([[0.0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]])


def _grad_of(run: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[], object]:
    def call() -> object:
        x = torch.rand(1, 4, 8, 8, requires_grad=True)
        return run(x).sum().backward()

    return call


def _qint(x: torch.Tensor) -> torch.Tensor:
    return torch.quantize_per_tensor(x, 0.1, 0, torch.quint8).int_repr()


SAMPLES.update(
    {
        "torchvision.nms": lambda: _tv().nms(_boxes(), torch.tensor([0.9, 0.8, 0.7]), 0.5),
        "torchvision.qnms": lambda: _tv().qnms(_qint(_boxes()), _qint(torch.tensor([0.9, 0.8, 0.7])), 0.5),
        "torchvision.roi_align": lambda: _tv().roi_align(torch.rand(1, 4, 8, 8), _rois(), 1.0, 2, 2, 2, True),
        "torchvision.qroi_align": lambda: _tv().qroi_align(
            _qint(torch.rand(1, 4, 8, 8)), _qint(_rois()), 0.1, 0, 0.1, 0, 1.0, 2, 2, 2, False
        ),
        "torchvision.ps_roi_align": lambda: _tv().ps_roi_align(torch.rand(1, 8, 8, 8), _rois(), 1.0, 2, 2, 0),
        "torchvision.roi_pool": lambda: _tv().roi_pool(torch.rand(1, 4, 8, 8), _rois(), 1.0, 2, 2),
        "torchvision.ps_roi_pool": lambda: _tv().ps_roi_pool(torch.rand(1, 8, 8, 8), _rois(), 1.0, 2, 2),
        "torchvision.deform_conv2d": lambda: _tv().deform_conv2d(
            torch.rand(1, 4, 8, 8),
            torch.rand(2, 4, 3, 3),
            torch.rand(1, 18, 6, 6),
            torch.rand(1, 9, 6, 6),
            torch.rand(2),
            1,
            1,
            0,
            0,
            1,
            1,
            1,
            1,
            True,
        ),
        "torchvision._roi_align_backward": _grad_of(lambda x: _tv().roi_align(x, _rois(), 1.0, 2, 2, 2, False)),
        "torchvision._roi_pool_backward": _grad_of(lambda x: _tv().roi_pool(x, _rois(), 1.0, 2, 2)[0]),
    }
)
