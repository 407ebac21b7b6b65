"""Grouped matrix products (mixture-of-experts layers): `_grouped_mm` and its scaled (fp8) forms.

`torch._grouped_mm(a, b, offs)` multiplies G pairs of matrices in one call. Its four forms, from the aten
kernel (`GroupedMMUtils.h`), each group g a plain M_g×K_g @ K_g×N_g product:

    a (M, K)    @ b (G, K, N), offs splits the M rows     → out (M, N):    Σ_g m_g·K·N = M·K·N
    a (G, M, K) @ b (K, N),    offs splits the N columns  → out (M, N):    Σ_g M·K·n_g = M·K·N
    a (M, K)    @ b (K, N),    offs splits the K sum      → out (G, M, N): Σ_g M·k_g·N = M·K·N
    a (G, M, K) @ b (G, K, N), no offs (a batched mm)     → out (G, M, N): G·M·K·N

`offs` (cumulative group ends) is data, but only its last value matters: however the tokens are split among
the experts, the group sizes add up to the split dimension. The count assumes they cover all of it
(offs[-1] = M, N or K), as they do when every row is routed; rows past offs[-1] (expert-parallel sentinels)
are skipped by the kernel and would be over-counted.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import ops

from ..core.cost import Term, Work
from .registry import TensorSpec, formula, output_rule

aten = ops.aten

_SPLIT_NOTE = "the {} {} are split among {} groups by offs (data); the group sizes add up to {}, whatever the split"


@formula(aten._grouped_mm, aten._scaled_grouped_mm, aten._scaled_grouped_mm_v2)
def grouped_mm(result: TensorSpec, a: TensorSpec, b: TensorSpec, *args: Any, **kwargs: Any) -> Work:
    """Σ over groups of m_g·k_g·n_g: M·K·N when offsets split one dimension (its sizes add up to it whatever the
    split), G·M·K·N for two stacks of G matrices."""
    if a.dim() == 3 and b.dim() == 3:
        g, m, k = (int(d) for d in a.shape)
        n = int(b.shape[-1])
        return Work(macs=Term("G·M·K·N", G=g, M=m, K=k, N=n), dots=g * m * n, note="G independent products")
    if a.dim() == 2 and b.dim() == 3:  # experts' weights stacked, tokens sorted by expert
        (m, k), (g, n) = a.shape, (b.shape[0], b.shape[-1])
        note, dots = _SPLIT_NOTE.format(m, "rows of a", g, "M"), int(m) * int(n)
    elif a.dim() == 3:  # a (G, M, K) @ b (K, N)
        g, m, k = a.shape
        n = b.shape[-1]
        note, dots = _SPLIT_NOTE.format(n, "columns of b", g, "N"), int(m) * int(n)
    else:  # a (M, K) @ b (K, N) → (G, M, N): one partial product per group, e.g. the experts' weight gradients
        (m, k), n, g = a.shape, b.shape[-1], result.shape[0]
        note, dots = _SPLIT_NOTE.format(k, "contracted indices", g, "K"), int(g) * int(m) * int(n)
    return Work(macs=Term("M·K·N", M=int(m), K=int(k), N=int(n)), dots=dots, note=note)


@output_rule(aten._grouped_mm)
def grouped_mm_output(
    a: torch.Tensor,
    b: torch.Tensor,
    offs: Any = None,
    bias: torch.Tensor | None = None,
    out_dtype: torch.dtype | None = None,
) -> torch.Tensor | None:
    """The output the CPU kernel allocates, for float32 inputs, which torch's meta kernel refuses (it checks
    the CUDA kernel's dtypes); None for the others, which the meta kernel handles."""
    if a.dtype != torch.float32 or b.dtype != a.dtype or (out_dtype or a.dtype) != a.dtype:
        return None
    if a.dim() == 2 and b.dim() == 2:
        size = [int(offs.shape[0]), int(a.shape[0]), int(b.shape[1])]
    elif a.dim() == 2:
        size = [int(a.shape[0]), int(b.shape[-1])]
    elif b.dim() == 2:
        size = [int(a.shape[1]), int(b.shape[1])]
    else:
        size = [int(a.shape[0]), int(a.shape[1]), int(b.shape[-1])]
    if a.dim() + b.dim() > 4 and a.shape[-1] != b.shape[-2]:
        raise RuntimeError(
            f"_grouped_mm: contraction dimension of mat_a {tuple(a.shape)} and mat_b {tuple(b.shape)} must match"
        )
    alignment = 16 // a.element_size()  # the kernel pads the last dimension's stride to 16 bytes
    padded = (size[-1] + alignment - 1) // alignment * alignment
    stride = [padded, 1] if len(size) == 2 else [size[1] * padded, padded, 1]
    return torch.empty_strided(size, stride, dtype=a.dtype, device=a.device)
