"""explain: the hand calculation, per module and op, reproduces the guides and the counted numbers."""

from __future__ import annotations

import re
import runpy
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import flopwise
from flopwise.core.conventions import PRESETS
from flopwise.core.cost import Cost, OpCall
from flopwise.examples import guide_examples
from flopwise.explanation import build_groups, describe_module, flops_step, render_explanation, term_step
from flopwise.formulas.registry import FORMULAS, functional_name, specs
from tests.explain_samples import DIRECT, SAMPLES

ROOT = Path(__file__).resolve().parent.parent
_NUMERIC = re.compile(r"[0-9,·+−/() ]+")


def evaluate(shown: str) -> int:
    """The value of a displayed product or sum such as '2·112,896 + 1·16·784'."""
    assert _NUMERIC.fullmatch(shown), f"not a numeric expression: {shown!r}"
    python = shown.replace(",", "").replace("·", "*").replace("−", "-").replace("/", "//")
    return int(eval(python, {"__builtins__": {}}))  # noqa: S307 - digits and operators only, checked above


def check_chains(text: str) -> int:
    """Every 'a = b = c' chain of the text: all its numeric members have the same value. Returns how many."""
    checked = 0
    for line in text.splitlines():
        for segment in line.split("; "):
            pieces = [p.split(" (")[0].strip() for p in segment.split(" = ")[1:]]
            numeric = [p for p in pieces if p and _NUMERIC.fullmatch(p) and re.search(r"\d", p)]
            if len(numeric) >= 2:
                assert len({evaluate(p) for p in numeric}) == 1, f"arithmetic does not add up: {segment!r}"
                checked += 1
    return checked


def explained(name: str, convention: str = "contractions") -> tuple[flopwise.Report, str]:
    example = next(e for e in guide_examples() if e.name == name)
    report = flopwise.count(example.model, example.inputs, convention=convention)
    return report, render_explanation(report)


# — the guides' figures ———————————————————————————————————————————————————————————————————————————————————


def test_linear_model_reproduces_the_guide() -> None:
    _, text = explained("SimpleLinearModel")
    # M = batch rows, N = out features, K = in features; the guide writes I × O
    assert f"fc1 (Linear 10→20, no bias): MACs = M·K·N = 1·10·20 = {10 * 20}; FLOPs = 2·MACs = 2·200 = {400}" in text
    assert f"fc2 (Linear 20→15, no bias): MACs = M·K·N = 1·20·15 = {20 * 15}; FLOPs = 2·MACs = 2·300 = {600}" in text
    assert f"fc3 (Linear 15→1, no bias): MACs = M·K·N = 1·15·1 = {15 * 1}; FLOPs = 2·MACs = 2·15 = {30}" in text
    assert "Total MACs = MACs(fc1) + MACs(fc2) + MACs(fc3) = 200 + 300 + 15 = 515" in text
    assert f"Total FLOPs = FLOPs(fc1) + FLOPs(fc2) + FLOPs(fc3) = 400 + 600 + 30 = {400 + 600 + 30:,}" in text
    assert check_chains(text) >= 6


def test_conv_model_reproduces_the_guide_line_of_the_issue() -> None:
    _, text = explained("SimpleConv")
    conv1, conv2, fc = 28 * 28 * 3 * 3 * 1 * 16, 28 * 28 * 3 * 3 * 16 * 32, 32 * 28 * 28 * 10
    assert (
        "conv1 (Conv2d 1→16, k3, s1, p1): MACs = H_out·W_out·K_h·K_w·(C_in/groups)·C_out·N = 28·28·3·3·1·16·1 = "
        f"{conv1:,}; FLOPs = 2·MACs = 2·{conv1:,} = {2 * conv1:,}"
    ) in text  # 112,896; 225,792
    assert (
        "conv2 (Conv2d 16→32, k3, s1, p1): MACs = H_out·W_out·K_h·K_w·(C_in/groups)·C_out·N = "
        f"28·28·3·3·16·32·1 = {conv2:,}"
    ) in text
    assert f"FLOPs = 2·MACs = 2·{conv2:,} = {7_225_344:,}" in text
    assert f"fc (Linear 25088→10): MACs = M·K·N = 1·25088·10 = {fc:,}; FLOPs = 2·MACs = 2·{fc:,} = {501_760:,}" in text
    assert f"= 112,896 + 3,612,672 + 250,880 = {conv1 + conv2 + fc:,}" in text  # 3,976,448
    assert f"= 225,792 + 7,225,344 + 501,760 = {2 * (conv1 + conv2 + fc):,}" in text  # 7,952,896
    assert "(not counted under this convention: bias 12,544)" in text  # 16·28·28 bias adds, left out by the guides


def test_attention_block_shows_each_product_on_its_own_line() -> None:
    _, text = explained("SimpleAttentionBlock")
    projection, scores = 1 * 10 * 256 * 256, 1 * 8 * 10 * 10 * 32  # batch·seq·embed·embed; batch·heads·L·S·head_dim
    for name in ("values", "keys", "queries"):
        assert f"{name} (Linear 256→256, no bias): MACs = M·K·N = 10·256·256 = {projection:,}" in text
    assert f"fc_out (Linear 256→256): MACs = M·K·N = 10·256·256 = {projection:,}" in text
    assert f"aten.bmm (QKᵀ): MACs = B·M·N·K = 8·10·10·32 = {scores:,}" in text
    assert f"aten.bmm (AV): MACs = B·M·N·K = 8·10·32·10 = {scores:,}" in text
    assert text.index("(QKᵀ)") < text.index("(AV)") < text.index("fc_out (")
    total = 4 * projection + 2 * scores
    assert (
        "Total MACs = MACs(values) + MACs(keys) + MACs(queries) + MACs(QKᵀ) + MACs(AV) + MACs(fc_out) = "
        f"655,360 + 655,360 + 655,360 + 25,600 + 25,600 + 655,360 = {total:,}"
    ) in text  # 2,672,640
    assert f"Total FLOPs = 2·Total MACs = 2·{total:,} = {2 * total:,}" in text  # 5,345,280
    assert "Attention is counted dense" in text


def test_default_convention_shows_how_flops_follow_from_macs() -> None:
    report, text = explained("SimpleConv", "default")
    conv1_bias = 1 * 16 * 28 * 28  # N·C_out·P_out
    flops = 2 * 112_896 + conv1_bias
    assert f"FLOPs = 2·MACs + bias N·C_out·P_out = 2·112,896 + 1·16·784 = {flops:,}" in text
    assert report["conv1"].flops == flops
    relu = [line for line in text.splitlines() if line.startswith("  aten.relu: FLOPs = ")]
    assert relu[0].endswith(f" = {16 * 28 * 28:,}")  # one compare per element of conv1's output
    assert f"= {report.flops:,}" in text and f"contractions {2 * 3_976_448:,}" in text
    assert check_chains(text) >= 10


@pytest.mark.parametrize("convention", sorted(PRESETS))
def test_every_explained_figure_adds_up_under_every_convention(convention: str) -> None:
    for example in guide_examples():
        report = flopwise.count(example.model, example.inputs, convention=convention)
        text = report.explain()
        assert check_chains(text) >= 3
        assert f"= {report.macs:,}" in text and f"= {report.flops:,}" in text
        for group in build_groups(report):
            for line in group.lines:
                if line.macs is not None:
                    assert evaluate(line.macs.substituted) == line.call.cost.macs
                if line.flops is not None:
                    assert evaluate(line.flops.substituted) == line.call.cost.flops


def test_batch_scaling_note() -> None:
    model = nn.Linear(8, 4, bias=False)
    text = flopwise.count(model, torch.randn(3, 8)).explain()
    per_sample = 8 * 4  # in·out
    assert f"({3 * per_sample} MACs / 3 = {per_sample} per sample)" in text
    assert f"×32 at batch 32 = 32·{per_sample} = {32 * per_sample:,} MACs" in text


def test_depth_groups_ops_under_their_ancestor() -> None:
    model = nn.Sequential(nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 3, bias=False)), nn.Linear(3, 2))
    report = flopwise.count(model, torch.randn(1, 4))
    text = report.explain(depth=1)
    assert "\n0 (Sequential)\n" in text  # submodules named relative to the group: [0] is module 0.0
    assert "  [0] aten.addmm: MACs = M·K·N = 1·4·3 = 12; FLOPs = 2·MACs + bias M·N = 2·12 + 1·3 = 27" in text
    assert "  [1] aten.mm: MACs = M·K·N = 1·3·3 = 9; FLOPs = 2·MACs = 2·9 = 18" in text
    assert "1 (Linear 3→2): MACs = M·K·N = 1·3·2 = 6" in text
    assert "Total MACs = MACs(0.0) + MACs(0.1) + MACs(1) = 12 + 9 + 6 = 27" in text
    groups = build_groups(report, depth=1)
    assert [g.name for g in groups] == ["0", "1"]
    assert [g.flops for g in groups] == [report["0"].flops, report["1"].flops]


def test_repeated_calls_are_shown_once() -> None:
    cell, x = nn.Linear(5, 5, bias=False), torch.randn(2, 5)
    with flopwise.counting() as c:
        for _ in range(4):
            cell(x)
    text = c.report.explain(depth=0)
    assert "4 identical calls, each: MACs = M·K·N = 2·5·5 = 50" in text
    assert f"Total MACs = 4·MACs(Linear) = 4·50 = {4 * 2 * 5 * 5}" in text  # counting() names modules by class


@torch.library.custom_op("flopwise_explain_test::mystery", mutates_args=())
def _mystery(x: torch.Tensor) -> torch.Tensor:
    return x * 2


def test_unsupported_ops_are_flagged_not_hidden() -> None:
    with flopwise.counting() as c:
        _mystery(torch.ones(3))  # an op flopwise has no formula for, and no decomposition
    text = c.report.explain()
    assert "flopwise_explain_test.mystery: no formula: not counted (the totals are a lower bound)" in text
    assert "INCOMPLETE: the totals are a lower bound; ops with no known cost: flopwise_explain_test.mystery ×1" in text


def test_markdown_has_inline_math_and_headings() -> None:
    report, _ = explained("SimpleConv")
    text = report.explain(fmt="markdown")
    assert text.startswith("### SimpleConv")
    assert (
        r"- **conv1** (Conv2d 1→16, k3, s1, p1): MACs $= H_{\mathrm{out}} \cdot W_{\mathrm{out}} \cdot K_{h} "
        r"\cdot K_{w} \cdot (C_{\mathrm{in}}/\mathrm{groups}) \cdot C_{\mathrm{out}} \cdot N = 28 \cdot 28 "
        r"\cdot 3 \cdot 3 \cdot 1 \cdot 16 \cdot 1 = 112{,}896$"
    ) in text
    assert text.count("$") % 2 == 0


def test_bad_arguments_say_what_was_expected() -> None:
    report, _ = explained("SimpleLinearModel")
    with pytest.raises(ValueError, match="fmt must be one of text, markdown, got 'html'"):
        report.explain(fmt="html")
    with pytest.raises(ValueError, match="depth must be None"):
        report.explain(depth=-1)


def test_explain_counts_and_explains_in_one_call() -> None:
    from flopwise.explanation import explain

    text = explain(nn.Linear(10, 20, bias=False), torch.randn(1, 10), convention="mac")
    assert "FLOPs = MACs = 200 = 200" not in text and "FLOPs = MACs = 200" in text  # 1 FLOP per MAC


def test_describe_module() -> None:
    assert describe_module(nn.Conv2d(1, 16, 3, padding=1)) == "Conv2d 1→16, k3, s1, p1"
    assert (
        describe_module(nn.Conv2d(8, 8, (3, 5), stride=2, groups=8, bias=False))
        == "Conv2d 8→8, k3×5, s2, p0, groups 8, no bias"
    )
    assert describe_module(nn.Linear(10, 20, bias=False)) == "Linear 10→20, no bias"
    assert describe_module(nn.ReLU()) == "ReLU"
    assert describe_module(nn.Dropout(0.5)) == "Dropout p=0.5, inplace=False"  # others: their extra_repr


def test_docs_page_is_current() -> None:
    script = runpy.run_path(str(ROOT / "scripts" / "gen_explain_docs.py"))
    page = ROOT / "docs" / "guides_explained.md"
    assert page.read_text(encoding="utf-8") == script["render"](), (
        "docs/guides_explained.md is out of date: run .venv/bin/python scripts/gen_explain_docs.py"
    )


# — every registered formula ——————————————————————————————————————————————————————————————————————————————


def _grad(shape: tuple[int, ...]) -> torch.Tensor:
    return torch.rand(shape).add_(0.5).requires_grad_()


def _fwd_bwd(fn: Callable[[torch.Tensor], torch.Tensor], *shape: int) -> Callable[[], object]:
    """Forward and backward of `fn` on a small input: both directions' ops are recorded."""

    def run() -> object:
        out = fn(_grad(shape) if torch.is_grad_enabled() else torch.rand(shape).add_(0.5))
        return out.sum().backward() if out.requires_grad else out

    return run


# Workloads run once each (forward in no-grad and inference mode, forward and backward with grad); every op
# they reach is checked, so one row covers a family of formulas (pooling, norms, upsampling, losses…).
CORPUS: list[Callable[[], object]] = [
    _fwd_bwd(lambda x: F.max_pool2d(x, 2), 1, 2, 4, 4),
    _fwd_bwd(lambda x: F.max_pool1d(x, 2), 1, 2, 4),
    _fwd_bwd(lambda x: F.max_pool3d(x, 2), 1, 1, 4, 4, 4),
    _fwd_bwd(lambda x: F.avg_pool1d(x, 2), 1, 2, 4),
    _fwd_bwd(lambda x: F.avg_pool2d(x, 2), 1, 2, 4, 4),
    _fwd_bwd(lambda x: F.avg_pool3d(x, 2), 1, 1, 4, 4, 4),
    _fwd_bwd(lambda x: F.adaptive_avg_pool1d(x, 2), 1, 2, 4),
    _fwd_bwd(lambda x: F.adaptive_avg_pool2d(x, 3), 1, 2, 5, 5),
    _fwd_bwd(lambda x: F.adaptive_avg_pool3d(x, 3), 1, 1, 5, 5, 5),
    _fwd_bwd(lambda x: F.adaptive_max_pool1d(x, 2), 1, 2, 4),
    _fwd_bwd(lambda x: F.adaptive_max_pool2d(x, 2), 1, 2, 4, 4),
    _fwd_bwd(lambda x: F.adaptive_max_pool3d(x, 2), 1, 1, 4, 4, 4),
    _fwd_bwd(
        lambda x: F.batch_norm(x, torch.zeros(2), torch.ones(2), torch.ones(2), torch.zeros(2), training=True), 2, 2, 3
    ),
    _fwd_bwd(lambda x: F.batch_norm(x, torch.zeros(2), torch.ones(2), training=False), 2, 2, 3),
    _fwd_bwd(lambda x: F.group_norm(x, 2, torch.ones(4), torch.zeros(4)), 2, 4, 3),
    _fwd_bwd(lambda x: F.layer_norm(x, (3,), torch.ones(3), torch.zeros(3)), 2, 3),
    _fwd_bwd(lambda x: F.rms_norm(x, (3,), torch.ones(3)), 2, 3),
    _fwd_bwd(lambda x: torch._weight_norm(x, torch.ones(3, 1)), 3, 4),
    _fwd_bwd(lambda x: F.softmax(x, -1) + F.log_softmax(x, -1), 2, 3),
    _fwd_bwd(lambda x: F.elu(x) + F.leaky_relu(x) + F.hardtanh(x) + F.selu(x), 2, 3),
    _fwd_bwd(lambda x: F.mse_loss(x, torch.zeros(2, 3)), 2, 3),
    _fwd_bwd(lambda x: F.binary_cross_entropy(torch.sigmoid(x), torch.rand(2, 3)), 2, 3),
    _fwd_bwd(lambda x: F.nll_loss(x, torch.tensor([0, 2])), 2, 3),
    _fwd_bwd(lambda x: F.nll_loss(x, torch.zeros(2, 2, 2, dtype=torch.long)), 2, 3, 2, 2),
    _fwd_bwd(lambda x: F.cross_entropy(x, torch.tensor([0, 2])), 2, 3),
    _fwd_bwd(lambda x: F.embedding(torch.tensor([0, 2]), x), 3, 4),
    _fwd_bwd(lambda x: x[torch.tensor([0, 2])] + x.index_select(0, torch.tensor([1])), 3, 4),
    lambda: (torch.empty_strided((2, 3), (3, 1)), torch.zeros(2).new_empty(3), torch.empty(2).copy_(torch.ones(2))),
    _fwd_bwd(lambda x: F.embedding_bag(torch.tensor([0, 2, 1]), x, torch.tensor([0, 1])), 3, 4),
    _fwd_bwd(lambda x: F.grid_sample(x, torch.rand(1, 2, 2, 2) * 2 - 1, align_corners=False), 1, 1, 3, 3),
    _fwd_bwd(lambda x: F.grid_sample(x, torch.rand(1, 2, 2, 2, 3) * 2 - 1, align_corners=False), 1, 1, 3, 3, 3),
    _fwd_bwd(lambda x: F.interpolate(x, scale_factor=2, mode="nearest"), 1, 1, 3),
    _fwd_bwd(lambda x: F.interpolate(x, scale_factor=2, mode="nearest"), 1, 1, 3, 3),
    _fwd_bwd(lambda x: F.interpolate(x, scale_factor=2, mode="nearest"), 1, 1, 2, 2, 2),
    _fwd_bwd(lambda x: F.interpolate(x, scale_factor=2, mode="nearest-exact"), 1, 1, 3),
    _fwd_bwd(lambda x: F.interpolate(x, scale_factor=2, mode="nearest-exact"), 1, 1, 3, 3),
    _fwd_bwd(lambda x: F.interpolate(x, scale_factor=2, mode="nearest-exact"), 1, 1, 2, 2, 2),
    _fwd_bwd(lambda x: F.interpolate(x, scale_factor=2, mode="linear"), 1, 1, 3),
    _fwd_bwd(lambda x: F.interpolate(x, scale_factor=2, mode="bilinear"), 1, 1, 3, 3),
    _fwd_bwd(lambda x: F.interpolate(x, scale_factor=2, mode="bicubic"), 1, 1, 3, 3),
    _fwd_bwd(lambda x: F.interpolate(x, scale_factor=2, mode="trilinear"), 1, 1, 2, 2, 2),
    _fwd_bwd(lambda x: F.interpolate(x, scale_factor=2, mode="bilinear", antialias=True), 1, 1, 3, 3),
    _fwd_bwd(lambda x: F.interpolate(x, scale_factor=2, mode="bicubic", antialias=True), 1, 1, 3, 3),
    _fwd_bwd(lambda x: F.fold(x, (3, 3), 2), 1, 4, 4),
    _fwd_bwd(lambda x: torch.cdist(x, x), 3, 2),
    _fwd_bwd(lambda x: torch.fft.fft(x).abs() + torch.fft.irfft(torch.fft.rfft(x), 4), 2, 4),
    _fwd_bwd(lambda x: F.scaled_dot_product_attention(x, x, x), 1, 2, 3, 4),
    _fwd_bwd(lambda x: x.index_add(0, torch.tensor([0, 1]), torch.ones(2, 3)), 3, 3),
    _fwd_bwd(lambda x: x.scatter_add(0, torch.tensor([[0, 1, 0]]), torch.ones(1, 3)), 3, 3),
    _fwd_bwd(lambda x: x.scatter_reduce(0, torch.tensor([[0, 1, 0]]), torch.ones(1, 3), "sum"), 3, 3),
    _fwd_bwd(lambda x: x.index_reduce(0, torch.tensor([0, 1]), torch.ones(2, 3), "prod"), 3, 3),
    _fwd_bwd(lambda x: x.index_put((torch.tensor([0, 1]),), torch.ones(2, 3)), 3, 3),
    _fwd_bwd(lambda x: x.nanmean() + x.argsort().sum() + x.isfinite().sum(), 3, 3),
    lambda: (torch.linspace(0, 1, 5), torch.logspace(0, 1, 5)),
]


def _generic(name: str) -> Callable[[], object] | None:
    """A pointwise-style call of the op with small tensors, if one of a few argument patterns runs."""
    namespace, base = name.split(".", 1)
    op = getattr(getattr(torch.ops, namespace), base, None)  # aten.X, prims.X, quantized.X
    if op is None:
        return None
    x = torch.rand(2, 3) + 0.5
    patterns = ((x,), (x, x), (x, 0.5), (x, x, 0.5), (x > 1, x, x), (x, -1), (x, 1, False), (x, [3], None, None, 1e-5))
    for args in patterns:

        def call(args: tuple = args) -> object:
            return op(*args)

        try:
            call()
        except Exception:  # not this pattern
            continue
        return call
    return None


def _calls_of(name: str, sample: Callable[[], object]) -> list[OpCall]:
    """The op's calls when `sample` runs; CompositeImplicitAutograd ops reach the mode only in inference mode."""
    contexts = (torch.enable_grad,) if "backward" in name else (torch.no_grad, torch.inference_mode)
    for context in contexts:
        with context(), flopwise.counting() as c:
            sample()
        calls = [call for call in c.report.calls if functional_name(call.op) == name or call.op == name]
        if calls:
            return calls
    return []


# Debt, listed so that it can only shrink: GPU-only kernels (cuDNN, MIOpen, CUDA attention backward) and ops
# met only in traced or exported graphs. A formula registered later without a sample fails the test below.
WITHOUT_SAMPLE_YET = frozenset(
    {
        "aten._batch_norm_no_update",
        "aten._batch_norm_with_update",
        "aten._batch_norm_with_update_functional",
        "aten._embedding_bag_dense_backward",
        "aten._fused_rms_norm_backward",
        "aten._index_put_impl",
        "aten._native_batch_norm_legit",
        "aten._native_batch_norm_legit_functional",
        "aten._native_batch_norm_legit_no_training",
        "aten._scaled_dot_product_cudnn_attention_backward",
        "aten._scaled_dot_product_efficient_attention_backward",
        "aten._scaled_dot_product_flash_attention_backward",
        "aten.batch_norm_backward",
        "aten.cudnn_batch_norm",
        "aten.cudnn_batch_norm_backward",
        "aten.cudnn_grid_sampler",
        "aten.embedding_backward",
        "aten.max_pool1d_with_indices",
        "aten.miopen_batch_norm",
        "aten.miopen_batch_norm_backward",
    }
)


def _corpus_calls() -> dict[str, list[OpCall]]:
    found: dict[str, list[OpCall]] = {}
    for workload in CORPUS:
        for context in (torch.no_grad, torch.inference_mode, torch.enable_grad):
            with context(), flopwise.counting() as c:
                workload()
            for call in c.report.calls:
                found.setdefault(functional_name(call.op), []).append(call)
    return found


def test_every_registered_formula_is_explained_and_adds_up() -> None:
    lacking, checked = [], 0
    corpus = _corpus_calls()
    for name in sorted(FORMULAS):
        if name in DIRECT:
            work = FORMULAS[name](*specs(DIRECT[name]()))  # formulas see TensorSpecs, as in a count
            calls = [OpCall(name, "", Cost(work.mac_count, PRESETS["default"].flops(work)), work)]
        elif name in corpus and name not in SAMPLES:
            calls = corpus[name][:3]
        else:
            sample = SAMPLES.get(name) or _generic(name)
            calls = _calls_of(name, sample) if sample is not None else []
        if not calls:
            lacking.append(name)
            continue
        for call in calls:
            work = call.work
            assert work.macs is not None or work.flops or work.note, f"{name}: its formula returned nothing to explain"
            if work.macs is not None:
                step = term_step(work.macs)
                assert evaluate(step.substituted) == step.value == call.cost.macs, name
                assert not step.parts or sum(step.parts) == step.value, name
            for convention in PRESETS.values():  # the count under each convention is convention.flops(work)
                macs = convention.macs_term(work)
                assert (evaluate(term_step(macs).substituted) if macs else 0) == convention.macs(work), name
                shown = flops_step(work, convention)
                assert (evaluate(shown.substituted) if shown else 0) == convention.flops(work), (name, convention)
            assert (
                flops_step(work, PRESETS["default"]) is None
                or evaluate(flops_step(work, PRESETS["default"]).substituted) == call.cost.flops
            )  # type: ignore[union-attr]
            checked += 1
    new = sorted(set(lacking) - WITHOUT_SAMPLE_YET)
    assert not new, f"no sample call for {new}: add one to SAMPLES or DIRECT in tests/explain_samples.py, or to CORPUS"
    assert checked >= len(FORMULAS) - len(WITHOUT_SAMPLE_YET)
