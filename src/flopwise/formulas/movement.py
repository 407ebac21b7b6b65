"""Ops that move or create data without floating-point arithmetic: zero FLOPs, bytes still counted.

(Views — ops whose output aliases an input — are recognised from their schema and cost nothing at all.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import ops

from ..core.cost import Work
from .registry import TensorSpec, formula, zero_cost

aten = ops.aten


@formula(aten.empty, aten.empty_like, aten.empty_strided, aten.new_empty, aten.new_empty_strided)
def allocation(result: TensorSpec, *args: TensorSpec | Sequence[int], **kwargs: Any) -> Work:
    """Allocating memory writes none of it."""
    return Work(bytes_read=0, bytes_written=0, note="allocates without writing: no FLOPs, no bytes")


@formula(aten.copy)
def copy(result: TensorSpec, destination: TensorSpec, source: TensorSpec, *args: bool, **kwargs: Any) -> Work:
    """`dst.copy_(src)` reads the source and writes the destination; it does not read the destination."""
    return Work(bytes_read=source.numel() * source.element_size(), note="copies: reads the source only")


zero_cost(
    "copies or converts data",
    [
        aten.clone,
        aten._to_copy,
        aten.contiguous,
        aten._copy_from,
        aten._copy_from_and_resize,
        aten.lift_fresh,
        aten.lift_fresh_copy,
        aten.detach_copy,
    ],
)
zero_cost(
    "allocates or fills memory",
    [
        aten.zeros,
        aten.zeros_like,
        aten.new_zeros,
        aten.ones,
        aten.ones_like,
        aten.new_ones,
        aten.full,
        aten.full_like,
        aten.new_full,
        aten.fill,
        aten.zero,
        aten.scalar_tensor,
        aten.arange,
        aten.resize,
    ],
)
zero_cost(
    "gathers, scatters or rearranges elements",
    [
        aten.cat,
        aten.stack,
        aten.constant_pad_nd,
        aten.flip,
        aten.roll,
        aten.repeat,
        aten.tril,
        aten.triu,
        aten.slice_scatter,
        aten.select_scatter,
        aten.masked_select,
    ],
)
zero_cost(
    "reads metadata or a scalar",
    [
        aten.sym_size,
        aten.sym_stride,
        aten.sym_numel,
        aten.sym_storage_offset,
        aten._local_scalar_dense,
        aten.is_nonzero,
        aten.is_same_size,
        aten.set_,
        aten.detach,
    ],
)
zero_cost(
    "pads by copying or reflecting edge elements",
    [
        aten.reflection_pad1d,
        aten.reflection_pad2d,
        aten.reflection_pad3d,
        aten.replication_pad1d,
        aten.replication_pad2d,
        aten.replication_pad3d,
        aten._pad_circular,
        aten._pad_enum,
        aten.pad,
    ],
)
zero_cost(
    "rearranges or scatters elements without arithmetic",
    [
        aten.scatter,
        aten.masked_scatter,
        aten.index_copy,
        aten.index_fill,
        aten.put,
        aten.take,
        aten.take_along_dim,
        aten.one_hot,
        aten.im2col,
        aten.pixel_shuffle,
        aten.pixel_unshuffle,
        aten.channel_shuffle,
        aten.native_channel_shuffle,
        aten.select_backward,
        aten.slice_backward,
        aten.diagonal_backward,
        aten.as_strided_scatter,
        aten.diagonal_scatter,
        aten.unfold_backward,
        aten.expand_copy,
        aten.permute_copy,
        aten.view_copy,
        aten._unsafe_view,
        aten.alias_copy,
        aten.t_copy,
        aten.transpose_copy,
        aten.unsqueeze_copy,
        aten.squeeze_copy,
        aten.select_copy,
        aten.slice_copy,
        aten.split_copy,
        aten.split_with_sizes_copy,
        aten.unbind_copy,
        aten.as_strided_copy,
        aten.diagonal_copy,
        aten.unfold_copy,
        aten.narrow_copy,
        aten.complex,
        aten.polar,
        aten._to_dense,
        aten.to_padded_tensor,
        aten.masked_select_backward,
        aten.tril_indices,
        aten.triu_indices,
        aten.eye,
    ],
)
zero_cost(
    "reads metadata",
    [
        aten.sym_is_contiguous,
        aten.is_contiguous,
        aten._nested_tensor_size,
        aten.equal,
        aten.item,
        aten.dim,
        aten.numel,
        aten.size,
        aten.stride,
        aten.storage_offset,
        aten._assert_async,
        aten._assert_scalar,
        aten._functional_assert_async,
        aten.record_stream,
        aten._assert_tensor_metadata,
    ],
)
zero_cost("checks the integer error codes a factorization returned", [aten._linalg_check_errors])
zero_cost(
    "packs the unmasked rows of a padded tensor into a nested tensor, or pads one (copies)",
    [aten._nested_tensor_from_mask, aten._nested_from_padded],
)
zero_cost(
    "checks that a boolean mask keeps a prefix of each row (no floating point)",
    [aten._nested_tensor_from_mask_left_aligned],
)
zero_cost(
    "reads or computes a nested tensor's metadata (sizes, strides, offsets, lengths: integers)",
    [
        aten._nested_compute_contiguous_strides_offsets,
        aten._nested_get_jagged_dummy,
        aten._nested_get_lengths,
        aten._nested_get_max_seqlen,
        aten._nested_get_min_seqlen,
        aten._nested_get_offsets,
        aten._nested_get_ragged_idx,
        aten._nested_tensor_storage_offsets,
        aten._nested_tensor_strides,
    ],
)
zero_cost(
    "builds a nested tensor from, or copies it to, a buffer, a padded tensor or a list (copies)",
    [
        aten._nested_from_padded_and_nested_example,
        aten._nested_from_padded_tensor,
        aten._nested_get_values_copy,
        aten._nested_tensor_from_tensor_list,
        aten._nested_view_from_buffer_copy,
        aten._nested_view_from_jagged_copy,
    ],
)
zero_cost(
    "gradient of select or sum on a nested tensor: copies the gradient into place, or expands it (no adds)",
    [aten._nested_select_backward, aten._nested_sum_backward],
)

zero_cost(
    "copies or converts data",
    [
        aten._indices_copy,
        aten._values_copy,
        aten.indices_copy,
        aten.values_copy,
        aten.crow_indices_copy,
        aten.col_indices_copy,
        aten.ccol_indices_copy,
        aten.row_indices_copy,
        aten._fw_primal_copy,
        aten._make_dual_copy,
        aten._reshape_alias_copy,
        aten._reshape_copy,
        aten._sparse_broadcast_to_copy,
        aten.view_as_real_copy,
        aten.view_as_complex_copy,
        aten._lazy_clone,
        aten._pin_memory,
        aten.lift,
        aten._mkldnn_reshape,
        aten._mkldnn_transpose,
        aten.to_mkldnn,
        aten.mkldnn_reorder_conv2d_weight,
        aten.mkldnn_reorder_conv3d_weight,
        aten._stack,
        aten.set,
        aten.shallow_copy_data_,
        aten.repeat_interleave,
        aten.masked_scatter_backward,
        aten._test_autograd_multiple_dispatch_view_copy,
    ],
)
zero_cost(
    "allocates or fills memory",
    [
        aten.empty_permuted,
        aten._efficientzerotensor,
        aten._new_zeros_with_same_feature_meta,
        aten.range,
        aten._resize_output,
        aten.from_file,
    ],
)
zero_cost(
    "reads metadata or a scalar",
    [
        aten._dimI,
        aten._dimV,
        aten._nnz,
        aten.dense_dim,
        aten.sparse_dim,
        aten.is_coalesced,
        aten.is_pinned,
        aten.is_set_to,
        aten._has_same_storage_numel,
        aten._fused_sdp_choice,
        aten._print,
    ],
)
zero_cost(
    "checks or records a condition on sizes or values (no arithmetic)",
    [
        aten._functional_assert_scalar,
        aten._functional_sym_constrain_range,
        aten._functional_sym_constrain_range_for_size,
        aten.sym_constrain_range,
        aten.sym_constrain_range_for_size,
        aten._make_dep_token,
        aten._is_all_true,
        aten._is_any_true,
        aten._amp_update_scale,
    ],
)
zero_cost(
    "copies or converts data",
    [aten._jagged_to_padded_dense_forward, aten._padded_dense_to_jagged_forward, aten._pack_padded_sequence],
)
zero_cost(
    "rearranges or scatters elements without arithmetic",
    [aten.lu_unpack],  # P, L and U copied out of the packed LU factors
)
zero_cost("reads metadata or a scalar", [aten._use_cudnn_ctc_loss, aten._use_miopen_ctc_loss])
