"""Training steps split by phase: forward, backward, optimizer, recompute (count(step="train"), counting(step=...))."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint
from torch.utils.flop_counter import FlopCounterMode

import flopwise
from flopwise.core.cost import ZERO
from flopwise.formulas.registry import lookup

N, K1, M1, M2 = 5, 4, 8, 3  # rows; Linear(K1→M1) → ReLU → Linear(M1→M2), no bias
PARAMS = K1 * M1 + M1 * M2  # 56 weight elements in two tensors


def stack() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(K1, M1, bias=False), nn.ReLU(), nn.Linear(M1, M2, bias=False))


def phase_macs(report: flopwise.Report) -> dict[str, int]:
    return {phase: cost.macs for phase, cost in report.phases.items()}


def assert_phases_sum(report: flopwise.Report) -> None:
    for row in report.by_module():
        total = sum(row.phases.values(), ZERO)
        assert total == row.cost, row.name
    assert sum(report.phases.values(), ZERO) == report.total


@pytest.mark.parametrize("mode", ["real", "fake", "meta"])
def test_linear_stack_phases_by_hand(mode: str) -> None:
    model = stack()
    report = flopwise.count(model, torch.randn(N, K1), step="train", mode=mode)
    forward = N * K1 * M1 + N * M1 * M2  # Σ N·K·M = 160 + 120
    # backward: a weight gradient per layer (N·K·M each) and an input gradient per layer except the first
    # (x does not require grad): 2·Σ N·K·M − N·K1·M1
    backward = 2 * forward - N * K1 * M1
    assert phase_macs(report) == {"forward": forward, "backward": backward, "optimizer": 0, "recompute": 0}
    assert report["0"].phases["backward"].macs == N * K1 * M1  # weight gradient only
    assert report["2"].phases["backward"].macs == 2 * N * M1 * M2  # weight and input gradients
    # FLOPs: 2 per MAC; forward adds ReLU (1 per element) and the stand-in loss, sum (N·M2 − 1 adds);
    # backward adds the ReLU gradient (threshold_backward: 1 per element)
    assert report.phases["forward"].flops == 2 * forward + N * M1 + (N * M2 - 1)
    assert report.phases["backward"].flops == 2 * backward + N * M1
    assert_phases_sum(report)


def test_train_step_leaves_model_and_optimizer_as_found() -> None:
    model = stack()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    model(torch.randn(N, K1)).sum().backward()
    optimizer.step()  # the optimizer has state
    grads = [p.grad.clone() for p in model.parameters()]
    state = {k: v.clone() for k, v in model.state_dict().items()}
    moments = [optimizer.state[p]["exp_avg"].clone() for p in model.parameters()]
    steps = [optimizer.state[p]["step"].clone() for p in model.parameters()]
    flopwise.count(model, torch.randn(N, K1), step="train", optimizer=optimizer)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert all(torch.equal(g, p.grad) for g, p in zip(grads, model.parameters()))
    assert all(torch.equal(m, optimizer.state[p]["exp_avg"]) for m, p in zip(moments, model.parameters()))
    assert all(torch.equal(s, optimizer.state[p]["step"]) for s, p in zip(steps, model.parameters()))


# Optimizer FLOPs per parameter element, as torch's single-tensor (for-loop) implementations compute them:
#   Adam: m.lerp_(g, 1−β1) 3 · v.mul_(β2) 1 · v.addcmul_(g, g, value=1−β2) 3 · sqrt 1 · ÷ bias correction 1 · + ε 1
#         · p.addcdiv_(m, denom, value=−lr/c1) 3 = 13; plus the step counter, one add per parameter tensor.
#   AdamW: Adam + the decoupled decay p.mul_(1 − lr·λ) 1 = 14.
#   SGD: p.add_(g, alpha=−lr) 2; with momentum (steady state) b.mul_(μ) 1 · b.add_(g) 1 · p.add_(b, alpha=−lr) 2 = 4.
OPTIMIZERS = {
    "adam": (lambda ps: torch.optim.Adam(ps, foreach=False), 13 * PARAMS + 2),
    "adamw": (lambda ps: torch.optim.AdamW(ps, foreach=False, weight_decay=0.1), 14 * PARAMS + 2),
    "sgd": (lambda ps: torch.optim.SGD(ps, lr=0.1, foreach=False), 2 * PARAMS),
    "sgd-momentum": (lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, foreach=False), 4 * PARAMS),
}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizer_flops_per_parameter(name: str) -> None:
    model = stack()
    build, flops = OPTIMIZERS[name]
    report = flopwise.count(model, torch.randn(N, K1), step="train", optimizer=build(model.parameters()))
    assert report.phases["optimizer"].flops == flops
    assert report.phases["optimizer"].macs == 0
    assert report.complete
    assert_phases_sum(report)


@pytest.mark.skipif(lookup("aten._fused_adam") is False, reason="foreach/fused formulas live in ops/foreach.py")
@pytest.mark.parametrize("variant", ["foreach", "fused"])
def test_foreach_and_fused_adam_count_the_same_update(variant: str) -> None:
    model = stack()
    optimizer = torch.optim.Adam(model.parameters(), **{variant: True})
    report = flopwise.count(model, torch.randn(N, K1), step="train", optimizer=optimizer)
    assert report.complete
    # 13 per element as above (one _foreach_* op per line of the update, or one _fused_adam_); the step
    # counters are one _foreach_add_ over the two tensors (2 FLOPs)
    assert report.phases["optimizer"].flops == 13 * PARAMS + 2


class Checkpointed(nn.Module):
    def __init__(self, reentrant: bool) -> None:
        super().__init__()
        self.block = stack()
        self.reentrant = reentrant

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = checkpoint(self.block, x, use_reentrant=self.reentrant)
        return out


def test_checkpoint_recompute_is_its_own_phase() -> None:
    forward = N * K1 * M1 + N * M1 * M2
    # non-reentrant checkpointing stops recomputing once the saved tensors backward needs are back: the first
    # Linear (its ReLU output feeds the second Linear's weight gradient), not the second
    report = flopwise.count(Checkpointed(False), torch.randn(N, K1), step="train")
    assert phase_macs(report) == {
        "forward": forward,
        "backward": 2 * forward - N * K1 * M1,
        "optimizer": 0,
        "recompute": N * K1 * M1,
    }
    # reentrant checkpointing reruns the whole block; x requires grad, so the first input gradient is computed
    x = torch.randn(N, K1, requires_grad=True)
    report = flopwise.count(Checkpointed(True), x, step="train")
    assert phase_macs(report) == {"forward": forward, "backward": 2 * forward, "optimizer": 0, "recompute": forward}
    assert_phases_sum(report)


def test_counting_a_user_loop_by_phase() -> None:
    model = stack()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(N, K1)
    with flopwise.counting(step="train", model=model) as c:
        model(x).sum().backward()
        optimizer.step()
        optimizer.zero_grad()
    forward = N * K1 * M1 + N * M1 * M2
    assert phase_macs(c.report) == {
        "forward": forward,
        "backward": 2 * forward - N * K1 * M1,
        "optimizer": 0,
        "recompute": 0,
    }
    assert c.report.phases["optimizer"].flops == 2 * PARAMS  # p.add_(g, alpha=−lr): a multiply and an add
    assert_phases_sum(c.report)


def test_frozen_layer_savings() -> None:
    model = stack()
    model[0].weight.requires_grad_(False)
    report = flopwise.count(model, torch.randn(N, K1), step="train")
    # backward computes only the second layer's weight gradient: no input gradient, since nothing below needs it
    assert report.phases["backward"].macs == N * M1 * M2
    # it skipped the frozen weight gradient (N·K1·M1) and the input gradient that only it needed (N·M1·M2)
    assert report.frozen_savings is not None
    assert report.frozen_savings.macs == N * K1 * M1 + N * M1 * M2
    assert "backward skipped 280 MACs" in str(report)
    assert report.to_dict()["frozen_savings"]["macs"] == 280
    assert model[0].weight.requires_grad is False  # left as found
    assert flopwise.count(stack(), torch.randn(N, K1), step="train").frozen_savings is None


def test_lora_adapters_skip_the_base_weight_gradients() -> None:
    peft = pytest.importorskip("peft")

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1 = nn.Linear(K1, M1, bias=False)
            self.fc2 = nn.Linear(M1, M2, bias=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc2(torch.relu(self.fc1(x)))

    r = 2
    model = peft.get_peft_model(Net(), peft.LoraConfig(r=r, target_modules=["fc1", "fc2"], lora_dropout=0.0))
    report = flopwise.count(model, torch.randn(N, K1), step="train")
    base = N * K1 * M1 + N * M1 * M2
    adapters = N * K1 * r + N * r * M1 + N * M1 * r + N * r * M2  # A then B for each layer
    assert report.phases["forward"].macs == base + adapters
    # backward: the base weights are frozen: no gradient for them. Computed: each adapter's weight gradients
    # (the same products as its forward), the gradient into each A's output (through B: N·M·r per layer), and
    # fc2's input gradient, needed to reach fc1's adapter (N·M2·M1 through the base, N·r·M1 through A2)
    into_a = N * M1 * r + N * M2 * r
    fc2_input = N * M2 * M1 + N * r * M1
    assert report.phases["backward"].macs == adapters + into_a + fc2_input  # 230 + 110 + 200
    # what freezing saved: the base layers' weight gradients
    assert report.frozen_savings is not None and report.frozen_savings.macs == base
    assert_phases_sum(report)


def test_train_step_errors_say_what_to_do() -> None:
    with pytest.raises(ValueError, match="step must be 'forward' or one of train"):
        flopwise.count(stack(), torch.randn(N, K1), step="eval")
    with pytest.raises(ValueError, match="pass step='train'"):
        flopwise.count(stack(), torch.randn(N, K1), optimizer=torch.optim.SGD(stack().parameters(), lr=0.1))
    foreign = torch.optim.SGD(stack().parameters(), lr=0.1)
    with pytest.raises(ValueError, match="not the model's"):
        flopwise.count(stack(), torch.randn(N, K1), step="train", optimizer=foreign)


def flop_counter_macs(step: object) -> int:
    with FlopCounterMode(display=False) as counter:
        step()  # type: ignore[operator]
    return counter.get_total_flops() // 2


def test_resnet18_train_step_phases_sum_to_flop_counter_mode() -> None:
    torchvision = pytest.importorskip("torchvision")
    model = torchvision.models.resnet18()
    x = torch.randn(2, 3, 64, 64)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    report = flopwise.count(model, x, step="train", optimizer=optimizer, mode="fake", convention="contractions")
    macs = sum(cost.macs for cost in report.phases.values())
    assert macs == report.macs == 872_079_360  # the figure the issue quotes for this step
    assert report.phases["backward"].macs == 2 * report.phases["forward"].macs - 2 * 32 * 32 * 7 * 7 * 3 * 64
    # …minus conv1's input gradient (N·H_out·W_out·K·K·C_in·C_out): the image needs none

    def step() -> None:
        model(x).sum().backward()
        optimizer.step()

    assert flop_counter_macs(step) == macs
    assert sum(cost.flops for cost in report.phases.values()) == 2 * macs  # contractions: FLOPs = 2·MACs


def test_gpt2_train_step_phases_sum_to_flop_counter_mode() -> None:
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(n_layer=2, n_embd=64, n_head=4, vocab_size=500, n_positions=32)
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(config).eval()
    model.config._attn_implementation = "eager"  # FlopCounterMode counts CPU flash attention as 0
    ids = torch.randint(0, 500, (2, 32))
    optimizer = torch.optim.AdamW(model.parameters(), foreach=False)
    inputs = {"input_ids": ids, "labels": ids}
    report = flopwise.count(model, inputs, step="train", optimizer=optimizer, convention="contractions")
    macs = sum(cost.macs for cost in report.phases.values())
    assert macs == report.macs
    tokens, d, layers, vocab, t = 2 * 32, 64, 2, 500, 32
    # forward by hand: per layer QKV 3d², out d², MLP 8d² per token, QKᵀ and AV t·d per token; the LM head d·V
    forward = tokens * (layers * (12 * d * d + 2 * t * d) + d * vocab)
    assert report.phases["forward"].macs == forward
    assert flop_counter_macs(lambda: (model(**inputs).loss.backward(), optimizer.step())) == macs
    assert_phases_sum(report)


def test_cli_step_train(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from flopwise.cli import main

    path = tmp_path / "stack.py"
    path.write_text(
        "import torch\nfrom torch import nn\n"
        f"def build():\n    return nn.Sequential(nn.Linear({K1}, {M1}, bias=False), nn.ReLU(), "
        f"nn.Linear({M1}, {M2}, bias=False)), torch.randn({N}, {K1})\n"
    )
    assert main([f"{path}:build", "--step", "train", "--format", "json", "-q"]) == 0
    doc = json.loads(capsys.readouterr().out)
    forward = N * K1 * M1 + N * M1 * M2
    assert doc["phases"]["forward"]["macs"] == forward
    assert doc["phases"]["backward"]["macs"] == 2 * forward - N * K1 * M1
    assert doc["total"]["macs"] == 3 * forward - N * K1 * M1
    assert main([f"{path}:build", "--step", "train", "-q"]) == 0
    assert "phases: forward 280 MACs" in capsys.readouterr().out


def test_a_closure_inside_optimizer_step_keeps_its_forward_and_backward() -> None:
    model = stack()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(N, K1)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = model(x).sum()
        loss.backward()
        return loss

    with flopwise.counting(step="train", model=model) as c:
        optimizer.step(closure)  # Lightning and LBFGS run forward and backward inside Optimizer.step
    forward = N * K1 * M1 + N * M1 * M2
    assert phase_macs(c.report) == {
        "forward": forward,
        "backward": 2 * forward - N * K1 * M1,
        "optimizer": 0,
        "recompute": 0,
    }
    # the loss (outside any module) runs inside the step: N·M2 − 1 adds counted with the optimizer, beside
    # the update p − lr·g (2 per parameter element)
    assert c.report.phases["optimizer"].flops == (N * M2 - 1) + 2 * PARAMS
