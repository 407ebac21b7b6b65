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
        direct.macs, direct.flops, direct.bytes_read, direct.bytes_written, direct.params), sizes


def test_two_linear_layers_by_hand() -> None:
    d_in, h, d_out = 16, 32, 8
    model = nn.Sequential(nn.Linear(d_in, h), nn.Linear(h, d_out))
    report = flopwise.count(model, torch.randn(4, d_in), symbolic={"batch": 0})
    assert sympy.expand(report.formula("macs") - batch * (d_in * h + h * d_out)) == 0  # batch·(in·h + h·out)
    assert report.formula("params") == d_in * h + h + h * d_out + d_out  # weights and biases, no batch
    assert report.at(batch=1000).macs == 1000 * (d_in * h + h * d_out)
    assert report.macs == 4 * (d_in * h + h * d_out)  # the report itself is the count at the given inputs
    assert report.variables[0].degree == 1 and report.variables[0].minimum == 1
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

    with pytest.raises(SymbolicError, match="not one polynomial in seq"):
        flopwise.count(Padded(), torch.randn(1, 5, 4), symbolic={"seq": 1})


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
        config = transformers.LlamaConfig(hidden_size=d, intermediate_size=64, num_hidden_layers=layers,
                                          num_attention_heads=4, num_key_value_heads=2, vocab_size=100)
        model = transformers.LlamaForCausalLM(config)
    else:
        config = transformers.BertConfig(vocab_size=100, hidden_size=d, num_hidden_layers=layers, num_attention_heads=4,
                                         intermediate_size=64, max_position_embeddings=128)
        model = transformers.BertModel(config)
    model.eval()
    report = flopwise.count(model, tokens(2, 16), mode="fake", symbolic=TEXT)
    macs = sympy.Poly(report.formula("macs"), batch, seq)
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
    macs = sympy.Poly(sympy.expand(report.formula("macs")), side)
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
    assert report.formula("macs") == one.macs * batch  # no work is shared across the batch
    for b in (3, 11):
        same_as_direct(report, model, images, batch=b)


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
    # themselves, while 10 tokens are not far enough out (3·(2 + 1 + 2) + 2 = 17): one more count
    assert (far.counts, near.counts) == (4 + 1 + 1, 4 + 1 + 1 + 1)
    assert far.at(seq=40).macs == flopwise.count(linear, torch.rand(1, 40, 8)).macs == 40 * 8 * 4
