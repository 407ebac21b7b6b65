"""count(..., symbolic=...): exact polynomials in named input sizes, checked against direct counts at sizes the fit
never used, and against polynomials derived by hand."""

from __future__ import annotations

from typing import Any

import pytest
import sympy
import torch
import torchvision
import transformers
from torch import nn

import flopwise
from flopwise.symbolic.fit import Dim, SymbolicError

batch, seq, side = sympy.symbols("batch seq side", integer=True, positive=True)


def same_as_direct(report: Any, model: nn.Module, make: Any, mode: str = "fake", **sizes: int) -> None:
    """The polynomials at `sizes` equal a direct count there, in every metric."""
    direct = flopwise.count(model, make(**sizes), mode=mode)
    at = report.at(**sizes)
    assert (at.macs, at.flops, at.bytes_read, at.bytes_written, at.params) == (
        direct.macs,
        direct.flops,
        direct.bytes_read,
        direct.bytes_written,
        direct.params,
    ), sizes


def test_two_linear_layers_by_hand() -> None:
    d_in, h, d_out = 16, 32, 8
    model = nn.Sequential(nn.Linear(d_in, h), nn.Linear(h, d_out))
    report = flopwise.count(model, torch.randn(4, d_in), symbolic={"batch": 0})
    assert sympy.expand(report.formula("macs") - batch * (d_in * h + h * d_out)) == 0  # batch·(in·h + h·out)
    assert report.formula("params") == d_in * h + h + h * d_out + d_out  # weights and biases, no batch
    assert report.at(batch=1000).macs == 1000 * (d_in * h + h * d_out)
    assert report.macs == 4 * (d_in * h + h * d_out)  # the report itself is the count at the given inputs
    # the run with symbolic sizes stands for batch ≥ 2 (torch never makes 1 symbolic): batch 1 is counted
    assert report.variables[0].degree == 1 and report.variables[0].minimum == 2
    one = report.at(batch=1)
    assert (one.macs, one.source) == (flopwise.count(model, torch.randn(1, d_in)).macs, "counted") == (768, "counted")
    assert report.at(batch=7).source == "traced"
    assert "MACs = 768·batch" in report.explain()  # 16·32 + 32·8 = 768


def test_attention_is_quadratic_in_sequence_length_by_hand() -> None:
    class Scores(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x @ x.transpose(1, 2)

    d = 8
    report = flopwise.count(Scores(), torch.randn(2, 5, d), symbolic={"batch": 0, "seq": 1})
    assert sympy.expand(report.formula("macs") - batch * seq**2 * d) == 0  # B·S·S·d
    assert report.at(batch=3, seq=100).macs == 3 * 100 * 100 * d
    assert "MACs = 8·batch·seq²" in report.formulas()


def test_padding_to_a_multiple_is_refused_naming_the_size() -> None:
    class Padded(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            padded = -(-x.shape[1] // 8) * 8  # rounds the length up to a multiple of 8: piecewise
            return self.fc(nn.functional.pad(x, (0, 0, 0, padded - x.shape[1])))

    report = flopwise.count(Padded(), torch.randn(1, 5, 4), symbolic={"seq": 1})
    with pytest.raises(SymbolicError, match="not one polynomial in seq"):
        report.formula("macs")
    assert report.at(seq=13).macs == flopwise.count(Padded(), torch.randn(1, 13, 4)).macs == 16 * 4 * 4  # 13 → 16


def test_wrong_names_say_what_is_expected() -> None:
    model = nn.Linear(4, 4)
    with pytest.raises(SymbolicError, match="input 'ids' is not a tensor input"):
        flopwise.count(model, {"input": torch.randn(2, 4)}, symbolic={"batch": ("ids", 0)})
    with pytest.raises(SymbolicError, match="no dimension 5"):
        flopwise.count(model, torch.randn(2, 4), symbolic={"batch": 5})
    report = flopwise.count(model, torch.randn(2, 4), symbolic={"batch": 0})
    with pytest.raises(TypeError, match="no size named seq"):
        report.at(seq=3)
    with pytest.raises(ValueError, match="batch ≥ 1"):
        report.at(batch=0)


def tokens(batch: int, seq: int) -> dict[str, torch.Tensor]:
    return {"input_ids": torch.zeros(batch, seq, dtype=torch.long)}


TEXT = {"batch": ("input_ids", 0), "seq": ("input_ids", 1)}


@pytest.mark.parametrize("name", ["gpt2", "llama", "bert"])
def test_transformers_are_quadratic_in_sequence_length(name: str) -> None:
    layers, d = 2, 32
    if name == "gpt2":
        config: Any = transformers.GPT2Config(n_layer=layers, n_embd=d, n_head=2, vocab_size=50, n_positions=128)
        model: nn.Module = transformers.GPT2LMHeadModel(config)
    elif name == "llama":  # grouped-query attention: 4 query heads share 2 key/value heads
        config = transformers.LlamaConfig(
            hidden_size=d,
            intermediate_size=64,
            num_hidden_layers=layers,
            num_attention_heads=4,
            num_key_value_heads=2,
            vocab_size=100,
        )
        model = transformers.LlamaForCausalLM(config)
    else:
        config = transformers.BertConfig(
            vocab_size=100,
            hidden_size=d,
            num_hidden_layers=layers,
            num_attention_heads=4,
            intermediate_size=64,
            max_position_embeddings=128,
        )
        model = transformers.BertModel(config)
    model.eval()
    report = flopwise.count(model, tokens(2, 16), mode="fake", symbolic=TEXT)
    macs = sympy.Poly(report.polynomials["macs"], batch, seq)  # formula(): a Piecewise where guards bound it
    assert macs.coeff_monomial(batch * seq**2) == 2 * layers * d  # per layer Q·Kᵀ and A·V: S·S·d MACs each
    assert macs.degree(seq) == 2 and macs.degree(batch) == 1
    assert report.macs == flopwise.count(model, tokens(2, 16), mode="fake").macs
    for sizes in ({"batch": 3, "seq": 23}, {"batch": 1, "seq": 37}, {"batch": 7, "seq": 9}):  # never fitted
        same_as_direct(report, model, tokens, **sizes)


class TinyViT(nn.Module):
    """Patches → class token → transformer encoder → head; no positional table, so any image side works."""

    def __init__(self, patch: int = 8, dim: int = 32, layers: int = 2, classes: int = 10) -> None:
        super().__init__()
        self.embed = nn.Conv2d(3, dim, patch, stride=patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        layer = nn.TransformerEncoderLayer(dim, 2, 64, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(dim, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1)
        return self.head(self.encoder(x)[:, 0])


def test_vit_image_side_in_whole_patches() -> None:
    patch, dim, layers = 8, 32, 2
    model = TinyViT(patch, dim, layers).eval()

    def image(side: int) -> torch.Tensor:
        return torch.zeros(1, 3, side, side)

    report = flopwise.count(model, image(32), mode="fake", symbolic={"side": Dim((0, 2), (0, 3), multiple=patch)})
    assert report.variables[0].degree == 4  # tokens = (side/8)² + 1, attention is tokens²
    macs = sympy.Poly(sympy.expand(report.polynomials["macs"]), side)
    assert macs.coeff_monomial(side**4) == sympy.Rational(2 * layers * dim, patch**4)  # 2·L·T²·d, leading term
    for s in (40, 72, 120):  # never fitted
        same_as_direct(report, model, image, side=s)
    with pytest.raises(ValueError, match="multiple of 8"):
        report.at(side=42)


def test_resnet18_is_linear_in_batch() -> None:
    model = torchvision.models.resnet18(num_classes=10).eval()

    def images(batch: int) -> torch.Tensor:
        return torch.zeros(batch, 3, 32, 32)

    report = flopwise.count(model, images(2), mode="fake", symbolic={"batch": 0})
    one = flopwise.count(model, images(1), mode="fake")
    assert report.polynomials["macs"] == one.macs * batch  # no work is shared across the batch
    assert report.guards == ("batch < 16",)  # a kernel chosen by batch size: the run stands for batch < 16 only
    assert report.formula("macs") == sympy.Piecewise((one.macs * batch, (batch >= 2) & (batch < 16)))
    for b in (3, 11, 16, 40):  # 16 and 40 are counted: past the guard
        same_as_direct(report, model, images, batch=b)
    assert [report.at(batch=b).source for b in (11, 16)] == ["traced", "counted"]


class LinearReadingItsInput(nn.Linear):
    """A Linear whose forward reads a value of its input: no run with symbolic sizes can stand for other sizes."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) if x.abs().sum().item() >= 0 else x


def test_given_inputs_far_out_are_the_far_check() -> None:
    linear = LinearReadingItsInput(8, 4)  # counted size by size (the symbolic run meets .item() and stands aside)
    far = flopwise.count(linear, torch.rand(1, 40, 8), symbolic={"seq": 1})
    near = flopwise.count(linear, torch.rand(1, 10, 8), symbolic={"seq": 1})
    assert far.formula("macs") == near.formula("macs") == 8 * 4 * sympy.Symbol("seq", integer=True, positive=True)
    # degree 1 is proven by 4 sizes (2…5) and size 1 is checked apart; the far check is the given 40 tokens
    # themselves, while 10 tokens are not far enough out (3·(2 + 1 + 2) + 2 = 17): one more count. A fit by counting
    # is also checked at 4,097 tokens (a multiple of no power of two: padding to a multiple shows there)
    assert (far.counts, near.counts) == (1 + 4 + 1 + 1, 1 + 4 + 1 + 1 + 1)
    assert far.checks == (
        "seq = 40",
        "seq = 4,097 (a size that is a multiple of no power of two)",
        "seq = 1 (one step: its own path, or the same polynomial)",
    )
    assert far.at(seq=40).macs == flopwise.count(linear, torch.rand(1, 40, 8)).macs == 40 * 8 * 4
    assert far.at(seq=40).source == "counted"  # a fit by counting answers what it counted, and counts the rest
    assert far.at(seq=123).macs == 123 * 8 * 4 and far.counts == 7  # (`counts`: those the fit took)


METRICS = ("macs", "flops", "bytes_read", "bytes_written", "params")


def direct_values(model: nn.Module, inputs: Any, **options: Any) -> tuple[int, ...]:
    report = flopwise.count(model, inputs, **options)
    return tuple(getattr(report, m) for m in METRICS)


class PadsTo64(nn.Module):
    """Pads the sequence to a multiple of 64 with F.pad (a size the run with symbolic sizes cannot pad by): every
    size up to 64 costs what 64 does, so the sizes near the fit's grid alone look like a constant."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(nn.functional.pad(x, (0, 0, 0, -x.shape[1] % 64)))


def test_padding_to_a_multiple_of_64_is_no_silent_constant() -> None:
    model = PadsTo64()
    report = flopwise.count(model, torch.zeros(1, 10, 16), mode="fake", symbolic={"seq": 1})
    assert report.traced == 0  # F.pad broke the run with symbolic sizes: a fit by counting
    with pytest.raises(SymbolicError, match="not one polynomial in seq.*seq = 4,097"):
        report.formula("macs")  # fitted as the constant 64·16·16 = 16,384 on 2, 3…; refused at 4,097 (pads to 4,160)
    assert "no polynomial" in report.formulas()
    for length, padded in ((10, 64), (65, 128), (4096, 4096), (4097, 4160)):
        at = report.at(seq=length)
        assert at.values == direct_values(model, torch.zeros(1, length, 16), mode="fake"), length
        assert at.macs == padded * 16 * 16 and at.source == "counted"  # 4,096·256 = 1,048,576


def test_masked_sliding_window_is_counted_past_the_window() -> None:
    window, d, layers, vocab, inner = 64, 32, 2, 100, 64
    config = transformers.MistralConfig(
        hidden_size=d,
        intermediate_size=inner,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=vocab,
        sliding_window=window,
        max_position_embeddings=2048,
        attn_implementation="sdpa",
    )
    with torch.device("meta"):
        model = transformers.MistralForCausalLM(config).eval()

    def ids(length: int) -> dict[str, torch.Tensor]:
        return {"input_ids": torch.zeros(1, length, dtype=torch.long, device="meta")}

    # attention="masked" follows the mask's values: no run with symbolic sizes, a fit by counting, which the
    # sizes near its grid (2…6, 20: all inside the window) alone would take for one quadratic
    report = flopwise.count(model, ids(16), attention="masked", symbolic={"seq": ("input_ids", 1)})
    with pytest.raises(SymbolicError, match="seq = 65 \\(past sliding_window = 64\\)"):
        report.formula("macs")
    at = report.at(seq=1000)
    assert at.values == direct_values(model, ids(1000), attention="masked") and at.source == "counted"
    # by hand: each query keeps min(i + 1, 64) keys: 64·65/2 + (1000 − 64)·64 = 61,984 pairs a head; Q·Kᵀ and A·V
    # cost head_dim = 8 MACs a pair, 4 heads, 2 layers: 2·2·4·8·61,984 = 7,933,952; the projections, MLP and head
    # 21,632 a token (2·(2·32·32 + 2·32·16 + 3·32·64) + 32·100): 21,632,000
    pairs = window * (window + 1) // 2 + (1000 - window) * window
    per_token = layers * (2 * d * d + 2 * d * 16 + 3 * d * inner) + d * vocab
    assert at.macs == layers * 2 * 4 * 8 * pairs + 1000 * per_token
    assert at.macs == 29_565_952  # the quadratic fitted inside the window said 64·1000² + 21,696·1000 = 85,696,000


class BranchesThenReadsAValue(nn.Module):
    """A branch at 512 tokens (a guard of the run with symbolic sizes), then a value read from the data, which
    breaks that run: the fit counts, and is checked past the guard the run met."""

    def __init__(self) -> None:
        super().__init__()
        self.first, self.long = nn.Linear(8, 8), nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.first(x)
        x = self.long(x) if x.shape[1] > 512 else x
        return x * int(x.abs().sum().item() >= 0)


def test_a_fit_by_counting_is_checked_past_the_guards_the_run_met() -> None:
    model = BranchesThenReadsAValue()
    report = flopwise.count(model, torch.zeros(1, 16, 8), mode="fake", symbolic={"seq": 1})
    assert report.traced == 0 and "seq = 513 (past the guard seq <= 512)" in report.refused
    assert "set aside, met the guards seq <= 512" in report.refused
    with pytest.raises(SymbolicError, match="disagrees with the count at seq = 513"):
        report.formula("macs")  # 64·seq up to 512 tokens, 128·seq past them: 2·64·513 = 65,664 at 513
    for length, macs in ((100, 64 * 100), (513, 2 * 64 * 513)):
        at = report.at(seq=length)
        assert at.values == direct_values(model, torch.zeros(1, length, 8), mode="fake") and at.macs == macs
