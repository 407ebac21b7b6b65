"""One run with the named sizes symbolic (symbolic_trace.py): a single count stands for every size where torch's
guards hold, checked against direct counts at sizes it never ran, and against polynomials derived by hand."""

from __future__ import annotations

import pytest
import sympy
import torch
import transformers
from torch import nn

import flopwise
from flopwise.symbolic.fit import SymbolicError

seq = sympy.Symbol("seq", integer=True, positive=True)
METRICS = ("macs", "flops", "bytes_read", "bytes_written", "params")
L, D, HEADS, KV, INNER, VOCAB = 2, 32, 4, 2, 64, 100  # a tiny Llama with grouped-query attention


def llama_on_meta() -> nn.Module:
    config = transformers.LlamaConfig(
        hidden_size=D,
        intermediate_size=INNER,
        num_hidden_layers=L,
        num_attention_heads=HEADS,
        num_key_value_heads=KV,
        vocab_size=VOCAB,
    )
    with torch.device("meta"):
        return transformers.LlamaForCausalLM(config).eval()


def ids(batch: int, length: int) -> dict[str, torch.Tensor]:
    return {"input_ids": torch.zeros(batch, length, dtype=torch.long, device="meta")}


def equal_everywhere(report: flopwise.Report, model: nn.Module, sizes: list[int]) -> None:
    for length in sizes:
        direct, at = flopwise.count(model, ids(1, length)), report.at(seq=length)  # type: ignore[attr-defined]
        assert tuple(getattr(at, m) for m in METRICS) == tuple(getattr(direct, m) for m in METRICS), length


def test_one_run_stands_for_every_size() -> None:
    model = llama_on_meta()
    report = flopwise.count(model, ids(1, 512), symbolic={"seq": ("input_ids", 1)})
    assert report.counts == 1 and report.traced >= 5  # the given count; every fitted size costed from its trace
    kv = D // HEADS * KV  # 16: the width of the shared key and value projections
    per_layer = seq * D * D + 2 * seq * D * kv + seq * D * D + 3 * seq * D * INNER + 2 * seq**2 * D  # q,k,v,o,MLP,SDPA
    assert sympy.expand(report.formula("macs") - (L * per_layer + seq * D * VOCAB)) == 0  # + the LM head
    equal_everywhere(report, model, [3, 37, 1000])  # sizes the run never had


def test_the_traced_count_is_the_count_of_the_given_inputs() -> None:
    model = llama_on_meta()
    traced = flopwise.count(model, ids(1, 64), symbolic={"seq": ("input_ids", 1)})
    plain = flopwise.count(model, ids(1, 64))
    assert traced.counts == 1
    assert tuple(getattr(traced, m) for m in METRICS) == tuple(getattr(plain, m) for m in METRICS)
    assert traced.peak_activation_bytes == plain.peak_activation_bytes  # replays declare their storages' bytes
    for name, row in plain.modules.items():
        other = traced.modules[name]
        assert (other.cost, other.calls, other.input_shapes, other.output_shapes) == (
            row.cost,
            row.calls,
            row.input_shapes,
            row.output_shapes,
        ), name
    assert traced.inputs == plain.inputs == "input_ids=1×64 int64"


def test_size_one_is_counted_when_asked() -> None:
    model = llama_on_meta()
    report = flopwise.count(model, ids(1, 16), symbolic={"seq": ("input_ids", 1)})
    assert "exact for seq ≥ 2" in report.formulas()  # torch never makes a size of 1 symbolic: the run stands for ≥ 2
    equal_everywhere(report, model, [1])  # counted now
    assert report.at(seq=1).source == "counted" and report.at(seq=2).source == "traced"


def test_a_given_batch_of_one_is_traced_at_two() -> None:
    model = llama_on_meta()
    report = flopwise.count(model, ids(1, 8), symbolic={"batch": ("input_ids", 0), "seq": ("input_ids", 1)})
    assert report.counts == 1 and report.traced > 0  # the given count (batch 1); the trace ran at batch 2
    for batch, length in ((3, 5), (2, 40), (5, 2)):
        direct, at = flopwise.count(model, ids(batch, length)), report.at(batch=batch, seq=length)
        assert (at.macs, at.bytes_read, at.bytes_written) == (direct.macs, direct.bytes_read, direct.bytes_written)


class Branchy(nn.Module):
    """Sequences longer than `limit` take one more layer: a branch on a size, which torch records as a guard."""

    def __init__(self, limit: int = 16) -> None:
        super().__init__()
        self.limit = limit
        self.first, self.long = nn.Linear(8, 8), nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.first(x)
        return self.long(x) if x.shape[1] > self.limit else x


def direct(model: nn.Module, length: int) -> tuple[int, ...]:
    report = flopwise.count(model, torch.zeros(1, length, 8), mode="fake")
    return tuple(getattr(report, m) for m in METRICS)


def test_a_size_past_the_guards_is_counted_not_extrapolated() -> None:
    model = Branchy(512)  # 8·8 = 64 MACs a token up to 512 tokens, 128 past them
    report = flopwise.count(model, torch.zeros(1, 16, 8), mode="fake", symbolic={"seq": 1})
    assert report.guards == ("seq <= 512",)
    far = report.at(seq=4096)  # the polynomial of the run (64·seq) would say 262,144
    assert far.values == direct(model, 4096) and far.macs == 2 * 64 * 4096 == 524_288 and far.source == "counted"
    near = report.at(seq=300)
    assert near.values == direct(model, 300) and near.macs == 64 * 300 and near.source == "traced"
    assert report.polynomials["macs"] == 64 * seq
    assert report.formula("macs").subs(seq, 300) == 19_200 and report.formula("macs").subs(seq, 4096) is sympy.nan
    assert "exact for seq ≥ 2 where seq <= 512" in report.formulas() and "seq ≥ 1" not in report.formulas()


def test_a_run_past_a_branch_stands_only_past_it() -> None:
    model = Branchy(16)
    report = flopwise.count(model, torch.zeros(1, 40, 8), mode="fake", symbolic={"seq": 1})
    assert report.guards == ("seq > 16",)  # the branch the traced run took
    assert report.polynomials["macs"] == 128 * seq and report.variables[0].minimum == 17  # fitted on 17, 18, …
    for length, macs, source in (
        (12, 64 * 12, "counted"),
        (16, 64 * 16, "counted"),
        (17, 128 * 17, "traced"),
        (1000, 128 * 1000, "traced"),
    ):
        at = report.at(seq=length)
        assert at.values == direct(model, length) and (at.macs, at.source) == (macs, source), length


def sliding_window_on_meta(family: str, window: int) -> nn.Module:
    options = dict(
        hidden_size=D,
        intermediate_size=INNER,
        num_hidden_layers=L,
        num_attention_heads=HEADS,
        num_key_value_heads=KV,
        vocab_size=VOCAB,
        sliding_window=window,
        attn_implementation="sdpa",
    )
    if family == "qwen2":  # every layer slides its window
        config: transformers.PretrainedConfig = transformers.Qwen2Config(
            **options, use_sliding_window=True, max_window_layers=0
        )
        kind: type[nn.Module] = transformers.Qwen2ForCausalLM
    else:
        config, kind = transformers.MistralConfig(**options), transformers.MistralForCausalLM
    with torch.device("meta"):
        return kind(config).eval()


@pytest.mark.parametrize("family", ["mistral", "qwen2"])
def test_a_prompt_shorter_than_the_sliding_window_stands_only_inside_it(family: str) -> None:
    model = sliding_window_on_meta(family, window=8)
    report = flopwise.count(model, ids(1, 4), symbolic={"seq": ("input_ids", 1)})
    assert report.guards  # the window is a branch on the length: the run stands for seq ≤ 6 only
    kv = D // HEADS * KV
    per_token = L * (2 * D * D + 2 * D * kv + 3 * D * INNER) + D * VOCAB  # q, o; k, v; the MLP; the LM head: 21,632
    assert sympy.expand(report.polynomials["macs"] - (L * 2 * D * seq**2 + per_token * seq)) == 0
    assert report.at(seq=6).source == "traced"
    equal_everywhere(report, model, [7, 8, 9, 20, 1000])  # past the window: each counted, in every metric
    at = report.at(seq=1000)
    assert at.source == "counted" and at.macs == 128 * 1000**2 + 21_632 * 1000  # dense SDPA: the same products
    # but past the window the mask is a tensor of its own: its bytes are no longer the run's 10,792·seq + 87,184…
    assert at.bytes_read > 2 * sympy.Poly(report.polynomials["bytes_read"], seq).eval(1000)  # 24.7 M, not 10.9 M
    assert report.formula("bytes_read").subs(seq, 1000) is sympy.nan  # …and the formula does not answer there


def test_a_region_too_small_for_a_polynomial_still_answers_every_size() -> None:
    model = sliding_window_on_meta("mistral", window=5)  # the run from 3 tokens stands for seq ≤ 3: 2 and 3
    report = flopwise.count(model, ids(1, 3), symbolic={"seq": ("input_ids", 1)})
    assert report.fit is None and "seq = 4 is outside" in report.refused  # a quadratic needs 2…6 to be proven
    with pytest.raises(SymbolicError, match="too few sizes to prove a polynomial"):
        report.formula("macs")
    assert [report.at(seq=n).source for n in (2, 3, 4)] == ["traced", "counted", "counted"]  # 3: the given count
    equal_everywhere(report, model, [2, 4, 50])


class ReadsAValue(nn.Module):
    """A length read from the data (a data-dependent value): no trace can stand for other sizes."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x) * (x.shape[1] + int(x.abs().sum().item() > 0))


def test_a_data_dependent_value_counts_each_size() -> None:
    model = ReadsAValue()
    report = flopwise.count(model, torch.ones(1, 10, 8), mode="fake", symbolic={"seq": 1})
    assert report.traced == 0 and report.counts > 1  # counted size by size, as before the trace
    assert report.formula("macs") == 8 * 8 * seq


def test_real_mode_counts_once_and_takes_the_trace_only_where_it_agrees() -> None:
    config = transformers.LlamaConfig(
        hidden_size=D,
        intermediate_size=INNER,
        num_hidden_layers=L,
        num_attention_heads=HEADS,
        num_key_value_heads=KV,
        vocab_size=VOCAB,
    )
    model = transformers.LlamaForCausalLM(config).eval()  # real weights: the count of the given inputs is real

    def real_ids(length: int) -> dict[str, torch.Tensor]:
        return {"input_ids": torch.zeros(1, length, dtype=torch.long)}

    report = flopwise.count(model, real_ids(24), symbolic={"seq": ("input_ids", 1)})
    assert report.counts == 1 and report.traced >= 5  # one real count; the fake trace agreed with it, so it stands
    for length in (3, 41):
        direct, at = flopwise.count(model, real_ids(length)), report.at(seq=length)
        assert tuple(getattr(at, m) for m in METRICS) == tuple(getattr(direct, m) for m in METRICS), length


class RealOnlyStep(nn.Module):
    """One more layer on real tensors only: as transformers builds a mask only when it sees fake tensors tracing,
    a path that differs between real and fake tensors without raising."""

    def __init__(self) -> None:
        super().__init__()
        self.first, self.extra = nn.Linear(8, 8), nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.first(x)
        return self.extra(x) if type(x) is torch.Tensor else x


def test_real_mode_counts_each_size_where_the_fake_run_differs() -> None:
    model = RealOnlyStep()
    report = flopwise.count(model, torch.rand(1, 24, 8), symbolic={"seq": 1})
    assert report.traced == 0 and report.counts > 1  # the trace disagreed with the real count: set aside
    assert report.formula("macs") == 2 * 8 * 8 * seq  # both layers, as real runs: tokens·8·8 each
    for length in (5, 37):
        direct, at = flopwise.count(model, torch.rand(1, length, 8)), report.at(seq=length)
        assert tuple(getattr(at, m) for m in METRICS) == tuple(getattr(direct, m) for m in METRICS), length
