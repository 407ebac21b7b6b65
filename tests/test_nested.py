"""Nested tensors: the fast path of nn.TransformerEncoder / nn.MultiheadAttention in eval with a padding mask.

What PyTorch's CPU kernel runs on a nested batch of B sequences of L_i real tokens (T = ΣL_i, L = max L_i;
checked with torch.profiler): the q, k, v, output and feed-forward products on the T real tokens, the score and
value products (bmm) on the batch padded to L tokens, the softmax on each sequence's L_i×L_i scores.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import flopwise
from flopwise.shapes_only.values import NeedsData

pytestmark = pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors")

B, LENGTHS, L, E, H, F = 2, (5, 3), 5, 16, 2, 32  # 2 sequences of 5 and 3 real tokens, padded to 5
T = sum(LENGTHS)  # 8 real tokens
LAYER_MACS = (
    3 * T * E * E  # q, k, v projections of the real tokens
    + T * E * E  # output projection
    + 2 * B * H * L * L * (E // H)  # QKᵀ and A·V, padded: B·H matrices of L×L
    + 2 * T * E * F  # feed-forward network, real tokens
)


def encoder(layers: int = 2) -> nn.Module:
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(E, H, F, batch_first=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return nn.TransformerEncoder(layer, layers, enable_nested_tensor=True).eval()


def padding_mask() -> torch.Tensor:
    return torch.tensor([[False] * 5, [False] * 3 + [True] * 2])  # True = padding


def test_encoder_with_padding_mask_counts_the_real_tokens() -> None:
    r = flopwise.count(encoder(), {"src": torch.randn(B, L, E), "src_key_padding_mask": padding_mask()})
    assert r.unsupported == {}
    assert LAYER_MACS == 6_144 + 2_048 + 1_600 + 8_192
    assert r.macs == 2 * LAYER_MACS  # 35,968
    assert r["layers.0"].macs == LAYER_MACS
    q = sum(n * n for n in LENGTHS)  # 34 real query–key pairs per head
    layer_flops = (
        2 * LAYER_MACS
        + 3 * B * L * E
        + T * E  # q, k, v biases (on the padded batch), output bias
        + B * H * L * L  # scaling the scores
        + H * (3 * q - T)  # softmax of each sequence's rows: 3·L_i − 1 per row of L_i
        + T * F
        + T * E  # feed-forward biases
        + T * F  # ReLU
        + 2 * T * E  # two residual adds
        + 2 * (T * E * 7 + T * 4)  # two layer norms: 7 per element, 4 per row
    )
    assert r["layers.0"].flops == layer_flops  # 39,616
    assert r.peak_activation_bytes >= T * E * 4  # nested outputs are live memory: at least one T×E float32


def test_padding_saves_exactly_the_padded_tokens_dense_work() -> None:
    x = torch.randn(B, L, E)
    nested = flopwise.count(encoder(1), {"src": x, "src_key_padding_mask": padding_mask()})
    dense = flopwise.count(encoder(1), {"src": x})  # no mask: the fused kernel on the padded 2×5 batch
    padded_tokens = B * L - T  # 2
    assert dense.macs - nested.macs == padded_tokens * (4 * E * E + 2 * E * F)  # projections and FFN only


def test_multihead_attention_on_nested_inputs() -> None:
    mha = nn.MultiheadAttention(E, H, batch_first=True).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        x = torch.nested.nested_tensor([torch.randn(n, E) for n in LENGTHS])
    r = flopwise.count(mha, (x, x, x))
    assert r.unsupported == {}
    assert r.macs == 4 * T * E * E + 2 * B * H * L * L * (E // H)  # 8,192 + 1,600
    assert "nested(5×16, 3×16) float32" in r.inputs


def test_transformer_with_padding_mask_runs() -> None:
    torch.manual_seed(0)
    model = nn.Transformer(E, H, 1, 1, F, batch_first=True).eval()
    r = flopwise.count(
        model, {"src": torch.randn(B, L, E), "tgt": torch.randn(B, 4, E), "src_key_padding_mask": padding_mask()}
    )
    assert r.unsupported == {}
    assert r["encoder.layers.0"].macs == LAYER_MACS  # the encoder takes the nested fast path


def test_explanation_of_the_nested_layer_adds_up() -> None:
    from flopwise.explanation import render_explanation
    from tests.test_explain import check_chains

    r = flopwise.count(encoder(1), {"src": torch.randn(B, L, E), "src_key_padding_mask": padding_mask()})
    text = render_explanation(r)
    assert "nested batch of 2 sequences of 5, 3 tokens" in text
    assert f"{LAYER_MACS:,}" in text and check_chains(text) >= 1


def test_fast_path_pieces_costed_alone_match_the_fused_formula() -> None:
    """The fused kernel runs `_transform_bias_rescale_qkv` and `_nested_tensor_softmax_with_shape` inside: the mode
    sees only the fused op (nothing counted twice), and each piece called on its own costs the fused term."""
    A = torch.ops.aten
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        qkv = torch.nested.nested_tensor([torch.randn(n, 3 * E) for n in LENGTHS])
        query = torch.nested.nested_tensor([torch.randn(n, E) for n in LENGTHS])
    with torch.no_grad(), flopwise.counting() as c:
        A._transform_bias_rescale_qkv(qkv, torch.randn(3 * E), H)
    assert c.report.flops == 3 * B * L * E + B * L * E  # q, k, v biases and q's scale, on the batch padded to L
    with torch.no_grad(), flopwise.counting() as c:
        A._nested_tensor_softmax_with_shape(torch.randn(B, H, L, L), query)
    q = sum(n * n for n in LENGTHS)
    assert c.report.flops == H * (3 * q - T)  # each sequence's L_i rows of L_i real scores: 3·L_i − 1 per row
    with torch.no_grad(), flopwise.counting() as c:
        A._masked_softmax(torch.randn(B, L, L), torch.zeros(B, L, L, dtype=torch.bool), 2)
    assert c.report.flops == B * L * (3 * L - 1)  # the mask selects: softmax's 3n−1 per row of n


def test_multihead_attention_fast_path_counts_its_biases_once() -> None:
    mha = nn.MultiheadAttention(E, H, batch_first=True).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        nested = torch.nested.nested_tensor([torch.randn(n, E) for n in LENGTHS])
    padded = torch.randn(B, L, E)
    for x, macs, bias, softmax in (
        (nested, 4 * T * E * E + 2 * B * H * L * L * (E // H), 3 * B * L * E + T * E, H * (3 * 34 - T)),
        (padded, 4 * B * L * E * E + 2 * B * H * L * L * (E // H), 4 * B * L * E, B * H * L * (3 * L - 1)),
    ):
        with torch.no_grad(), flopwise.counting() as c:
            mha(x, x, x, need_weights=False)
        assert [call.op for call in c.report.calls] == ["aten._native_multi_head_attention"]
        # 2·MACs, the q/k/v and output biases (once), scaling the B·H·L·L scores, the softmax
        assert c.report.flops == 2 * macs + bias + B * H * L * L + softmax


@pytest.mark.parametrize("mode", ["fake", "meta"])
def test_shape_only_modes_count_the_nested_path_for_real_and_say_so(mode: str) -> None:
    """Torch skips the nested fast path on fake tensors (they carry __torch_function__): counted on them, the
    padded path would charge the padding's work. With weights, the count runs for real and says why."""
    r = flopwise.count(encoder(), {"src": torch.randn(B, L, E), "src_key_padding_mask": padding_mask()}, mode=mode)
    assert r.macs == 2 * LAYER_MACS  # the real tokens' work, as in real mode
    assert len(r.warnings) == 1
    assert "the nested-tensor fast path in module '(root)', which needs real tensors" in r.warnings[0]
    assert "counting again in real mode" in r.warnings[0]


def test_the_nested_path_on_the_meta_device_fails_in_one_line() -> None:
    with torch.device("meta"):
        model = encoder()
    with pytest.raises(NeedsData) as caught:
        flopwise.count(model, {"src": torch.randn(B, L, E), "src_key_padding_mask": padding_mask()})
    assert "\n" not in str(caught.value)
    assert "the nested-tensor fast path in module '(root)' needs real tensors" in str(caught.value)
    assert model._forward_pre_hooks == {}  # the stop is removed after the count


def test_without_a_padding_mask_shape_only_modes_need_no_real_run() -> None:
    r = flopwise.count(encoder(), torch.randn(B, L, E), mode="fake")
    assert r.macs == 2 * (4 * B * L * E * E + 2 * B * H * L * L * (E // H) + 2 * B * L * E * F)  # all 10 tokens
    assert r.warnings == []
