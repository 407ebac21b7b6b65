"""Ops triaged as not costable, each with the reason.

An op listed here has no formula and no decomposition that capture can use. It is still reported in
`report.unsupported` (with where it ran) when a model runs it — never a silent zero — but the enumeration
test (tests/test_coverage_all_ops.py) knows it was looked at and why it has no cost.
"""

from __future__ import annotations

from collections.abc import Iterable

from torch import ops

from .registry import OpLike, op_name

aten, quantized = ops.aten, ops.quantized

UNCOSTABLE: dict[str, str] = {}  # op name → why it has no cost


def uncostable(reason: str, op_list: Iterable[OpLike]) -> None:
    """Declare ops that flopwise cannot cost yet, with the reason; they stay in `report.unsupported`."""
    for op in op_list:
        UNCOSTABLE[op_name(op)] = reason


uncostable(
    "the number of steps depends on the data (an iterative method, or a degree given as a tensor), "
    "not on the shapes a formula sees",
    [aten.linalg_matrix_exp, aten.linalg_matrix_sqrth, aten.linalg_polar],
)
uncostable(
    "the algorithm (and so its count) is chosen at run time by the LAPACK/cuSOLVER driver and device",
    [aten.linalg_lstsq],
)
uncostable(
    "sparse layouts (COO, CSR/CSC, BSR, semi-structured) outside sparse·dense products (those are costed from "
    "the stored values): conversions, sparse·sparse products, reductions and semi-structured kernels, whose "
    "work depends on the pattern of the non-zeros",
    [
        aten._coalesce,
        aten._coalesced,
        aten._convert_indices_from_coo_to_csr,
        aten._convert_indices_from_csr_to_coo,
        aten._sparse_compressed_tensor_with_dims,
        aten._sparse_coo_tensor_with_dims,
        aten._sparse_coo_tensor_with_dims_and_tensors,
        aten._sparse_csr_prod,
        aten._sparse_csr_sum,
        aten._sparse_log_softmax,
        aten._sparse_log_softmax_backward_data,
        aten._sparse_mask_projection,
        aten._sparse_mm_reduce_impl,
        aten._sparse_mm_reduce_impl_backward,
        aten._sparse_softmax,
        aten._sparse_softmax_backward_data,
        aten._sparse_sparse_matmul,
        aten._sparse_sum,
        aten._sparse_sum_backward,
        aten._spdiags,
        aten._spsolve,
        aten._to_sparse,
        aten._to_sparse_bsc,
        aten._to_sparse_bsr,
        aten._to_sparse_csc,
        aten._to_sparse_csr,
        aten._to_sparse_semi_structured,
        aten._validate_compressed_sparse_indices,
        aten.copy_sparse_to_sparse,
        aten.resize_as_sparse,
        aten.sparse_compressed_tensor,
        aten.sparse_coo_tensor,
        aten.sparse_mask,
        aten.sparse_resize,
        aten.sparse_resize_and_clear,
        aten.sparse_sampled_addmm,
        aten._cslt_compress,
        aten._cslt_sparse_mm,
        aten._cslt_sparse_mm_search,
        aten._sparse_semi_structured_addmm,
        aten._sparse_semi_structured_apply,
        aten._sparse_semi_structured_apply_dense,
        aten._sparse_semi_structured_linear,
        aten._sparse_semi_structured_mm,
        aten._sparse_semi_structured_tile,
    ],
)
uncostable(
    "the work depends on values, not shapes: selection by value (median, k-th value, mode), CTC's lattice "
    "(its skip transitions depend on repeated labels), segment lengths, max_norm renormalization of the rows "
    "that exceed it",
    [
        aten.kthvalue,
        aten.median,
        aten.nanmedian,
        aten.mode,
        aten._ctc_loss,
        aten._ctc_loss_backward,
        aten._cudnn_ctc_loss,
        aten.miopen_ctc_loss,
        aten.segment_reduce,
        aten._segment_reduce_backward,
        aten.embedding_renorm,
    ],
)
uncostable(
    "orthogonal polynomials of degree n: the recurrence takes n steps and n may be a tensor (data)",
    [
        aten.special_chebyshev_polynomial_t,
        aten.special_chebyshev_polynomial_u,
        aten.special_chebyshev_polynomial_v,
        aten.special_chebyshev_polynomial_w,
        aten.special_shifted_chebyshev_polynomial_t,
        aten.special_shifted_chebyshev_polynomial_u,
        aten.special_shifted_chebyshev_polynomial_v,
        aten.special_shifted_chebyshev_polynomial_w,
        aten.special_hermite_polynomial_h,
        aten.special_hermite_polynomial_he,
        aten.special_laguerre_polynomial_l,
        aten.special_legendre_polynomial_p,
    ],
)
uncostable(
    "binning with bin edges that may be a tensor (non-uniform bins: a search per element whose length depends on "
    "the edges) or several dimensions; aten.histc, uniform bins, is costed",
    [aten.histogram, aten._histogramdd_bin_edges, aten._histogramdd_from_bin_cts, aten._histogramdd_from_bin_tensors],
)
uncostable(
    "a kernel of a device flopwise does not run on (cuDNN, MIOpen, Apple MPS, Triton, CUDA-only attention and RNN "
    "backward): its argument layout differs from the CPU op's and no formula is written yet",
    [
        aten._cudnn_attention_forward,
        aten._cudnn_attention_backward,
        aten._cudnn_rnn_backward,
        aten._cudnn_rnn_flatten_weight,
        aten.miopen_rnn_backward,
        aten._lstm_mps,
        aten.lstm_mps_backward,
        aten.mps_convolution_backward,
        aten.mps_convolution_transpose_backward,
        aten._scaled_dot_product_attention_math_for_mps,
        aten._triton_multi_head_attention,
        aten._triton_scaled_dot_attention,
        aten._efficient_attention_backward,
        aten._flash_attention_backward,
        aten._flash_attention_forward_no_dropout_inplace,
        aten._scaled_dot_product_fused_attention_overrideable_backward,
        aten.cudnn_affine_grid_generator,
        aten.cudnn_affine_grid_generator_backward,
        aten.cudnn_grid_sampler_backward,
    ],
)
uncostable(
    "gradient kernels with no formula yet (distance, margin-loss, padding, sampling-gradient and forward-mode "
    "JVP kernels): the forward ops are costed, these are not",
    [
        aten._cdist_backward,
        aten._pdist_backward,
        aten.multi_margin_loss_backward,
        aten.multilabel_margin_loss_backward,
        aten.replication_pad1d_backward,
        aten.replication_pad2d_backward,
        aten.replication_pad3d_backward,
        aten._grid_sampler_2d_cpu_fallback,
        aten._grid_sampler_2d_cpu_fallback_backward,
        aten.glu_jvp,
        aten.glu_backward_jvp,
        aten._embedding_bag_backward,
        aten._embedding_bag_per_sample_weights_backward,
        aten._dirichlet_grad,
        aten._standard_gamma_grad,
        aten._thnn_fused_lstm_cell_backward_impl,
        aten._thnn_fused_gru_cell_backward,
        aten._upsample_lanczos2d_aa,
        aten._upsample_lanczos2d_aa_backward,
    ],
)
uncostable(
    "quantization-aware training kernels (fake quantization, observers) and the quantized batch norm: a formula "
    "is possible but not written yet",
    [
        aten._fake_quantize_learnable_per_channel_affine,
        aten._fake_quantize_learnable_per_channel_affine_backward,
        aten._fake_quantize_learnable_per_tensor_affine,
        aten._fake_quantize_learnable_per_tensor_affine_backward,
        aten._fake_quantize_per_tensor_affine_cachemask_tensor_qparams,
        aten.fake_quantize_per_channel_affine_cachemask,
        aten.fake_quantize_per_tensor_affine_cachemask,
        aten._fused_moving_avg_obs_fq_helper,
        aten._fused_moving_avg_obs_fq_helper_functional,
        aten.quantize_per_tensor_dynamic,
        aten.quantized_batch_norm,
    ],
)
uncostable(
    "quantized embedding lookups and bags (rows dequantized with their own scale and bias, then summed per bag): "
    "a formula is possible but not written yet",
    [
        quantized.embedding_byte,
        quantized.embedding_4bit,
        quantized.embedding_bag_byte,
        quantized.embedding_bag_4bit,
        quantized.embedding_bag_byte_rowwise_offsets,
        quantized.embedding_bag_4bit_rowwise_offsets,
        quantized.embedding_bag_2bit_rowwise_offsets,
        quantized.embedding_bag_byte_prepack_with_rowwise_min_max,
        quantized.embedding_bag_4bit_prepack_with_rowwise_min_max,
        quantized.embedding_bag_2bit_prepack_with_rowwise_min_max,
    ],
)
uncostable(
    "torch's own test and placeholder ops (no model runs them)",
    [
        aten._foobar,
        aten._test_autograd_multiple_dispatch,
        aten._test_functorch_fallback,
        aten._test_optional_filled_intlist,
        aten._test_optional_floatlist,
        aten._test_optional_intlist,
        aten._test_parallel_materialize,
        aten._test_warn_in_autograd,
    ],
)
uncostable(
    "SyncBatchNorm's per-rank statistics kernels (CUDA): a formula is possible but not written yet",
    [
        aten.batch_norm_stats,
        aten.batch_norm_elemt,
        aten.batch_norm_backward_reduce,
        aten.batch_norm_backward_elemt,
        aten.batch_norm_gather_stats,
        aten.batch_norm_gather_stats_with_counts,
        aten.batch_norm_update_stats,
    ],
)
uncostable(
    "prims torch._inductor registers for its compiled graphs (random seeds, low-memory pooling, layout and "
    "online-softmax helpers): eager code does not run them; costing compiled graphs is not covered yet",
    [
        f"prims.{name}"
        for name in (
            "_low_memory_max_pool_offsets_to_indices",
            "_low_memory_max_pool_with_offsets",
            "_unsafe_index_put_",
            "inductor_cvt_e8m0_rceil",
            "inductor_force_stride_order",
            "inductor_lookup_seed",
            "inductor_rand_eager_offset",
            "inductor_rand_eager_offsets",
            "inductor_randint",
            "inductor_random",
            "inductor_seed",
            "inductor_seeds",
            "prepare_softmax_online",
        )
    ],
)
