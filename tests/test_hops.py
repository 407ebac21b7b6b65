"""Higher-order operators: flex_attention costed by formula, cond / while_loop / subgraph HOPs counted where they
run, and what cannot be counted reported, never a crash or a silent zero."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn
from torch._higher_order_ops.invoke_subgraph import invoke_subgraph
from torch._higher_order_ops.map import map as hop_map
from torch._higher_order_ops.out_dtype import out_dtype
from torch._higher_order_ops.while_loop import while_loop
from torch._higher_order_ops.wrap import tag_activation_checkpoint
from torch.nn.attention.flex_attention import create_block_mask, flex_attention

import flopwise
from flopwise.formulas.attention import flex_attention_work
from flopwise.formulas.attention_backward import flex_attention_backward_work

pytestmark = pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")


def soft_cap(score: Any, b: Any, h: Any, q: Any, kv: Any) -> Any:
    return torch.tanh(score / 20) * 20  # 1 div + 5 tanh + 1 mul = 7 FLOPs per query–key pair


def causal(b: Any, h: Any, q: Any, kv: Any) -> Any:
    return q >= kv  # an integer compare: 0 FLOPs


class Attention(nn.Module):
    def __init__(self, score_mod: Any = None, gqa: bool = False) -> None:
        super().__init__()
        self.score_mod, self.gqa = score_mod, gqa

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> Any:
        return flex_attention(q, k, v, score_mod=self.score_mod, enable_gqa=self.gqa)


class Net(nn.Module):
    def __init__(self, score_mod: Any = None, gqa: bool = False) -> None:
        super().__init__()
        self.attn = Attention(score_mod, gqa)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> Any:
        return self.attn(q, k, v)


def qkv(
    b: int, h: int, l: int, e: int, h_kv: int | None = None, s: int | None = None, e_v: int | None = None
) -> tuple[torch.Tensor, ...]:
    h_kv, s, e_v = h_kv or h, s or l, e_v or e
    return torch.randn(b, h, l, e), torch.randn(b, h_kv, s, e), torch.randn(b, h_kv, s, e_v)


@pytest.mark.parametrize("mode", ["real", "fake"])
def test_flex_attention_dense(mode: str) -> None:
    r = flopwise.count(Net(), qkv(1, 2, 16, 8), mode=mode, convention="default")
    assert r.complete
    assert r.macs == 2 * 1 * 2 * 16 * 16 * 8  # B·H·L·S·E (QKᵀ) + B·H·L·S·E_v (PV)
    flex = r.by_operator()["higher_order.flex_attention"]
    assert flex.flops == 2 * r.macs + 1 * 2 * 16 * 16 + 1 * 2 * 16 * (3 * 16 - 1)  # 2·MACs, scale, softmax 3S−1
    assert r["attn"].macs == r.macs  # attributed to the module that called it


def test_flex_attention_score_mod_and_mask_mod_per_pair() -> None:
    q, k, v = qkv(1, 2, 16, 8)
    block_mask = create_block_mask(causal, 1, 2, 16, 16, device="cpu")
    with flopwise.counting() as c:
        flex_attention(q, k, v, score_mod=soft_cap, block_mask=block_mask)
    flex = c.report.by_operator()["higher_order.flex_attention"]
    pairs = 1 * 2 * 16 * 16  # B·H·L·S
    assert flex.macs == 2 * pairs * 8
    assert flex.flops == 2 * flex.macs + pairs + 2 * 16 * (3 * 16 - 1) + pairs * 7  # … + score_mod 7 per pair
    assert c.report.complete


def test_flex_attention_grouped_query_heads_and_value_width() -> None:
    r = flopwise.count(Net(gqa=True), qkv(2, 4, 16, 8, h_kv=2, s=32, e_v=4))
    assert r.macs == 2 * 4 * 16 * 32 * 8 + 2 * 4 * 16 * 32 * 4  # B·H·L·S·E + B·H·L·S·E_v, H = query heads


def test_flex_attention_notes_what_it_left_out() -> None:
    q, k, v = qkv(1, 2, 4, 8)
    work = flex_attention_work(q, k, v, {"score_mod": "RuntimeError: no pair", "mask_mod": 0})
    assert work.mac_count == 2 * 1 * 2 * 4 * 4 * 8
    assert "score_mod left out" in work.note and "RuntimeError: no pair" in work.note
    assert "every query–key pair" in work.note


def test_flex_attention_backward_formula() -> None:
    q, k, v = qkv(1, 2, 16, 8, e_v=4)
    work = flex_attention_backward_work(q, k, v, None, None, None)
    assert work.mac_count == 3 * 1 * 2 * 16 * 16 * 8 + 2 * 1 * 2 * 16 * 16 * 4  # recompute, dQ, dK; dV, dP
    assert "score_mod" in work.note


class Branchy(nn.Module):
    """torch.cond: x @ W (N·K·M MACs) when the sum is positive, else sin (1 FLOP per element)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(8, 8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cond(x.sum() > 0, lambda t: t @ self.w, lambda t: t.sin(), (x,))


def test_cond_counts_the_branch_that_ran() -> None:
    x = torch.ones(4, 8)
    assert flopwise.count(Branchy(), x).macs == 4 * 8 * 8  # N·K·M: the true branch
    r = flopwise.count(Branchy(), -x)
    assert r.macs == 0 and r.by_operator()["aten.sin"].flops == 4 * 8  # sin: 1 FLOP per element
    assert r.complete and not r.warnings


def test_cond_on_fake_tensors_counts_the_costlier_branch_and_says_so() -> None:
    r = flopwise.count(Branchy(), torch.ones(4, 8), mode="fake")
    assert r.macs == 4 * 8 * 8 and "aten.sin" not in r.by_operator()
    assert len(r.warnings) == 1 and "costlier branch (true_fn)" in r.warnings[0]
    assert "warnings:" in str(r) and r.to_dict()["warnings"] == r.warnings


class Loop(nn.Module):
    """Three turns of t @ W; or, with `until`, as many as it takes the values to grow past it (data-dependent)."""

    def __init__(self, until: float | None = None) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.full((8, 8), 0.5))
        self.until = until

    def forward(self, x: torch.Tensor) -> Any:
        def cond(i: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return i < 3 if self.until is None else t.sum() < self.until

        return while_loop(cond, lambda i, t: (i + 1, t @ self.w), (torch.tensor(0), x))


@pytest.mark.parametrize("mode", ["real", "fake"])  # fake: torch.tensor(0) keeps its value, so `i < 3` has one
def test_while_loop_counts_each_turn(mode: str) -> None:
    assert flopwise.count(Loop(), torch.randn(4, 8), mode=mode).macs == 3 * 4 * 8 * 8  # 3 turns of N·K·M


def test_while_loop_with_a_data_dependent_condition() -> None:
    # sums 32 → 128 → 512 → 2,048 (each turn multiplies every entry by 8·0.5 = 4): 3 turns to pass 1,000
    assert flopwise.count(Loop(until=1000), torch.ones(4, 8)).macs == 3 * 4 * 8 * 8
    r = flopwise.count(Loop(until=1000), torch.ones(4, 8), mode="fake")  # no values: the turns are unknown
    assert r.unsupported_where == {"higher_order.while_loop": {"": 1}}
    assert any("while_loop" in w for w in r.warnings)


def test_subgraph_hops_count_their_subgraph() -> None:
    w, x = torch.randn(8, 8), torch.randn(4, 8)

    class Sub(nn.Module):
        def forward(self, t: torch.Tensor) -> torch.Tensor:
            return t @ w

    with flopwise.counting() as c:
        invoke_subgraph(lambda t: (t @ w,), "sub", x)
        tag_activation_checkpoint(torch.fx.symbolic_trace(Sub()), x)  # eager: runs as a plain call
        hop_map(lambda t: t @ w, torch.randn(5, 4, 8))
    assert c.report.macs == 4 * 8 * 8 + 4 * 8 * 8 + 5 * 4 * 8 * 8  # N·K·M each; map: 5 slices
    assert c.report.complete


def test_out_dtype_costs_the_op_it_wraps() -> None:
    a, b = torch.ones(4, 8, dtype=torch.int8), torch.ones(8, 3, dtype=torch.int8)
    with flopwise.counting() as c:
        out = out_dtype(torch.ops.aten.mm.default, torch.int32, a, b)
    assert out.dtype == torch.int32
    assert c.report.macs == 4 * 8 * 3 and c.report.complete  # M·K·N


@pytest.mark.filterwarnings("ignore:_compile flag on create_block_mask")
def test_transformers_flex_attention_counts_as_sdpa_does() -> None:
    transformers = pytest.importorskip("transformers")
    config = transformers.LlamaConfig(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=100,
    )
    ids = {"input_ids": torch.randint(0, 100, (1, 16))}
    reports = {}
    for implementation in ("sdpa", "flex_attention"):
        config._attn_implementation = implementation
        reports[implementation] = flopwise.count(transformers.LlamaModel(config).eval(), ids)
    assert reports["flex_attention"].complete
    assert reports["flex_attention"].macs == reports["sdpa"].macs
    # 2 layers of B·H·L·S·(E + E_v) = 1·4·16·16·(16 + 16): 4 query heads of width 64/4 = 16
    flex = reports["flex_attention"].by_operator()["higher_order.flex_attention"]
    assert flex.macs == 2 * 1 * 4 * 16 * 16 * (16 + 16)


class Checkpointed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner, self.head = nn.Linear(8, 8), nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> Any:
        return self.head(torch.utils.checkpoint.checkpoint(self.inner, x, use_reentrant=False).relu())


@pytest.mark.filterwarnings("ignore:Using `torch.compile")
@pytest.mark.parametrize("mode", ["real", "fake", "meta"])
def test_a_compiled_model_with_checkpoint_counts_as_eager(mode: str) -> None:
    compiled, x = torch.compile(Checkpointed()), torch.randn(4, 8)
    r = flopwise.count(compiled, x, mode=mode)
    assert r.complete
    assert r.macs == 4 * 8 * 8 + 4 * 8 * 4  # N·in·out of both Linears
    assert r["_orig_mod.inner"].macs == 4 * 8 * 8
    train = flopwise.count(compiled, x, mode=mode, step="train")
    # backward: the weight gradients of both (x needs no gradient) and head's input gradient; recomputing
    # inner repeats only its weight transpose (its saved tensors are x and Wᵀ): no product
    assert train.phases["backward"].macs == 8 * 4 * 8 + 4 * 4 * 8 + 4 * 8 * 4  # in·N·out each, then N·out·in
    assert train.phases["recompute"].macs == 0
