"""The engine's contract: nothing changed behind the user's back, nothing silently zero, rows sum to totals."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import flopwise
from flopwise.examples import SimpleConv, guide_examples
from tests.models import ConvBNNet, Raises, SharedLinear, seeded


def snapshot(model: nn.Module) -> dict[str, object]:
    module_hooks = {
        name: (
            dict(m._forward_hooks),
            dict(m._forward_pre_hooks),
            dict(m._backward_hooks),
            dict(m._backward_pre_hooks),
            dict(m._state_dict_hooks),
            dict(m._load_state_dict_pre_hooks),
        )
        for name, m in model.named_modules()
    }
    return {
        "state": {k: v.clone() for k, v in model.state_dict().items()},
        "training": {name: m.training for name, m in model.named_modules()},
        "requires_grad": {name: p.requires_grad for name, p in model.named_parameters()},
        "hooks": module_hooks,
        "attributes": {name: sorted(vars(m)) for name, m in model.named_modules()},
        "global_hooks": (
            dict(nn.modules.module._global_forward_hooks),
            dict(nn.modules.module._global_forward_pre_hooks),
            dict(nn.modules.module._global_backward_hooks),
        ),
        "rng": torch.get_rng_state(),
        "grad_enabled": torch.is_grad_enabled(),
    }


def assert_same(before: dict[str, object], after: dict[str, object]) -> None:
    state_before, state_after = before.pop("state"), after.pop("state")
    assert isinstance(state_before, dict) and isinstance(state_after, dict)
    assert list(state_before) == list(state_after)
    for key in state_before:
        assert torch.equal(state_before[key], state_after[key]), key
    rng_before, rng_after = before.pop("rng"), after.pop("rng")
    assert torch.equal(rng_before, rng_after)  # type: ignore[arg-type]
    assert before == after


@pytest.mark.parametrize("mode", ["real", "fake", "meta"])
def test_counting_a_training_model_changes_nothing(mode: str) -> None:
    model = ConvBNNet().train()
    model.fc.weight.requires_grad_(False)
    x = torch.randn(2, 3, 8, 8)
    before = snapshot(model)
    report = flopwise.count(model, x, mode=mode)
    assert report.macs > 0
    assert_same(before, snapshot(model))
    assert report.trainable_params == report.params - model.fc.weight.numel()


def test_a_forward_that_raises_changes_nothing_and_names_the_module() -> None:
    model = Raises().train()
    x = torch.randn(2, 3, 8, 8)
    before = snapshot(model)
    with pytest.raises(RuntimeError) as caught:
        flopwise.count(model, x)
    assert_same(before, snapshot(model))
    notes = "\n".join(getattr(caught.value, "__notes__", []))
    assert "'head' (Linear)" in notes
    assert "2×3×8×8 float32" in notes


def test_model_that_is_not_a_module_is_refused() -> None:
    with pytest.raises(TypeError, match="expects an nn.Module"):
        flopwise.count(lambda x: x, torch.randn(2))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mode must be one of real, fake, meta"):
        flopwise.count(nn.Linear(2, 2), torch.randn(1, 2), mode="fast")
    with pytest.raises(ValueError, match="unknown convention 'flops'"):
        flopwise.count(nn.Linear(2, 2), torch.randn(1, 2), convention="flops")


@pytest.mark.parametrize("example", seeded(guide_examples), ids=lambda e: e.name)
def test_guide_examples(example) -> None:  # type: ignore[no-untyped-def]
    report = flopwise.count(example.model, example.inputs, convention="contractions")
    assert report.macs == example.macs
    assert report.flops == 2 * example.macs  # the guides' totals: 1,030 / 7,952,896 / 5,345,280
    assert {name: report[name].macs for name in example.layers} == example.layers


def test_guide_attention_block_products() -> None:
    example = guide_examples()[2]
    report = flopwise.count(example.model, example.inputs)
    products = [c.cost.macs for c in report.calls if c.op == "aten.bmm"]
    assert products == [1 * 8 * 10 * 10 * 32, 1 * 8 * 10 * 10 * 32]  # QKᵀ and AV: N·heads·L·L·head_dim


@pytest.mark.parametrize("mode", ["real", "fake", "meta"])
def test_modes_agree(mode: str) -> None:
    reference = flopwise.count(SimpleConv(), torch.rand(2, 1, 28, 28))
    report = flopwise.count(SimpleConv(), torch.rand(2, 1, 28, 28), mode=mode)
    assert (report.macs, report.flops, report.bytes_read, report.bytes_written) == (
        reference.macs,
        reference.flops,
        reference.bytes_read,
        reference.bytes_written,
    )
    assert report.macs == 2 * 3_976_448  # batch 2: twice the guide's figure


def test_model_built_on_meta_counts_without_data() -> None:
    with torch.device("meta"):
        model = SimpleConv()
    report = flopwise.count(model, torch.rand(1, 1, 28, 28))
    assert report.macs == 3_976_448
    assert all(p.is_meta for p in model.parameters())


def test_rows_sum_to_the_total() -> None:
    report = flopwise.count(ConvBNNet(), torch.randn(2, 3, 8, 8))
    assert sum((row.self_cost for row in report.by_module()), flopwise.Cost()) == report.total
    depth_one = [row for row in report.by_module(1) if row.depth == 1]
    assert sum((r.cost for r in depth_one), report[""].self_cost) == report.total
    assert sum((c for c in report.by_operator().values()), flopwise.Cost()) == report.total


def test_shared_module_params_once_macs_per_call() -> None:
    report = flopwise.count(SharedLinear(), torch.randn(3, 8))
    assert report.params == 8 * 8 + 8  # one weight, one bias
    assert report.macs == 2 * 3 * 8 * 8  # two calls of B·I·O
    assert report["first"].calls == 2


def test_unknown_op_is_reported_with_where_it_ran() -> None:
    @torch.library.custom_op("flopwise_test::mystery", mutates_args=())
    def mystery(x: torch.Tensor) -> torch.Tensor:
        return x * 2

    @mystery.register_fake
    def _(x: torch.Tensor) -> torch.Tensor:
        return torch.empty_like(x)

    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = nn.Sequential(nn.Linear(4, 4))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner(mystery(x))

    report = flopwise.count(Model(), torch.randn(2, 4))
    assert report.unsupported == {"flopwise_test.mystery": 1}
    assert report.unsupported_where == {"flopwise_test.mystery": {"": 1}}
    assert not report.complete
    assert report.macs == 2 * 4 * 4  # the rest is still counted
    table = str(report)
    assert "INCOMPLETE" in table and "lower bound" in table and "flopwise_test.mystery" in table
    assert report.to_dict()["unsupported"] == {"flopwise_test.mystery": {"calls": 1, "modules": {"": 1}}}

    ignored = flopwise.count(Model(), torch.randn(2, 4), overrides={torch.ops.flopwise_test.mystery: None})
    assert ignored.complete


def test_counting_a_training_step_attributes_backward_to_modules() -> None:
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    x = torch.randn(5, 8)
    with flopwise.counting() as c:
        model(x).sum().backward()
    report = c.report
    forward = 5 * 8 * 16 + 5 * 16 * 4
    # backward: each Linear computes its weight gradient (same MACs as forward); the first Linear needs no
    # input gradient (x does not require grad), the second does
    assert report.macs == forward + (5 * 8 * 16) + 2 * (5 * 16 * 4)
    assert report["Sequential.0"].macs == 2 * 5 * 8 * 16
    assert report["Sequential.2"].macs == 3 * 5 * 16 * 4
    assert report.params == 8 * 16 + 16 + 16 * 4 + 4


def test_counting_without_a_model_and_with_conventions() -> None:
    a, b = torch.randn(3, 4), torch.randn(4, 5)
    reports = {}
    for name in flopwise.CONVENTIONS:
        with flopwise.counting(convention=name) as c:
            torch.relu(a @ b)
        reports[name] = c.report
    macs = 3 * 5 * 4
    assert {r.macs for r in reports.values()} == {macs}
    assert reports["default"].flops == 2 * macs + 3 * 5  # + ReLU, one compare per element
    assert reports["contractions"].flops == 2 * macs
    assert reports["mac"].flops == macs
    assert reports["exact"].flops == (2 * 4 - 1) * 3 * 5 + 3 * 5  # 2k−1 per dot product, + ReLU


def test_report_lookup_errors_name_the_module() -> None:
    report = flopwise.count(SimpleConv(), torch.rand(1, 1, 28, 28))
    with pytest.raises(KeyError, match="no module named 'conv3'"):
        report["conv3"]


def test_report_is_data() -> None:
    report = flopwise.count(SimpleConv(), torch.rand(1, 1, 28, 28))
    data = report.to_dict()
    assert data["schema"] == "flopwise/1"
    assert set(data) >= {"schema", "model", "inputs", "convention", "total", "modules", "operators", "unsupported"}
    assert data["total"]["macs"] == 3_976_448
    assert [m["name"] for m in data["modules"]] == ["", "conv1", "conv2", "fc"]
    assert copy.deepcopy(report).macs == report.macs


def test_inputs_are_described_with_their_shapes() -> None:
    from flopwise.engine.prepare import describe_inputs

    images = [torch.zeros(3, 4, 5), torch.zeros(3, 2, 2)]
    assert describe_inputs((images,), {"scale": 2}) == "[3×4×5 float32, 3×2×2 float32], scale=int"
    assert describe_inputs(([torch.zeros(1)] * 5,), {}) == "[1 float32, 1 float32, 1 float32, … 5 in all]"


def test_report_repr_is_one_line() -> None:
    report = flopwise.count(SimpleConv(), torch.rand(1, 1, 28, 28))
    assert repr(report) == (
        "Report(model='SimpleConv', inputs='1×1×28×28 float32', convention='default', "
        f"macs={3_976_448:,}, flops={report.flops:,}, params={255_690:,}, calls={len(report.calls)})"
    )


class HasUnused(nn.Module):
    """A Linear that runs, one its forward never calls, a container of blocks of which only the first runs."""

    def __init__(self) -> None:
        super().__init__()
        self.used = nn.Linear(4, 3)
        self.unused = nn.Linear(2, 2)
        self.blocks = nn.ModuleList([nn.Sequential(nn.Linear(3, 3), nn.ReLU()) for _ in range(2)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks[0](self.used(x))


@pytest.mark.parametrize("mode", ["real", "fake", "meta"])
def test_uncalled_modules_are_those_whose_forward_never_ran(mode: str) -> None:
    import json

    class OneUnused(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.used = nn.Linear(4, 3)
            self.unused = nn.Linear(2, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.used(x)

    r = flopwise.count(OneUnused(), torch.rand(5, 4), mode=mode)
    assert r.macs == 5 * 4 * 3  # R·K·N of `used` alone
    assert r.uncalled_modules() == ["unused"]
    assert r.to_dict()["uncalled_modules"] == ["unused"]
    assert json.loads(r.to_json())["uncalled_modules"] == ["unused"]
    # a whole block never called is listed with its submodules; the ModuleList holding the blocks has no forward
    # of its own to run (fvcore's warning leaves such containers out too), so it is not listed
    nested = flopwise.count(HasUnused(), torch.rand(5, 4), mode=mode)
    assert nested.macs == 5 * 4 * 3 + 5 * 3 * 3  # used, then blocks.0.0: R·K·N each
    assert nested.uncalled_modules() == ["blocks.1", "blocks.1.0", "blocks.1.1", "unused"]


@pytest.mark.parametrize("mode", ["real", "fake"])
def test_no_uncalled_modules_when_every_module_runs(mode: str) -> None:
    r = flopwise.count(SimpleConv(), torch.rand(1, 1, 28, 28), mode=mode)
    assert [row.name for row in r.by_module()] == ["", "conv1", "conv2", "fc"]  # all three children ran
    assert r.uncalled_modules() == []
    assert r.to_dict()["uncalled_modules"] == []
    shared = flopwise.count(SharedLinear(), torch.rand(2, 8), mode=mode)  # `second` is `first`: one module, run twice
    assert shared["first"].calls == 2 and shared.uncalled_modules() == []


def test_uncalled_modules_of_repeated_blocks_with_shortcuts() -> None:
    # shape-only counts replay a repeated block's ops (or fold it whole): its submodules still count as called
    class Repeats(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.blocks = nn.ModuleList([nn.Sequential(nn.Linear(8, 8), nn.ReLU()) for _ in range(4)])

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            for block in self.blocks[:3]:
                x = block(x)
            return x

    for mode in ("real", "fake", "meta"):
        r = flopwise.count(Repeats(), torch.rand(2, 8), mode=mode)
        assert r.macs == 3 * 2 * 8 * 8, mode  # three blocks ran: R·K·N each
        assert r.uncalled_modules() == ["blocks.3", "blocks.3.0", "blocks.3.1"], mode


def test_uncalled_modules_inside_torchscript_are_not_guessed() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript's deprecation notices
        scripted = torch.jit.script(nn.Sequential(nn.Linear(4, 4), nn.ReLU()))
        r = flopwise.count(scripted, torch.rand(2, 4))
    assert r.macs == 2 * 4 * 4  # R·K·N, all attributed to the scripted root
    assert r["0"].calls == 0  # its submodules ran inside the compiled graph, unseen by module hooks
    assert r.uncalled_modules() == []  # unknown, so not claimed to be uncalled
