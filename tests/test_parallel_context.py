"""Context parallelism in parallel plans: each rank its contiguous chunk of every sequence, keys and values
all-gathered over cp (flopwise.parallel.context). Every figure is derived by hand beside it."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from test_parallel import tiny_llama
from torch import nn

import flopwise
from flopwise.parallel import parse, plan
from flopwise.parallel.context import NOTE, slice_sequence

B, S, E, H = 2, 8, 16, 2  # batch, sequence, width, heads (of D = 8)
D = E // H
SDPA = "aten._scaled_dot_product_flash_attention_for_cpu"


class Attention(nn.Module):
    """One projection to queries, keys and values, then SDPA: full attention, or causal, or with a mask."""

    def __init__(self, causal: bool = False, masked: bool = False) -> None:
        super().__init__()
        self.qkv = nn.Linear(E, 3 * E, bias=False)
        self.causal, self.masked = causal, masked

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, _ = x.shape
        q, k, v = self.qkv(x).view(b, s, 3, H, D).permute(2, 0, 3, 1, 4)
        mask = torch.ones(s, s, dtype=torch.bool) if self.masked else None
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=self.causal)
        return out.transpose(1, 2).reshape(b, s, E)


def gathered(rank: flopwise.parallel.RankReport) -> list[tuple[str, int, bool]]:
    return [(c.kind, c.bytes, c.backward) for c in rank.program_collectives if c.mesh_dim == "cp"]


def test_cp2_full_attention_does_half_the_pairs_and_gathers_keys_and_values() -> None:
    x = torch.randn(B, S, E)
    single = flopwise.count(Attention(), x)
    # QKᵀ and the weighted sum of V: B·H·S·S·D each = 2·2·8·8·8 = 2,048; together 4,096
    assert single.by_operator()[SDPA].macs == 2 * B * H * S * S * D == 4_096
    p = plan(Attention(), x, {"cp": 2}, step="train")
    r = p.ranks[0]
    # each rank: its 4 queries against all 8 keys: 2·B·H·(S/2)·S·D = 2·2·2·4·8·8 = 2,048 = 4,096 / 2
    assert r.report.by_operator()[SDPA].macs == 2 * B * H * (S // 2) * S * D == 2_048
    # keys and values gathered (forward), their gradients reduce-scattered (backward): B·H·S·D float32
    # = 2·2·8·8·4 = 1,024 bytes each
    assert gathered(r) == [("all_gather", 1_024, False)] * 2 + [("reduce_scatter", 1_024, True)] * 2
    # the projection: each rank its 2·4 = 8 tokens through 16→48: 8·16·48 = 6,144 MACs forward, as many for the
    # weight's gradient (the input needs none)
    assert r.report.by_operator()["aten.mm"].macs == 2 * 8 * 16 * 48 == 12_288
    # the cp ranks hold the same weights: FSDP2 over dp and cp flattened ("dp_cp"), here the 2 cp ranks:
    # the weight 48·16 float32 = 3,072 bytes gathered in forward and in backward, its gradient reduce-scattered
    fsdp = [(c.kind, c.bytes) for c in r.program_collectives if c.mesh_dim == "dp_cp"]
    assert fsdp == [("all_gather", 3_072), ("all_gather", 3_072), ("reduce_scatter", 3_072)]
    assert p.counted == 1 and p.ranks[1] is r  # the two chunks at the same shapes: equal by symmetry
    assert NOTE in r.notes  # which context parallelism was counted is said


def test_cp2_causal_llama_attention_per_rank_is_half_the_dense_count() -> None:
    model, _ = tiny_llama(batch=4)
    ids = torch.randint(0, 128, (4, 16))
    single = flopwise.count(model, {"input_ids": ids})
    # dense attention (the default convention): 2 layers × 2·B·heads·S·S·d = 2·2·4·8·16·16·8 = 262,144
    assert single.by_operator()[SDPA].macs == 262_144
    p = plan(model, {"input_ids": ids}, {"cp": 2})
    r = p.ranks[1]
    # each rank 8 queries against 16 keys: half of it
    assert r.report.by_operator()[SDPA].macs == 131_072
    # keys and values of the 4 key/value heads (SDPA takes them grouped): B·4·S·8 float32 = 4·4·16·8·4 = 8,192
    # bytes each, per layer
    assert gathered(r) == [("all_gather", 8_192, False)] * 4
    # everything else runs on the rank's 4·8 = 32 tokens: the whole model's MACs halve
    assert p.macs == single.macs


def test_slice_sequence_gives_each_chunk_its_global_positions() -> None:
    model, _ = tiny_llama(batch=4)
    ids = torch.arange(32).reshape(2, 16)
    _, kwargs = slice_sequence(model, (), {"input_ids": ids, "labels": ids}, 2, 1)
    assert torch.equal(kwargs["input_ids"], ids[:, 8:]) and torch.equal(kwargs["labels"], ids[:, 8:])
    assert torch.equal(kwargs["position_ids"], torch.arange(8, 16).expand(2, 8))


def test_cp_layout() -> None:
    layout = parse("dp=2,cp=2,tp=2")
    assert layout.mesh_dims == ("dp", "cp", "tp")  # torchtitan's order: dp, cp, tp
    # rank 5 = dp·(cp·tp) + cp·tp + tp = 1·4 + 0·2 + 1
    assert layout.coords(5) == {"pp": 0, "dp": 1, "cp": 0, "tp": 1}
    assert layout.group(5, "cp") == (5, 7)
    assert layout.group(5, "dp_cp") == (1, 3, 5, 7)  # the FSDP2 group: dp and cp varied, tp 1
    with pytest.raises(ValueError, match="ep together with cp"):
        parse("dp=2,ep=2,cp=2")


def test_what_cp_refuses() -> None:
    with pytest.raises(ValueError, match="does not split into 2 context-parallel chunks"):
        plan(Attention(), torch.randn(B, 7, E), {"cp": 2})
    with pytest.raises(ValueError, match="cannot be split by sequence"):
        plan(Attention(masked=True), torch.randn(B, S, E), {"cp": 2})


def test_cp_with_the_pipeline_stages_of_a_transformers_model() -> None:
    model, _ = tiny_llama(batch=4)
    ids = torch.randint(0, 128, (4, 16))
    p = plan(model, {"input_ids": ids}, {"cp": 2, "pp": 2})
    assert p.counted == 2  # one rank a stage; its cp partner holds the other chunk at the same shapes
    for r in p.ranks:
        # a stage holds one layer; a micro-batch is 2 of the 4 sequences (m = 2); the rank's 8 queries against
        # all 16 keys, 8 heads of 8: QKᵀ and AV, 2 · 2·8·8·16·8 = 32,768 MACs
        assert r.microbatches == 2 and r.report.by_operator()[SDPA].macs == 32_768
        # keys and values of the micro-batch, 4 key/value heads, the whole sequence: 2·4·16·8 float32 = 4,096 B
        assert gathered(r) == [("all_gather", 4_096, False)] * 2
    assert p.macs == flopwise.count(model, {"input_ids": ids}).macs  # every position's work, once, somewhere


def test_causal_attention_keeps_the_keys_up_to_each_global_position() -> None:
    """The mask of rank 1's causal attention (of 2 chunks of 4 positions): query i sits at position 4 + i and keeps
    keys 0 … 4 + i. Checked by value on a real gloo group of one process, whose all-gather hands back what it is
    given: give it all 8 keys and values, and the rank's output must be the last half of the whole attention's."""
    import sys

    import torch.distributed as dist

    from flopwise.parallel.context import gathered_attention

    torch.manual_seed(0)
    q, k, v = (torch.randn(1, 2, 8, 4) for _ in range(3))
    whole = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    hook = sys.excepthook
    dist.init_process_group("gloo", rank=0, world_size=1, store=dist.HashStore())
    try:
        group = dist.group.WORLD
        assert group is not None
        with gathered_attention(group.group_name, 2, 1):
            half = F.scaled_dot_product_attention(q[:, :, 4:], k, v, is_causal=True)
    finally:
        dist.destroy_process_group()
        sys.excepthook = hook
    assert torch.allclose(half, whole[:, :, 4:], atol=1e-6)
    # and without the offset (rank 0's mask, keys 0 … i) it would differ: the offset is what makes it right
    assert not torch.allclose(F.scaled_dot_product_attention(q[:, :, 4:], k, v, is_causal=True), whole[:, :, 4:])
