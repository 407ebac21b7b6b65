"""Shortcuts never change a count: on forwards built to break them (Python state read outside a block, torch's
global state switched per block, formulas replaced between counts, several threads), a shape-only count with its
shortcuts equals the plain one (`shortcuts=False`) in every figure, and the hand count. Only the public API is
used to compare; generated stacks of blocks (hypothesis) vary all of it at once."""

from __future__ import annotations

import threading
import types
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

import flopwise

T, D = 8, 32  # tokens, width
MM = T * D * D  # one (T, D) @ (D, D) product: M·K·N


def figures(r: flopwise.Report) -> tuple[Any, ...]:
    """Every figure a report gives, through the public API: totals, rows and operators (to_dict), each op call,
    the split by dtype, effective MACs overall and per module, activation and weight memory, warnings."""
    rows = tuple((name, r[name].macs, r[name].flops, r[name].effective_macs) for name in r.modules)
    return (
        r.to_dict(),
        r.calls,
        r.by_dtype(),
        r.effective_macs,
        rows,
        r.peak_activation_bytes,
        r.param_bytes,
        r.warnings,
    )


def same_in_every_mode(model: nn.Module, x: Any) -> flopwise.Report:
    """The count with shortcuts equals the plain count in every figure, in fake and in meta mode, and equals a
    real count in MACs and FLOPs; returns the fake count."""
    counts = {}
    for mode in ("fake", "meta"):
        on = flopwise.count(model, x, mode=mode)
        off = flopwise.count(model, x, mode=mode, shortcuts=False)
        assert off.shortcuts.calls == 0
        assert figures(on) == figures(off), mode
        counts[mode] = on
    real = flopwise.count(model, x)
    assert (counts["fake"].macs, counts["fake"].flops) == (real.macs, real.flops)
    return counts["fake"]


class Square(nn.Module):
    """x @ W, `times` times over; `times` comes from wherever the test says (the block keeps no count of its own)."""

    def __init__(self, times: Any) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(D, D))
        self.times = times

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(self.times()):
            x = x @ self.w
        return x


class Stack(nn.Module):
    def __init__(self, blocks: list[nn.Module], before: Any = None) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.before = before  # called with the block's index before each block runs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, block in enumerate(self.blocks):
            if self.before is not None:
                self.before(i)
            x = block(x)
        return x


CALLS = [0]  # a module-global call counter, as some model code keeps one


def _global_counter() -> int:
    CALLS[0] += 1
    return 2 if CALLS[0] % 2 == 0 else 1  # one product on odd calls, two on even ones


def test_a_global_counter_choosing_the_work_is_followed() -> None:
    model = Stack(
        [Square(_global_counter) for _ in range(3)], before=lambda i: CALLS.__setitem__(0, 0) if i == 0 else None
    )
    r = same_in_every_mode(model, torch.rand(T, D))
    assert r.macs == (1 + 2 + 1) * MM  # calls 1, 2, 3: one, two, one product


def test_a_closure_counter_choosing_the_work_is_followed() -> None:
    seen = 0

    def times() -> int:
        nonlocal seen
        seen += 1
        return 2 if seen == 2 else 1  # the second call of the count applies the product twice

    def reset(i: int) -> None:
        nonlocal seen
        seen = 0 if i == 0 else seen

    model = Stack([Square(times) for _ in range(3)], before=reset)
    r = same_in_every_mode(model, torch.rand(T, D))
    assert r.macs == (1 + 2 + 1) * MM


def test_a_namespace_shared_by_the_blocks_and_set_by_the_parent_is_followed() -> None:
    context = types.SimpleNamespace(repeats=1)
    model = Stack(
        [Square(lambda: context.repeats) for _ in range(3)], before=lambda i: setattr(context, "repeats", i + 1)
    )
    r = same_in_every_mode(model, torch.rand(T, D))
    assert r.macs == (1 + 2 + 3) * MM  # block i applies its product i + 1 times


class Schedule:
    """Tells block i how often to apply its layer: i + 1 times."""

    def __init__(self) -> None:
        self.current = 0

    def times(self) -> int:
        return self.current + 1


def test_a_schedule_object_telling_each_block_its_repeats_is_followed() -> None:
    schedule = Schedule()
    model = Stack([Square(schedule.times) for _ in range(4)], before=lambda i: setattr(schedule, "current", i))
    r = same_in_every_mode(model, torch.rand(T, D))
    assert r.macs == (1 + 2 + 3 + 4) * MM
    assert [r[f"blocks.{i}"].macs for i in range(4)] == [1 * MM, 2 * MM, 3 * MM, 4 * MM]


class Switched(nn.Module):
    """Blocks of one structure, each run under a global state the parent switches per block."""

    def __init__(self, blocks: list[nn.Module], state: Any) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.state = state  # index → context manager

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, block in enumerate(self.blocks):
            with self.state(i):
                x = block(x).float()
        return x


def test_autocast_on_odd_blocks_counts_their_products_in_bfloat16() -> None:
    model = Switched(
        [nn.Linear(D, D) for _ in range(4)], lambda i: torch.autocast("cpu", dtype=torch.bfloat16, enabled=i % 2 == 1)
    )
    r = same_in_every_mode(model, torch.rand(T, D))
    split = r.by_dtype()
    assert split["float32"].macs == 2 * MM  # blocks 0 and 2: T·D·D each
    assert split["bfloat16"].macs == 2 * MM  # blocks 1 and 3, cast by autocast


class Attend(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = x.view(1, 2, T, D // 2)  # 2 heads of width 16
        return F.scaled_dot_product_attention(q, q, q).reshape(T, D)


def test_the_math_attention_backend_on_odd_blocks_is_followed() -> None:
    def backend(i: int) -> Any:
        return sdpa_kernel(SDPBackend.MATH) if i % 2 else sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.MATH])

    model = Switched([Attend() for _ in range(4)], backend)
    r = same_in_every_mode(model, torch.rand(T, D))
    assert r.macs == 4 * 2 * (T * T * 16 + T * T * 16)  # 4 blocks, 2 heads: QKᵀ and PV, L·S·E each
    ops = {call.op for call in r.calls}
    assert "aten._scaled_dot_product_flash_attention_for_cpu" in ops  # even blocks: the fused CPU kernel
    assert "aten._safe_softmax" in ops and "aten.bmm" in ops  # odd blocks: the math path, op by op


def test_grad_mode_switched_per_encoder_layer_takes_the_path_a_real_run_takes() -> None:
    layers = [
        nn.TransformerEncoderLayer(D, 2, dim_feedforward=64, batch_first=True, dropout=0.0).eval() for _ in range(4)
    ]
    model = Switched(layers, lambda i: torch.set_grad_enabled(i % 2 == 0))
    r = same_in_every_mode(model, torch.rand(1, T, D))
    fused = sum(call.op == "aten._transformer_encoder_layer_fwd" for call in r.calls)
    assert fused == 2  # the fast path only where grad is off (blocks 1 and 3), as in a real run


class Factory(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.ones(D).sum()  # no dtype given: the default one


def test_the_default_dtype_switched_per_block_is_followed() -> None:
    def default(i: int) -> Any:
        dtype = torch.float64 if i % 2 else torch.float32
        return _default_dtype(dtype)

    model = Switched([Factory() for _ in range(4)], default)
    r = same_in_every_mode(model, torch.rand(T, D))
    ones = [call.dtype for call in r.calls if call.op == "aten.ones"]
    assert ones == ["float32", "float64", "float32", "float64"]


class _default_dtype:  # noqa: N801 - used as a context manager, like torch's own lower-case ones
    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype, self.previous = dtype, torch.get_default_dtype()

    def __enter__(self) -> None:
        self.previous = torch.get_default_dtype()
        torch.set_default_dtype(self.dtype)

    def __exit__(self, *raised: object) -> None:
        torch.set_default_dtype(self.previous)


class Counted(nn.Module):
    """Reads a value computed from its input alone (`arange`, `.item()`) to choose how often to apply its layer."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(D, D)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        times = int((torch.arange(keep.shape[0]) < keep).sum().item())  # known from the input: no weights read
        for _ in range(times):
            x = self.fc(x)
        return x


class CountedStack(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(Counted() for _ in range(3))

    def forward(self, x: torch.Tensor, keeps: torch.Tensor) -> torch.Tensor:
        for block, keep in zip(self.blocks, keeps, strict=True):
            x = block(x, keep)
        return x


def test_values_followed_from_the_inputs_choose_the_work_per_block() -> None:
    keeps = torch.tensor([[1, 0, 0, 0], [3, 3, 3, 0], [2, 2, 0, 0]])  # arange(4) < keep: 1, then 3, then 2 entries
    r = same_in_every_mode(CountedStack(), (torch.rand(T, D), keeps))
    assert r.macs == (1 + 3 + 2) * MM  # the Linear T·D·D, applied 1, 3 and 2 times
    assert not any("real mode" in w for w in r.warnings)  # answered from the inputs, not by a real run


def test_a_formula_replaced_between_counts_is_the_one_used() -> None:
    model, x = nn.Sequential(nn.Linear(D, D), nn.ReLU()), torch.rand(T, D)
    before = flopwise.count(model, x, mode="fake")  # the memo now holds relu's record
    original = flopwise.formula  # the registry's own decorator, replacing aten.relu's formula for this test
    from flopwise.formulas.registry import FORMULAS

    kept = FORMULAS["aten.relu"]

    def seven_per_element(result: Any, x: Any) -> flopwise.Work:
        return flopwise.Work(flops=(flopwise.Flops("activation", flopwise.Term("7·n", n=x.numel())),))

    try:
        original(torch.ops.aten.relu, replace=True)(seven_per_element)
        after = flopwise.count(model, x, mode="fake")
        assert after.flops - before.flops == (7 - 1) * T * D  # ReLU: 7 per element now, 1 before
        assert figures(after) == figures(flopwise.count(model, x, mode="fake", shortcuts=False))
    finally:
        original(torch.ops.aten.relu, replace=True)(kept)
    assert flopwise.count(model, x, mode="fake").flops == before.flops


LIBRARY = torch.library.Library("flopwise_shortcuts_test", "DEF")  # an op no formula knows, for the test below
LIBRARY.define("scale(Tensor x) -> Tensor")
LIBRARY.impl("scale", lambda x: x * 2, "CompositeExplicitAutograd")
LIBRARY.impl("scale", lambda x: torch.empty_like(x), "Meta")


def test_a_zero_cost_declaration_between_counts_is_the_one_used() -> None:
    class Scale(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.ops.flopwise_shortcuts_test.scale(x)

    model, x = nn.Sequential(Scale(), Scale()), torch.rand(T, D)
    before = flopwise.count(model, x, mode="fake")
    assert before.unsupported == {"flopwise_shortcuts_test.scale": 2}
    from flopwise.formulas.registry import ZERO_COST

    flopwise.zero_cost("a test op declared free", [torch.ops.flopwise_shortcuts_test.scale])
    try:
        after = flopwise.count(model, x, mode="fake")
        assert after.unsupported == {}  # not the memo's unsupported record
        assert figures(after) == figures(flopwise.count(model, x, mode="fake", shortcuts=False))
    finally:
        ZERO_COST.pop("flopwise_shortcuts_test.scale")  # leave the registry as the cost-table test expects
    assert flopwise.count(model, x, mode="fake").unsupported == {"flopwise_shortcuts_test.scale": 2}


def test_a_count_with_overrides_calls_its_formula_every_count() -> None:
    calls: list[int] = []

    def formula(result: Any, x: Any) -> flopwise.Work:  # a user's formula that counts its calls
        calls.append(1)
        return flopwise.Work()

    model, x = nn.Sequential(nn.ReLU()), torch.rand(T, D)
    for _ in range(2):
        flopwise.count(model, x, mode="meta", overrides={torch.ops.aten.relu.default: formula})
    assert len(calls) == 2


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.up, self.down = nn.Linear(D, 2 * D), nn.Linear(2 * D, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.down(torch.relu(self.up(x)))


def test_the_memo_kept_across_counts_changes_no_count() -> None:
    model, x = MLP(), torch.rand(T, D)
    first = flopwise.count(model, x, mode="meta")
    second = flopwise.count(model, x, mode="meta")
    assert second.shortcuts.memo >= 2  # the two Linear calls at least, made from the first count's records
    assert figures(first) == figures(second) == figures(flopwise.count(model, x, mode="meta", shortcuts=False))


def test_the_memo_is_kept_per_convention() -> None:
    model, x = MLP(), torch.rand(T, D)
    default = flopwise.count(model, x, mode="meta")
    mac = flopwise.count(model, x, mode="meta", convention="mac")  # the same ops: costed again under "mac"
    # 2 per MAC; ReLU and the up bias on T·2D; the down bias and the residual add on T·D
    assert default.flops == 2 * (T * D * 2 * D + T * 2 * D * D) + 2 * T * 2 * D + 2 * T * D
    assert mac.flops == mac.macs == T * D * 2 * D + T * 2 * D * D  # FLOPs = MACs, nothing else counted


def test_hooks_of_the_user_see_every_block() -> None:
    model = nn.Sequential(*(MLP() for _ in range(4)))
    seen: list[int] = []
    handles = [block.up.register_forward_hook(lambda m, a, o, i=i: seen.append(i)) for i, block in enumerate(model)]
    try:
        r = flopwise.count(model, torch.rand(T, D), mode="meta")
    finally:
        for handle in handles:
            handle.remove()
    assert seen == [0, 1, 2, 3] and r.shortcuts.replayed > 0  # replayed blocks still run their Python and hooks


def test_counts_from_several_threads_at_once_are_each_right() -> None:
    transformers = pytest.importorskip("transformers")
    config = transformers.LlamaConfig(
        vocab_size=100,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        attn_implementation="sdpa",
    )
    model = transformers.LlamaForCausalLM(config).eval()
    ids = torch.randint(0, 100, (1, 12))
    expected = {mode: figures(flopwise.count(model, {"input_ids": ids}, mode=mode)) for mode in ("real", "fake")}
    results: list[tuple[str, Any]] = []
    errors: list[BaseException] = []

    def work(mode: str) -> None:
        try:
            for _ in range(3):
                results.append((mode, figures(flopwise.count(model, {"input_ids": ids}, mode=mode))))
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=work, args=(mode,)) for mode in ("real", "fake", "fake", "real")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(results) == 12
    assert all(got == expected[mode] for mode, got in results)
    assert expected["fake"][3] is not None  # effective MACs known in every thread's count


# — generated stacks: every kind of state a block may read, varied per block —

BLOCKS = ("linear", "mlp", "attend", "square")
STATES = ("none", "autocast", "grad", "math", "float64", "repeats")


def _block(kind: str) -> nn.Module:
    if kind == "linear":
        return nn.Linear(D, D)
    if kind == "mlp":
        return MLP()
    if kind == "attend":
        return Attend()
    return Square(lambda: COUNTER.repeats)


COUNTER = types.SimpleNamespace(repeats=1)


def _state(kind: str, i: int) -> Any:
    if kind == "autocast":
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=i % 2 == 0)
    if kind == "grad":
        return torch.set_grad_enabled(i % 2 == 0)
    if kind == "math":
        return sdpa_kernel(SDPBackend.MATH) if i % 2 else sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.MATH])
    if kind == "float64":
        return _default_dtype(torch.float64 if i % 2 else torch.float32)
    if kind == "repeats":
        COUNTER.repeats = 1 + i % 3
    return torch.autocast("cpu", enabled=False)  # nothing switched


class Generated(nn.Module):
    def __init__(self, kinds: list[str], states: list[str], rows: list[int], dtypes: list[torch.dtype]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(_block(kind) for kind in kinds)
        self.states, self.rows, self.dtypes = states, rows, dtypes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        COUNTER.repeats = 1
        for i, block in enumerate(self.blocks):
            with _state(self.states[i], i):
                y = block(
                    x[: self.rows[i]].to(self.dtypes[i]) if self.dtypes[i] != torch.float32 else x[: self.rows[i]]
                )
            x = torch.cat([y.float(), x[self.rows[i] :]])
        return x


@st.composite
def stacks(draw: st.DrawFn) -> tuple[list[str], list[str], list[int], list[torch.dtype]]:
    n = draw(st.integers(2, 5))
    kind = draw(st.sampled_from(BLOCKS))  # blocks of one structure, so that they replay
    kinds = [kind if draw(st.booleans()) else draw(st.sampled_from(BLOCKS)) for _ in range(n)]
    states = draw(st.lists(st.sampled_from(STATES), min_size=n, max_size=n))
    rows = [T if kinds[i] == "attend" else draw(st.sampled_from([T, T // 2])) for i in range(n)]
    dtypes = [
        torch.float32 if kinds[i] != "linear" else draw(st.sampled_from([torch.float32, torch.float64]))
        for i in range(n)
    ]
    return kinds, states, rows, dtypes


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stacks())
def test_generated_stacks_count_the_same_with_and_without_shortcuts(stack: Any) -> None:
    kinds, states, rows, dtypes = stack
    torch.manual_seed(0)
    model = Generated(kinds, states, rows, dtypes).eval()
    if any(k == "linear" and d == torch.float64 for k, d in zip(kinds, dtypes, strict=True)):
        for block, d in zip(model.blocks, dtypes, strict=True):
            block.to(d)
    same_in_every_mode(model, torch.rand(T, D))


def test_the_command_line_without_shortcuts_prints_the_same_count(tmp_path: Any) -> None:
    from flopwise.cli import main

    pytest.importorskip("torchvision")
    with_shortcuts, without = tmp_path / "on.json", tmp_path / "off.json"
    assert main(["torchvision:resnet18", "--format", "json", "-o", str(with_shortcuts), "-q"]) == 0
    assert main(["torchvision:resnet18", "--no-shortcuts", "--format", "json", "-o", str(without), "-q"]) == 0
    assert with_shortcuts.read_text() == without.read_text()
    assert '"macs": 1814073344' in without.read_text()  # ResNet-18 at 224×224, torchvision's published 1.814 GMACs


class RealBeside(nn.Module):
    """A plain tensor attribute (not a parameter or buffer) stays real in a shape-only count; an op on it has the
    shapes of one met before on a fake tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.table = torch.randn(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(1, 8, 4) * 2 + self.table.view(1, 8, 4)


def test_an_op_on_a_real_tensor_is_never_made_from_a_fake_record() -> None:
    model, x = RealBeside(), torch.empty(8, 4, device="meta")  # no values followed: its view goes in the memo
    flopwise.count(model, x, mode="fake")  # the memo now holds view (8, 4) → (1, 8, 4) of a fake tensor
    on = flopwise.count(model, x, mode="fake")
    assert figures(on) == figures(flopwise.count(model, x, mode="fake", shortcuts=False))
