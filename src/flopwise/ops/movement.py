"""Ops that move or create data without floating-point arithmetic: zero FLOPs, bytes still counted.

(Views — ops whose output aliases an input — are recognised from their schema and cost nothing at all.)
"""

from __future__ import annotations

from torch import ops

from ..registry import zero_cost

aten = ops.aten

zero_cost(
    "copies or converts data",
    [aten.clone, aten.copy, aten._to_copy, aten.contiguous, aten._copy_from, aten._copy_from_and_resize,
     aten.lift_fresh, aten.lift_fresh_copy, aten.detach_copy],
)
zero_cost(
    "allocates or fills memory",
    [aten.empty, aten.empty_like, aten.empty_strided, aten.new_empty, aten.new_empty_strided, aten.zeros,
     aten.zeros_like, aten.new_zeros, aten.ones, aten.ones_like, aten.new_ones, aten.full, aten.full_like,
     aten.new_full, aten.fill, aten.zero, aten.scalar_tensor, aten.arange, aten.resize],
)
zero_cost(
    "gathers, scatters or rearranges elements",
    [aten.cat, aten.stack, aten.index, aten.index_select, aten.gather, aten.embedding, aten.constant_pad_nd,
     aten.flip, aten.roll, aten.repeat, aten.tril, aten.triu, aten.index_put, aten.slice_scatter,
     aten.select_scatter, aten.masked_select],
)
zero_cost(
    "reads metadata or a scalar",
    [aten.sym_size, aten.sym_stride, aten.sym_numel, aten.sym_storage_offset, aten._local_scalar_dense,
     aten.is_nonzero, aten.is_same_size, aten.set_, aten.detach],
)
