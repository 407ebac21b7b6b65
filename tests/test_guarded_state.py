"""count() leaves the model as found when forward writes its own state: in-place writes to parameters and
buffers, `.data` swaps, attributes stored on `self`; what it restores or cannot is said in report.warnings."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

import flopwise
from flopwise.shortcuts import replay


class Writes(nn.Module):
    """A forward that changes its own state in every way we know of."""

    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how
        self.w = nn.Parameter(torch.ones(4))
        self.register_buffer("b", torch.zeros(4))
        self.steps = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            if self.how == "add_":
                self.w.add_(1)
            elif self.how == "view":
                self.w[1:3].zero_()  # a view of the parameter
            elif self.how == "out=":
                torch.mul(self.b, 2, out=self.b)
                self.b.add_(x.sum())
            elif self.how == "data":
                self.w.data.fill_(7)  # `.data` aliases the parameter's storage: an in-place write all the same
            elif self.how == "swap":
                self.w.data = torch.full((4,), 3.0)  # new storage under the parameter
            elif self.how == "attributes":
                self.cache = x * 2  # a fake or meta tensor in those modes
                self.steps += 1
                self.b = self.b + 1  # replaces the registered buffer
            elif self.how == "raise":
                self.w.mul_(0)
                raise ValueError("forward failed after writing")
        return x * self.w


def state(model: nn.Module) -> dict[str, Any]:
    return {
        "tensors": {k: v.clone() for k, v in model.state_dict().items()},
        "versions": {k: v._version for k, v in model.state_dict(keep_vars=True).items()},
        "pointers": {k: v.data_ptr() for k, v in model.state_dict(keep_vars=True).items()},
        "attributes": {k: v for k, v in vars(model).items() if k not in ("_parameters", "_buffers", "_modules")},
        "buffers": dict(model._buffers),
    }


def assert_as_found(before: dict[str, Any], model: nn.Module) -> None:
    after = state(model)
    assert before["tensors"].keys() == after["tensors"].keys()
    for key, value in before["tensors"].items():
        assert type(after["tensors"][key]) is torch.Tensor and torch.equal(value, after["tensors"][key]), key
    assert before["versions"] == after["versions"]
    assert before["pointers"] == after["pointers"]
    assert before["attributes"].keys() == after["attributes"].keys()
    assert all(after["attributes"][k] is v for k, v in before["attributes"].items())
    assert all(after["buffers"][k] is v for k, v in before["buffers"].items())


@pytest.mark.parametrize("how", ["add_", "view", "out=", "data"])
def test_in_place_writes_to_parameters_and_buffers_are_undone_silently(how: str) -> None:
    model = Writes(how)
    before = state(model)
    r = flopwise.count(model, torch.ones(4))
    assert_as_found(before, model)
    assert r.warnings == []
    assert r.by_operator()["aten.mul"].flops >= 4  # x · w: 1 FLOP per element — the forward did run


def test_a_swapped_data_is_put_back_with_a_warning() -> None:
    model = Writes("swap")
    before = state(model)
    r = flopwise.count(model, torch.ones(4))
    assert_as_found(before, model)
    assert r.warnings == ["forward replaced the data of 'w' (`.data = …`); restored"]
    assert "warnings:" in str(r) and r.to_dict()["warnings"] == r.warnings


@pytest.mark.parametrize("mode", ["real", "fake", "meta"])
def test_attributes_set_by_forward_are_put_back(mode: str) -> None:
    model = Writes("attributes")
    before = state(model)
    r = flopwise.count(model, torch.ones(4), mode=mode)
    assert_as_found(before, model)
    assert not hasattr(model, "cache")  # no fake or meta tensor left on the model
    assert model.steps == 0
    assert sorted(r.warnings) == sorted(
        [
            "forward set attribute 'cache' of module '(root)' during the count; restored",
            "forward set attribute 'steps' of module '(root)' during the count; restored",
            "forward replaced a buffer of '(root)'; restored",
        ]
        if mode == "real"
        else [  # in fake and meta mode functional_call itself puts the buffer back
            "forward set attribute 'cache' of module '(root)' during the count; restored",
            "forward set attribute 'steps' of module '(root)' during the count; restored",
        ]
    )


def test_state_is_restored_when_forward_raises() -> None:
    model = Writes("raise")
    before = state(model)
    with pytest.raises(ValueError, match="forward failed after writing"):
        flopwise.count(model, torch.ones(4))
    assert_as_found(before, model)


def test_a_shared_parameter_written_through_one_owner() -> None:
    inner = Writes("add_")
    model = nn.Sequential(inner, inner)  # the same module twice: one tensor, written twice, restored once
    before = state(model)
    flopwise.count(model, torch.ones(4))
    assert_as_found(before, model)


class CachesBiases(nn.Module):
    """timm's LeViT / TinyViT attention in eval: gathers its biases once and keeps them in a dict on the module."""

    def __init__(self) -> None:
        super().__init__()
        self.biases = nn.Parameter(torch.randn(4, 3))
        self.index = [[0, 1, 2], [2, 1, 0], [0, 0, 1]]
        self.cache: dict[str, torch.Tensor] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if "cpu" not in self.cache:
            self.cache["cpu"] = self.biases[:, self.index]  # 4×3×3 gathered: 36 floats read, 36 written
        return x + self.cache["cpu"]


@pytest.mark.parametrize("mode", ["real", "fake", "meta"])
def test_a_dict_filled_in_place_is_emptied_again_so_every_count_gathers(mode: str) -> None:
    model, x = CachesBiases(), torch.randn(4, 3, 3)
    replay.forget()  # the first count starts from empty caches (flopwise's memo, torch's fake kernels' outputs)
    first, second = (flopwise.count(model, x, mode=mode) for _ in range(2))
    assert model.cache == {}  # as found: no real, fake or meta tensor stays behind
    assert first.bytes_read == second.bytes_read  # the second count gathers again, as the first did
    assert "aten.index" in second.by_operator()
    assert first.flops == 4 * 3 * 3  # the add; the gather is no arithmetic
    assert any("forward wrote into the dict 'cache' of module '(root)'" in w for w in first.warnings)


class WritesUnseen(nn.Module):
    """Writes its parameter with the dispatch modes switched off, as a raw kernel below the dispatcher would."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from torch.utils._python_dispatch import _disable_current_modes

        with torch.no_grad(), _disable_current_modes():
            self.w.add_(1)  # the version counter moves; the counting mode never sees the op
        return x * self.w


def test_a_write_the_mode_cannot_see_is_named_not_hidden() -> None:
    model = WritesUnseen()
    r = flopwise.count(model, torch.ones(4))
    assert r.warnings == ["'w' was written during the count where flopwise could not see it; not restored"]
    assert torch.equal(model.w.detach(), torch.full((4,), 2.0))  # 1 + 1: left as written, and said so
    assert "warnings:" in str(r)
