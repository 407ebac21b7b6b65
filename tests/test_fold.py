"""Folded blocks (fold.py): a repeated block called as one counted before is not run again, and the count is the
same record for record; a block whose call may depend on more than its key, or leave more behind than its outputs,
is run. The op memo kept across counts (replay.py) changes no count either."""

from __future__ import annotations

import copy
import inspect
from typing import Any

import pytest
import torch
from torch import nn

import flopwise
from flopwise.shortcuts import fold, replay
from tests.models import every_figure, small_resnet50, small_vit

torchvision = pytest.importorskip("torchvision")
transformers = pytest.importorskip("transformers")

D, H, T = 16, 32, 5  # width, hidden width, tokens



def _folded(replicas: list[replay.Replicas]) -> list[str]:
    folds = replicas[-1].folds
    assert folds is not None
    return folds.folded



def _unfolded(model: nn.Module, inputs: Any, mode: str, monkeypatch: pytest.MonkeyPatch) -> flopwise.Report:
    with monkeypatch.context() as patch:
        patch.setattr(fold.Folds, "usable", staticmethod(lambda: False))
        return flopwise.count(model, inputs, mode=mode)


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.up, self.down = nn.Linear(D, H), nn.Linear(H, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.down(torch.relu(self.up(x)))


def _vit() -> tuple[nn.Module, Any]:
    return small_vit(layers=4, batch=2)


def _resnet50() -> tuple[nn.Module, Any]:
    return small_resnet50(batch=2)


@pytest.mark.parametrize("build", [_resnet50, _vit], ids=["resnet50", "vit"])
@pytest.mark.parametrize("mode", ["fake", "meta"])
def test_a_folded_count_is_the_count_record_for_record(build: Any, mode: str, replicas: list[replay.Replicas],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    model, inputs = build()
    on = flopwise.count(model, inputs, mode=mode)
    assert _folded(replicas) == (RESNET50_FOLDS if build is _resnet50 else VIT_FOLDS)
    assert every_figure(on) == every_figure(_unfolded(model, inputs, mode, monkeypatch))
    assert on.macs == flopwise.count(model, inputs, mode="real").macs
    assert "forward" not in vars(model.layer1[2] if build is _resnet50 else model.layers[2])  # routed no more


# ResNet-50, stage by stage: the bottlenecks after the second (the first has a downsampling branch, the second is the
# first of its kind): 1 + 2 + 4 + 1. Its convolutions (one op), batch norms (two: empty, native_batch_norm) and ReLUs
# are left to replays.
RESNET50_FOLDS = [f"layer{stage}.{b}" for stage, blocks in ((1, 3), (2, 4), (3, 6), (4, 3)) for b in range(2, blocks)]
# ViT: layers 2 to 4, and in the first the key, value and output projections as the query's (64→64 on 2×17×64)
VIT_FOLDS = ["layers.0.attention.k_proj", "layers.0.attention.v_proj", "layers.0.attention.o_proj",
             "layers.1", "layers.2", "layers.3"]


def test_identical_blocks_fold_and_count_by_hand(replicas: list[replay.Replicas]) -> None:
    model = nn.Sequential(*(MLP() for _ in range(6)))
    r = flopwise.count(model, torch.rand(T, D, device="meta"), mode="fake")  # an input with no values: none to follow
    assert _folded(replicas) == ["1", "2", "3", "4", "5"]  # the first runs, the other five are folded
    assert r.macs == 6 * (T * D * H + T * H * D)  # six blocks, up and down projections: R·K·N each
    assert [r[f"{i}.up"].calls for i in range(6)] == [1] * 6
    assert r["5.down"].input_shapes == ((T, H),) and r["5"].output_shapes == ((T, D),)


class Scaled(MLP):
    """The path depends on a plain attribute: blocks with other values are other calls."""

    def __init__(self, twice: bool) -> None:
        super().__init__()
        self.twice = twice

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = super().forward(x)
        return super().forward(x) if self.twice else x


def test_a_block_with_another_attribute_value_is_not_folded_from_it(replicas: list[replay.Replicas]) -> None:
    model = nn.Sequential(Scaled(False), Scaled(True), Scaled(True), Scaled(False))
    r = flopwise.count(model, torch.rand(T, D, device="meta"), mode="fake")
    assert _folded(replicas) == ["2", "3"]  # block 2 from block 1, block 3 from block 0
    once = T * D * H + T * H * D  # up and down: R·K·N each
    assert [r[str(i)].macs for i in range(4)] == [once, 2 * once, 2 * once, once]


class Cached(MLP):
    """Keeps its last output in an attribute (a cache): the call leaves more than its outputs behind."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.last = super().forward(x)
        return self.last


class Writer(MLP):
    """Writes its input in place: a later block's input would not be written."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x.mul_(2)
        return super().forward(x)


class Stash(nn.Module):
    """Keeps a tensor it made alive in a list it was given at construction (shared by the blocks)."""

    def __init__(self, kept: list[torch.Tensor]) -> None:
        super().__init__()
        self.mlp, self.kept = MLP(), kept

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.kept.append(torch.relu(x))
        return self.mlp(x)


@pytest.mark.parametrize("block", [Cached, Writer, lambda: Stash(SHARED)], ids=["cache", "writer", "stash"])
def test_a_block_that_leaves_something_behind_is_run_every_time(block: Any, replicas: list[replay.Replicas],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    SHARED.clear()
    model = nn.Sequential(*(block() for _ in range(4)))
    x = torch.rand(T, D)
    on = flopwise.count(model, x, mode="meta")
    assert all("." in name for name in _folded(replicas))  # never a block (an MLP in one may fold)
    SHARED.clear()
    assert every_figure(on) == every_figure(_unfolded(model, x, "meta", monkeypatch))
    assert on.macs == 4 * (T * D * H + T * H * D)  # four blocks, up and down: R·K·N each


SHARED: list[torch.Tensor] = []


def test_hooks_keep_every_block_running(replicas: list[replay.Replicas]) -> None:
    model = nn.Sequential(*(MLP() for _ in range(4)))
    seen: list[str] = []
    handles = [block.up.register_forward_hook(lambda m, a, o, i=i: seen.append(f"{i}")) for i, block in
               enumerate(model)]
    flopwise.count(model, torch.rand(T, D), mode="meta")
    assert seen == ["0", "1", "2", "3"] and _folded(replicas) == []  # the user's hook saw every block
    for handle in handles:
        handle.remove()
    calls: list[str] = []
    handle = nn.modules.module.register_module_forward_hook(lambda m, a, o: calls.append(type(m).__name__))
    try:
        flopwise.count(model, torch.rand(T, D), mode="meta")
    finally:
        handle.remove()
    assert replicas[-1].folds is None and calls.count("Linear") == 8  # a global hook of the user's: no folds


def test_the_model_is_left_as_found_when_forward_raises(replicas: list[replay.Replicas]) -> None:
    class Failing(MLP):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise ValueError("no")

    model = nn.Sequential(Failing(), Failing())
    with pytest.raises(ValueError, match="no"):
        flopwise.count(model, torch.rand(T, D), mode="meta")
    assert all("forward" not in vars(block) for block in model)


def test_the_memo_kept_across_counts_changes_no_count(replicas: list[replay.Replicas],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    model, x = MLP(), torch.rand(T, D)
    first = flopwise.count(model, x, mode="meta")
    second = flopwise.count(model, x, mode="meta")
    assert replicas[-1].recalled >= 2  # the two Linear calls, made from the first count's entries
    monkeypatch.setattr(replay, "ENABLED", False)
    assert every_figure(first) == every_figure(second) == every_figure(flopwise.count(model, x, mode="meta"))


def test_a_count_with_overrides_calls_its_formula_every_count() -> None:
    calls: list[int] = []

    def formula(result: Any, x: Any) -> flopwise.Work:  # a user's formula that counts its calls
        calls.append(1)
        return flopwise.Work()

    model, x = nn.Sequential(nn.ReLU()), torch.rand(T, D)
    for _ in range(2):
        flopwise.count(model, x, mode="meta", overrides={torch.ops.aten.relu.default: formula})
    assert len(calls) == 2


class Inspecting(nn.Module):
    """Reads a block's forward signature and copies a block in its own forward, as some model code does."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(MLP() for _ in range(3))
        self.signatures: list[str] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.signatures.append(str(inspect.signature(self.blocks[1].forward)))
        spare = copy.deepcopy(self.blocks[2])
        for block in self.blocks:
            x = block(x)
        return spare(x)  # the copy runs its own forward: its own work, not a fold of the original's


def test_a_routed_forward_keeps_its_signature_and_a_copy_runs_its_own() -> None:
    model = Inspecting()
    r = flopwise.count(model, torch.rand(T, D, device="meta"), mode="fake")
    assert model.signatures == [str(inspect.signature(MLP().forward))] == ["(x: 'torch.Tensor') -> 'torch.Tensor'"]
    assert r.macs == 4 * (T * D * H + T * H * D)  # three blocks and the copy, up and down: R·K·N each


class Borrowing(MLP):
    """Calls a module that is not its own (a shared Identity), which runs no op."""

    def __init__(self, shared: nn.Module) -> None:
        super().__init__()
        self.__dict__["shared"] = shared  # not a submodule: named where its owner names it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(self.shared(x))


def test_a_block_that_calls_a_module_of_another_is_run_every_time(replicas: list[replay.Replicas]) -> None:
    owner = nn.Identity()
    model = nn.Sequential(owner, *(Borrowing(owner) for _ in range(4)))
    r = flopwise.count(model, torch.rand(T, D, device="meta"), mode="fake")
    assert _folded(replicas) == []  # no block (and a Linear on rows is two ops: t, addmm; left to replays)
    assert r["0"].calls == 5  # its own call and one from each block


def test_the_memo_is_kept_per_convention(replicas: list[replay.Replicas]) -> None:
    model, x = MLP(), torch.rand(T, D)
    default = flopwise.count(model, x, mode="meta")
    mac = flopwise.count(model, x, mode="meta", convention="mac")  # the same ops: costed again under "mac"
    # 2 per MAC; ReLU and the up bias on T·H; the down bias and the residual add on T·D
    assert default.flops == 2 * (T * D * H + T * H * D) + 2 * T * H + 2 * T * D
    assert mac.flops == mac.macs == T * D * H + T * H * D  # FLOPs = MACs, nothing else counted


class Keeping(nn.Module):
    """A block that keeps its input in a cache it is given (an object, as a KV cache is): never folded itself."""

    def __init__(self) -> None:
        super().__init__()
        self.mlp = MLP()

    def forward(self, x: torch.Tensor, cache: list[torch.Tensor]) -> torch.Tensor:
        cache.append(x)
        return self.mlp(x)


class GivenACache(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(Keeping() for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cache: list[torch.Tensor] = []
        for block in self.blocks:
            x = block(x, cache)
        return x


def test_a_block_that_cannot_fold_still_folds_the_modules_in_it(replicas: list[replay.Replicas],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    model, x = GivenACache(), torch.rand(T, D, device="meta")
    on = flopwise.count(model, x, mode="meta")
    assert _folded(replicas) == ["blocks.1.mlp", "blocks.2.mlp", "blocks.3.mlp"]  # as block 0's
    assert every_figure(on) == every_figure(_unfolded(model, x, "meta", monkeypatch))
    assert on["blocks.3.mlp.up"].calls == 1 and on.macs == 4 * (T * D * H + T * H * D)  # R·K·N, up and down


def test_folds_in_a_run_with_symbolic_sizes_are_exact_at_every_size(replicas: list[replay.Replicas]) -> None:
    model = GivenACache()
    fitted = flopwise.count(model, torch.rand(T, D, device="meta"), mode="meta", symbolic={"rows": 0})
    assert fitted.traced > 0  # the run with symbolic sizes, which folded the MLPs too:
    assert replicas[0].symbolic and _folded(replicas[:1]) == ["blocks.1.mlp", "blocks.2.mlp", "blocks.3.mlp"]
    for rows in (2, 7, 100):  # sizes the fit never used
        direct = flopwise.count(model, torch.rand(rows, D), mode="meta")
        assert fitted.at(rows=rows).macs == direct.macs == 4 * (rows * D * H + rows * H * D)  # R·K·N, up and down
        assert fitted.at(rows=rows).bytes_read == direct.bytes_read
        assert fitted.at(rows=rows).bytes_written == direct.bytes_written
