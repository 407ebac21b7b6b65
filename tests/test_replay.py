"""Replays of repeated blocks and the memo (shortcuts/replay.py) change nothing in a count: every record, row, byte
and memory figure is the same with shortcuts on and off (`shortcuts=False`), in fake and meta mode; blocks that
cannot be replayed are counted normally."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

import flopwise
from flopwise.shortcuts import replay
from tests.models import every_figure, small_resnet50, small_vit

transformers = pytest.importorskip("transformers")
torchvision = pytest.importorskip("torchvision")


def _gpt2() -> tuple[nn.Module, Any]:
    config = transformers.GPT2Config(n_layer=3, n_embd=64, n_head=4, vocab_size=100, n_positions=64)
    return transformers.GPT2Model(config).eval(), {"input_ids": torch.randint(0, 100, (2, 16))}


def _llama_gqa() -> tuple[nn.Module, Any]:
    config = transformers.LlamaConfig(
        vocab_size=100,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        attn_implementation="sdpa",
    )
    return transformers.LlamaForCausalLM(config).eval(), {"input_ids": torch.randint(0, 100, (2, 16))}


def _bert() -> tuple[nn.Module, Any]:
    config = transformers.BertConfig(
        vocab_size=100, hidden_size=64, num_hidden_layers=3, num_attention_heads=4, intermediate_size=128
    )
    mask = torch.ones(2, 16, dtype=torch.long)
    mask[1, 12:] = 0  # padding: the mask's values are followed (shadows) outside the layers
    return transformers.BertModel(config).eval(), {"input_ids": torch.randint(0, 100, (2, 16)), "attention_mask": mask}


def _vit() -> tuple[nn.Module, Any]:
    return small_vit(layers=3, batch=1)


def _resnet50() -> tuple[nn.Module, Any]:
    return small_resnet50(batch=1)


@pytest.mark.parametrize("build", [_gpt2, _llama_gqa, _bert, _vit, _resnet50], ids=lambda b: b.__name__[1:])
@pytest.mark.parametrize("mode", ["fake", "meta"])
def test_counts_identical_with_and_without_replays(
    build: Callable[[], tuple[nn.Module, Any]],
    mode: str,
    replicas: list[replay.Replicas],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    torch.manual_seed(0)
    model, inputs = build()
    on = flopwise.count(model, inputs, mode=mode)
    assert on.shortcuts.replayed > 0  # the repeated layers were replayed, not counted op by op
    off = flopwise.count(model, inputs, mode=mode, shortcuts=False)
    assert len(replicas) == 1  # no replays at all when switched off
    assert off.shortcuts.calls == 0
    assert every_figure(on) == every_figure(off)
    assert on.macs == flopwise.count(model, inputs, mode="real").macs  # and what a real run counts


class _Gate(nn.Module):
    """A block whose work depends on values: the Linear runs on the rows that `keep` selects."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        rows = (keep > 0).nonzero().squeeze(1)  # a data-dependent size, answered from the real input
        kept = x.index_select(0, rows)
        return x + self.fc(kept).sum(0)


class _Gates(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gates = nn.ModuleList([_Gate(), _Gate(), _Gate()])

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        for gate in self.gates:
            x = gate(x, keep)
        return x


def test_block_with_a_data_dependent_op_is_not_replayed(replicas: list[replay.Replicas]) -> None:
    keep = torch.tensor([1, 0, 1, 1, 0, 1])  # 4 of 6 rows
    r = flopwise.count(_Gates(), (torch.rand(6, 8), keep), mode="fake")
    assert replicas[-1].replayed == 0
    assert r.macs == 3 * 4 * 8 * 8  # three gates, each Linear on the 4 kept rows: R·K·N
    assert not any("real mode" in w for w in r.warnings)  # answered from the inputs, not by running for real


def test_same_block_on_other_shapes_is_counted_not_replayed(replicas: list[replay.Replicas]) -> None:
    blocks = nn.ModuleList([nn.Sequential(nn.ReLU(), nn.Linear(8, 8)) for _ in range(2)])  # first op: on the input

    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.blocks = blocks

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.blocks[1](self.blocks[0](x)[:3])  # the second block sees 3 rows, not 5

    r = flopwise.count(Model(), torch.rand(5, 8), mode="meta")
    assert replicas[-1].replayed == 0
    assert r["blocks.0"].macs == 5 * 8 * 8  # R·K·N
    assert r["blocks.1"].macs == 3 * 8 * 8
    assert r["blocks.1"].flops == 3 * 8 + 2 * 3 * 8 * 8 + 3 * 8  # ReLU 1 per element, 2 per MAC, bias add


class _Power(nn.Module):
    def __init__(self, exponent: float) -> None:
        super().__init__()
        self.exponent = exponent

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x**self.exponent).sum()  # int ** 2 stays int64; int ** 2.0 is float32: other bytes


class _Powers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.squared, self.squared_float = _Power(2), _Power(2.0)  # one structure: the second call may replay

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.squared(x) + self.squared_float(x)


def test_an_int_and_a_float_argument_are_not_the_same_call() -> None:
    r = flopwise.count(_Powers(), torch.arange(6, device="meta"), mode="fake")  # no values followed
    assert r["squared"].bytes_written == 6 * 8 + 8  # pow writes 6 int64, sum one
    assert r["squared_float"].bytes_written == 6 * 4 + 4  # float32


class _Twice(nn.Module):
    """The same op on the same shapes twice, outside any repeated block; then a value of the input's mask."""

    def __init__(self) -> None:
        super().__init__()
        self.first, self.second = nn.Linear(8, 4), nn.Linear(4, 8)  # two structures: nothing to tape

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        y = self.second(self.first(x).relu()).relu()  # relu on 5×4, then on 5×8
        z = self.second(self.first(x * 2).relu())  # relu on 5×4 again: the memo's
        unknown = self.first(x).argmax(-1) + 1  # 5 int64 from the weights: no value known
        known = mask + 1  # the same call on the input's mask, whose value is followed: not from the memo
        if bool((known > 1).all()):  # answered from the shadow of `known`, which it must therefore have
            z = z * 3
        return y + z + unknown.sum()


def test_a_call_met_before_is_made_from_the_memo_outside_repeated_blocks(
    replicas: list[replay.Replicas],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model, inputs = _Twice(), (torch.rand(5, 8), torch.ones(5, dtype=torch.long))
    on = flopwise.count(model, inputs, mode="meta")
    assert replicas[-1].recalled > 0 and replicas[-1].replayed == 0
    assert on.macs == 3 * 5 * 8 * 4 + 2 * 5 * 4 * 8  # `first` thrice, `second` twice: R·K·N each
    assert not any("real mode" in w for w in on.warnings)  # the mask's value was still known
    off = flopwise.count(model, inputs, mode="meta", shortcuts=False)
    assert every_figure(on) == every_figure(off)


class _Cached(nn.Module):
    """A KV cache as transformers starts one: `torch.tensor([])` (a constant the fake mode keeps) joined to keys;
    and a constant that decides the path, different in each block."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale, self.fc = scale, nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        keys = torch.cat([torch.tensor([]), self.fc(x).flatten()])  # a constant beside a fake tensor
        if (torch.tensor(self.scale) * 2).item() > 3:  # constants alone: folded, their value decides
            x = self.fc(x)
        return x + keys.sum()


def test_ops_on_constants_beside_fake_tensors_replay_and_constants_alone_are_counted(
    replicas: list[replay.Replicas],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model, x = nn.Sequential(_Cached(1.0), _Cached(2.0), _Cached(2.0)), torch.rand(5, 8)
    on = flopwise.count(model, x, mode="meta")
    cats = [e for tape in replicas[-1].tapes.values() for e in tape.entries if e.func is torch.ops.aten.cat.default]
    assert cats and all(e.key is not None for e in cats)  # taped, so replayed in the other blocks
    assert [on[str(i)].macs for i in range(3)] == [5 * 8 * 8, 2 * 5 * 8 * 8, 2 * 5 * 8 * 8]  # 2·1 ≤ 3 < 2·2: R·K·N
    assert every_figure(on) == every_figure(flopwise.count(model, x, mode="meta", shortcuts=False))


class _Items(nn.Module):
    """Two `.item()` calls on 0-d float32 tensors (one key): the input's value is known, the weights' is not."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        known = int(x.sum().item())  # answered from the input's shadow
        unknown = int(self.fc(x).sum().item())  # from the weights: not in the memo, though its key is known's
        return x * (known + unknown)


def test_a_value_the_shadows_answered_is_never_made_from_the_memo() -> None:
    r = flopwise.count(_Items(), torch.ones(3, 4), mode="meta")
    assert any("counting again in real mode" in w for w in r.warnings)  # as without replays
    assert r.macs == 3 * 4 * 1  # the Linear: R·K·N


class _DefaultDtypes(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        single = torch.empty(4)  # no dtype given: the default one, float32
        previous = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64)
        try:
            double = torch.empty(4)  # the same call, but it makes float64: not the memo's float32
        finally:
            torch.set_default_dtype(previous)
        return x + single.sum() + double.sum()


def test_a_factory_call_is_keyed_by_the_default_dtype(replicas: list[replay.Replicas]) -> None:
    r = flopwise.count(_DefaultDtypes(), torch.rand(3), mode="meta")
    empties = [c for c in r.calls if c.op == "aten.empty"]
    assert [c.dtype for c in empties] == ["float32", "float64"]
