"""Shape-only counts (fake, meta, a model built on the meta device) take the kernels a real CPU run takes.

On the meta device aten picks SDPA's math path, which does different work from the CPU's flash kernel; meta mode
therefore runs on fake tensors placed on the CPU. Every figure must be bit-identical across the modes.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

import flopwise

transformers = pytest.importorskip("transformers")

S, HIDDEN, HEADS, KV_HEADS, FFN, VOCAB, LAYERS = 512, 128, 4, 2, 256, 1000, 2
HEAD_DIM = HIDDEN // HEADS  # 32


def _llama_config() -> Any:
    return transformers.LlamaConfig(
        hidden_size=HIDDEN,
        intermediate_size=FFN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        num_key_value_heads=KV_HEADS,
        vocab_size=VOCAB,
        attn_implementation="sdpa",
    )


def _llama_macs(causal: bool) -> int:
    """The hand count of one forward of LlamaForCausalLM on S tokens."""
    projections = S * HIDDEN * (HIDDEN + 2 * KV_HEADS * HEAD_DIM + HIDDEN)  # q, k and v (GQA: 2 kv heads), o
    pairs = S * (S + 1) // 2 if causal else S * S  # query–key pairs: all, or those the causal mask keeps
    attention = 2 * HEADS * pairs * HEAD_DIM  # QKᵀ and A·V, per head
    mlp = 3 * S * HIDDEN * FFN  # gate, up and down projections
    lm_head = S * HIDDEN * VOCAB
    return LAYERS * (projections + attention + mlp) + lm_head


def test_the_hand_count() -> None:
    # Each product of one layer written out with the sizes as numbers: S = 512 tokens, d = 128, 4 query heads
    # and 2 key/value heads of 32, FFN 256, vocabulary 1,000, 2 layers.
    q = o = 512 * 128 * 128  # S·d·d: 8,388,608 each
    k = v = 512 * 128 * (2 * 32)  # S·d·(kv heads·head dim): 4,194,304 each
    scores = values = 4 * 512 * 512 * 32  # heads·S·S·head dim: 33,554,432 each (dense)
    gate = up = down = 512 * 128 * 256  # S·d·FFN: 16,777,216 each
    lm_head = 512 * 128 * 1000  # S·d·V: 65,536,000
    layer = q + k + v + o + scores + values + gate + up + down
    assert layer == 142_606_336
    assert _llama_macs(causal=False) == 2 * layer + lm_head == 350_748_672
    # causal: query i sees keys 0..i, 1 + 2 + … + 512 = 512·513/2 = 131,328 pairs per head instead of 512·512
    causal_scores = causal_values = 4 * 131_328 * 32  # heads·pairs·head dim: 16,809,984 each
    causal_layer = layer - scores - values + causal_scores + causal_values
    assert _llama_macs(causal=True) == 2 * causal_layer + lm_head == 283_770_880


def _counts(model: torch.nn.Module, inputs: dict[str, torch.Tensor], mode: str, convention: str) -> tuple[int, ...]:
    r = flopwise.count(model, inputs, mode=mode, convention=convention)
    assert r.unsupported == {}
    assert "aten._scaled_dot_product_flash_attention_for_cpu" in r.by_operator()  # the CPU kernel, not the math path
    return r.macs, r.flops, r.bytes_read, r.bytes_written


@pytest.mark.parametrize("convention", ["default", "causal"])
def test_tiny_llama_is_identical_in_every_mode(convention: str) -> None:
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(_llama_config()).eval()
    with torch.device("meta"):
        on_meta = transformers.LlamaForCausalLM(_llama_config()).eval()
    ids = {"input_ids": torch.zeros(1, S, dtype=torch.long)}
    real = _counts(model, ids, "real", convention)
    assert real[0] == _llama_macs(causal=convention == "causal")
    assert _counts(model, ids, "fake", convention) == real
    assert _counts(model, ids, "meta", convention) == real
    assert _counts(on_meta, ids, "meta", convention) == real  # what `flopwise hf:` counts
    assert real[2] + real[3] < 50_000_000  # the flash kernel never writes the S×S scores (the math path: 104.6 MB)


@pytest.mark.parametrize("family", ["gpt2", "bert"])
def test_gpt2_and_bert_are_identical_in_every_mode(family: str) -> None:
    t = transformers
    if family == "gpt2":
        config = t.GPT2Config(n_embd=64, n_layer=2, n_head=4, vocab_size=100, attn_implementation="sdpa")
        build = t.GPT2LMHeadModel
    else:
        config = t.BertConfig(
            hidden_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=128,
            vocab_size=100,
            attn_implementation="sdpa",
        )
        build = t.BertModel
    torch.manual_seed(0)
    model = build(config).eval()
    ids = {"input_ids": torch.randint(0, 100, (2, 64))}
    for convention in ("default", "causal"):
        real = _counts(model, ids, "real", convention)
        assert _counts(model, ids, "fake", convention) == real
        assert _counts(model, ids, "meta", convention) == real


def _padding(batch: int, length: int, padded: int) -> torch.Tensor:
    mask = torch.ones(batch, length, dtype=torch.long)
    mask[-1, :padded] = 0  # the last row left-padded
    return mask


@pytest.mark.parametrize(
    "family, extra",
    [
        ("llama", {"attention_mask": _padding(2, 16, 0)}),  # a tokenizer's mask without padding: all ones
        ("llama", {"attention_mask": _padding(2, 16, 4)}),
        ("llama", {"use_cache": False}),  # no cache: transformers looks for packed sequences in the positions
        ("llama", {"position_ids": torch.tensor([[0, 1, 2, 3, 4, 0, 1, 2, 0, 1, 2, 3, 4, 5, 6, 7]] * 2)}),
        ("bert", {"attention_mask": _padding(2, 16, 0)}),
        ("bert", {"attention_mask": _padding(2, 16, 4)}),
    ],
)
def test_checks_transformers_makes_on_values_are_made_as_a_real_run_makes_them(family: str, extra: dict) -> None:
    """transformers takes its compile-safe path on fake tensors (`is_tracing`): an explicit mask where a real run
    finds the padding mask all ones, or one unpacked sequence in the positions, and skips it. Shape-only counts
    know these inputs' values and must count what the real run does: every figure equal."""
    t = transformers
    torch.manual_seed(0)
    if family == "llama":
        model = t.LlamaForCausalLM(
            t.LlamaConfig(
                vocab_size=128,
                hidden_size=64,
                intermediate_size=128,
                num_hidden_layers=2,
                num_attention_heads=8,
                num_key_value_heads=4,
                attn_implementation="sdpa",
            )
        ).eval()
    else:
        config = t.BertConfig(
            vocab_size=128, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128
        )
        model = t.BertModel(config).eval()
    inputs = {"input_ids": torch.randint(0, 128, (2, 16)), **extra}
    real = flopwise.count(model, inputs)
    for mode in ("fake", "meta"):
        shape_only = flopwise.count(model, inputs, mode=mode)
        assert shape_only.to_dict()["total"] == real.to_dict()["total"], mode
        assert shape_only.operator_calls() == real.operator_calls(), mode  # the same ops, not only the same sums


def test_fast_paths_chosen_by_device_are_taken_as_on_the_cpu() -> None:
    # nn.TransformerEncoderLayer in eval runs one fused op on the CPU; on the meta device it would take the
    # unfused path (separate projections, softmax, …): different FLOPs and bytes for the same MACs
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(16, 2, 32, batch_first=True).eval()
    x = torch.randn(2, 5, 16)
    reports = [flopwise.count(layer, x, mode=mode) for mode in ("real", "fake", "meta")]
    assert {(r.macs, r.flops, r.bytes_read, r.bytes_written) for r in reports} == {
        (reports[0].macs, reports[0].flops, reports[0].bytes_read, reports[0].bytes_written)
    }
    assert all(list(r.by_operator()) == ["aten._transformer_encoder_layer_fwd"] for r in reports)
    # q, k, v and out projections, QKᵀ and AV per head (2 heads of 8), two feed-forward layers; 2×5 tokens
    assert reports[0].macs == 10 * 16 * 16 * 4 + 2 * 2 * 5 * 5 * 8 * 2 + 10 * 16 * 32 * 2


class TokensToMapAndBack(torch.nn.Module):
    """pvt_v2's MLP: tokens viewed back to a batch-of-one feature map, a depthwise conv, tokens again, a Linear.
    The view's batch stride (a size-1 dimension) decides whether the conv sees a channels-last map, and so
    whether the Linear's input is contiguous (addmm) or not (mm + add, as on the CPU here)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.fc = torch.nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, channels = x.shape
        maps = x.transpose(1, 2).view(batch, channels, 4, 4)
        return self.fc(self.conv(maps).flatten(2).transpose(1, 2))


@pytest.mark.parametrize("mode", ["real", "fake", "meta"])
def test_a_view_has_the_strides_the_cpu_gives_its_size_1_dimension(mode: str) -> None:
    r = flopwise.count(TokensToMapAndBack(), torch.randn(1, 16, 8), mode=mode)
    calls = r.operator_calls()
    assert calls["aten.mm"] == 1 and calls["aten.add"] == 1 and calls["aten.addmm"] == 0  # the CPU's path
    fc = r["fc"]
    # mm reads the 16×8 tokens and the 8×4 weight, writes 16×4; add reads that and the 4 biases, writes 16×4
    assert fc.bytes_read == 4 * (16 * 8 + 8 * 4) + 4 * (16 * 4 + 4)
    assert fc.bytes_written == 4 * 16 * 4 + 4 * 16 * 4


def test_counts_that_overlap_each_see_their_values_and_transformers_gets_its_function_back() -> None:
    """Two counts in two threads (parallel plans take no process-wide lock) may start and end in any order."""
    import transformers.utils.import_utils as checks
    from torch._subclasses.fake_tensor import FakeTensorMode

    from flopwise.shapes_only.eager_checks import eager_checks_on_known_values
    from flopwise.shapes_only.values import Values

    original = checks.is_fake_tensor
    with FakeTensorMode():
        a, b = torch.empty(3), torch.empty(3)
    first, second = Values(), Values()
    first.seed(a, torch.ones(3))
    second.seed(b, torch.zeros(3))
    one, two = eager_checks_on_known_values(first), eager_checks_on_known_values(second)
    one.__enter__()
    two.__enter__()
    assert not checks.is_fake_tensor(a) and not checks.is_fake_tensor(b)  # each count's known values
    one.__exit__(None, None, None)  # the first count ends before the second
    assert checks.is_fake_tensor(a) and not checks.is_fake_tensor(b)
    two.__exit__(None, None, None)
    assert checks.is_fake_tensor is original and checks.is_fake_tensor(a)
