"""count() on TorchScript modules (traced and scripted): run as found, exact, state left as found."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import flopwise

pytestmark = [  # torch.jit is deprecated, and tracing batch norm warns about a data-dependent check
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning"),
]


class Small(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 4)
        self.bn = nn.BatchNorm1d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn(self.fc(x)))


def compiled(kind: str) -> torch.jit.ScriptModule:
    torch.manual_seed(0)
    model = Small().train()  # training: batch norm updates its running statistics and num_batches_tracked
    return torch.jit.trace(model, torch.randn(3, 8)) if kind == "trace" else torch.jit.script(model)


@pytest.mark.parametrize("kind", ["trace", "script"])
@pytest.mark.parametrize("mode", ["real", "fake"])
def test_torchscript_counts_exactly_and_leaves_its_state(kind: str, mode: str) -> None:
    model = compiled(kind)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    r = flopwise.count(model, torch.randn(3, 8), mode=mode)
    assert r.macs == 3 * 8 * 4  # N·in·out of the Linear
    assert r.complete and not r.warnings
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # running stats and num_batches_tracked
    assert all(type(v) is torch.Tensor for v in after.values())  # no fake tensor left behind


def test_torchscript_matches_the_eager_count() -> None:
    torch.manual_seed(0)
    eager = Small().eval()
    x = torch.randn(3, 8)
    scripted = torch.jit.script(eager)
    assert flopwise.count(scripted, x).flops == flopwise.count(eager, x).flops


def test_torchscript_on_meta_is_counted_on_fake_tensors_with_a_warning() -> None:
    r = flopwise.count(compiled("script"), torch.randn(3, 8), mode="meta")
    assert r.macs == 3 * 8 * 4
    assert r.warnings == ["a TorchScript module cannot move to the meta device: counted on fake tensors instead"]
