"""Rules that live in one place: the registry's one formula per op, formulas that see shapes only, one reading
of `inputs`, one statement of how a Work becomes FLOPs, and the five products of the attention backward."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

import flopwise
from flopwise.core.conventions import EXACT, PRESETS
from flopwise.counter import split_inputs
from flopwise.formulas.attention_backward import sdpa_backward_work
from flopwise.formulas.registry import FORMULAS, TensorSpec

LIB = torch.library.Library("flopwise_rules_test", "DEF")
LIB.define("twice(Tensor x) -> Tensor")
LIB.impl("twice", lambda x: x * 2, "CompositeExplicitAutograd")
TWICE = torch.ops.flopwise_rules_test.twice


def test_a_second_formula_for_an_op_is_refused_unless_replacing_is_explicit() -> None:
    def first(result, x) -> flopwise.Work:
        return flopwise.Work(flops=(flopwise.Flops("elementwise", flopwise.Term("E", E=x.numel())),))

    def second(result, x) -> flopwise.Work:
        return flopwise.Work(flops=(flopwise.Flops("elementwise", flopwise.Term("2·E", E=x.numel())),))

    try:
        flopwise.formula(TWICE)(first)
        with pytest.raises(ValueError, match="already has a formula.*replace=True"):
            flopwise.formula(TWICE)(second)
        with flopwise.counting() as c:
            TWICE(torch.ones(3, 4))
        assert c.report.flops == 3 * 4  # E: the first formula stands

        flopwise.formula(TWICE, replace=True)(second)
        with flopwise.counting() as c:
            TWICE(torch.ones(3, 4))
        assert c.report.flops == 2 * 3 * 4  # 2·E: replaced on request
    finally:
        FORMULAS.pop("flopwise_rules_test.twice", None)


def test_formulas_see_shapes_and_dtypes_never_values() -> None:
    seen: list[object] = []

    def spy(result, x) -> flopwise.Work:
        seen.extend([result, x])
        return flopwise.Work()

    with flopwise.counting(overrides={TWICE: spy}):
        TWICE(torch.ones(2, 5, dtype=torch.float16))
    result, x = seen
    assert isinstance(x, TensorSpec) and isinstance(result, TensorSpec)
    assert tuple(x.shape) == (2, 5) and x.dtype == torch.float16 and x.numel() == 2 * 5 and x.dim() == 2
    assert x.element_size() == 2 and x.is_floating_point() and not x.is_complex()
    assert not hasattr(x, "data") and not hasattr(x, "sum")  # no way to read the values


def test_one_reading_of_inputs() -> None:
    x = torch.ones(2)
    packed = pack_padded_sequence(torch.ones(3, 2, 8), torch.tensor([3, 2]))
    assert split_inputs(x) == ((x,), {})
    assert split_inputs((x, x)) == ((x, x), {})
    assert split_inputs([x]) == ((x,), {})
    assert split_inputs({"a": x}) == ((), {"a": x})
    assert split_inputs(packed) == ((packed,), {})  # a namedtuple is one argument


def test_measure_takes_a_packed_sequence_as_one_argument() -> None:
    lstm = nn.LSTM(8, 16)
    packed = pack_padded_sequence(torch.ones(3, 2, 8), torch.tensor([3, 2]))
    m = flopwise.measure(lstm, packed, repeats=1, warmup=0, profile_repeats=1)
    # 5 real time steps (3 + 2) × 4 gates × (input 8 + hidden 16) × hidden 16
    assert m.report.macs == 5 * 4 * (8 + 16) * 16
    assert m.seconds > 0


def test_attention_backward_counts_five_products_and_their_outputs() -> None:
    b, h, l, s, e, e_v = 1, 1, 2, 3, 4, 5
    work = sdpa_backward_work(b, h, l, s, e, e_v)
    # QKᵀ again L·S·E, dV = Pᵀ·dO S·E_v·L, dP = dO·Vᵀ L·S·E_v, dQ = dS·K L·E·S, dK = dSᵀ·Q S·E·L
    assert work.mac_count == 2 * 3 * 4 + 3 * 5 * 2 + 2 * 3 * 5 + 2 * 4 * 3 + 3 * 4 * 2
    # one dot product per output element: L·S + S·E_v + L·S + L·E + S·E = 6 + 15 + 6 + 8 + 12
    assert work.dots == 47


def test_exact_convention_on_cross_attention_backward() -> None:
    b, h, l, s, e, e_v = 2, 3, 4, 6, 8, 8  # the CPU flash kernel needs E = E_v; L ≠ S is what the fix is about
    q = torch.rand(b, h, l, e, requires_grad=True)
    k = torch.rand(b, h, s, e, requires_grad=True)
    v = torch.rand(b, h, s, e_v, requires_grad=True)
    with flopwise.counting(convention="exact") as c:
        torch.nn.functional.scaled_dot_product_attention(q, k, v).sum().backward()
    backward = [call for call in c.report.calls if call.op.endswith("_backward")]
    assert len(backward) == 1
    macs = b * h * (3 * l * s * e + 2 * l * s * e_v)
    dots = b * h * (l * s + s * e_v + l * s + l * e + s * e)
    other = b * h * (5 * l * s + 2 * l * e_v)  # re-exponentiate, dS, scale per score; D = rowsum(dO·O)
    assert backward[0].cost.flops == 2 * macs - dots + other


# The guides' SimpleAttentionBlock(256, 8) on 1×10×256 inputs, no mask, by hand: four 256→256 projections on 10
# rows, QKᵀ and AV per head (8 heads of 32), fc_out's bias, softmax over 8·10 rows of 10 scores (3n − 1 each).
ATTENTION_MACS = 4 * 10 * 256 * 256 + 2 * 8 * 10 * 10 * 32  # 2,621,440 + 51,200 = 2,672,640
ATTENTION_DOTS = 4 * 10 * 256 + 8 * 10 * 10 + 8 * 10 * 32  # one per output element: 10,240 + 800 + 2,560
BIAS, SOFTMAX = 10 * 256, 8 * 10 * (3 * 10 - 1)  # 2,560 adds; 80 rows · 29 = 2,320
ATTENTION_FLOPS = {
    "default": 2 * ATTENTION_MACS + BIAS + SOFTMAX,  # 5,350,160
    "contractions": 2 * ATTENTION_MACS,  # the guide's 5,345,280
    "mac": ATTENTION_MACS,  # 2,672,640
    "exact": 2 * ATTENTION_MACS - ATTENTION_DOTS + BIAS + SOFTMAX,  # k-term dot = 2k − 1: 5,336,560
    "no-bias": 2 * ATTENTION_MACS + SOFTMAX,  # 5,347,600
    "fused-bn": 2 * ATTENTION_MACS + BIAS + SOFTMAX,  # no batch norm to fold: as the default
    "causal": 2 * ATTENTION_MACS + BIAS + SOFTMAX,  # no mask: every query–key pair is kept
}


def test_every_preset_has_a_hand_count() -> None:
    assert sorted(ATTENTION_FLOPS) == sorted(PRESETS)
    assert ATTENTION_MACS == 2_672_640 and ATTENTION_DOTS == 13_600
    assert ATTENTION_FLOPS["default"] == 5_350_160 and ATTENTION_FLOPS["exact"] == 5_336_560


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_flops_are_the_sum_of_the_conventions_parts(name: str) -> None:
    from flopwise.examples import SimpleAttentionBlock

    a = torch.rand(1, 10, 256)
    report = flopwise.count(SimpleAttentionBlock(), (a, a, a, None), convention=name)
    rules = PRESETS[name]
    assert report.macs == ATTENTION_MACS
    assert report.flops == ATTENTION_FLOPS[name]  # by hand, above
    assert report.flops == sum(part.value for call in report.calls for part in rules.breakdown(call.work))
    assert report.flops == sum(rules.flops(call.work) for call in report.calls)


def test_exact_breakdown_names_its_parts() -> None:
    work = sdpa_backward_work(1, 1, 2, 3, 4, 5)
    labels = [part.label for part in EXACT.breakdown(work)]
    assert labels == ["MACs", "dot products", "softmax_backward"]
    assert sum(p.value for p in EXACT.breakdown(work)) == 2 * 132 - 47 + (5 * 2 * 3 + 2 * 2 * 5)
