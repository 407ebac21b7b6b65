"""Other FLOP counters next to flopwise, on the guides' models and five real ones; writes docs/comparison.md.

The third-party tools are never installed into the project's .venv. `make compare-tools` creates
build/compare-venv with them (bench/requirements-compare.txt), torch, torchvision, transformers and flopwise,
then runs this script there:

    make compare-tools
    # or by hand:
    python3 -m venv build/compare-venv
    build/compare-venv/bin/pip install torch==2.14.1 torchvision==0.29.1 transformers -r bench/requirements-compare.txt
    build/compare-venv/bin/pip install --no-deps -e .
    build/compare-venv/bin/python bench/compare_tools.py            # prints the table, rewrites docs/comparison.md

Each tool is run as its documentation shows, on its own deep copy of the model (thop adds buffers to the
model it profiles), and its number is set beside flopwise's under the matching convention: MAC counters
(thop, ptflops, fvcore, torchprofile) against flopwise MACs, calflops' FLOPs against flopwise's default FLOPs,
FlopCounterMode against flopwise's `contractions` convention. Models run in eval mode on random weights.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import io
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

import flopwise
from flopwise.examples import guide_examples

PAGE = Path(__file__).resolve().parent.parent / "docs" / "comparison.md"


def _models() -> list[tuple[str, torch.nn.Module, tuple[Any, ...]]]:
    """(name, model in eval mode, positional inputs)."""
    import torchvision
    import transformers

    torch.manual_seed(0)
    models: list[tuple[str, torch.nn.Module, tuple[Any, ...]]] = []
    for example in guide_examples():
        inputs = example.inputs if isinstance(example.inputs, tuple) else (example.inputs,)
        models.append((example.name, example.model.eval(), inputs))
    image = (torch.randn(1, 3, 224, 224),)
    tokens = (torch.randint(0, 1000, (1, 128)),)
    models += [
        ("ResNet-50", torchvision.models.resnet50().eval(), image),
        ("MobileNetV3-Large", torchvision.models.mobilenet_v3_large().eval(), image),
        ("ViT-B/16", torchvision.models.vit_b_16().eval(), image),
        ("BERT-base", transformers.BertModel(transformers.BertConfig()).eval(), tokens),
        ("GPT-2 small", transformers.GPT2Model(transformers.GPT2Config()).eval(), tokens),
    ]
    return models


def _as_kwargs(model: torch.nn.Module, args: tuple[Any, ...]) -> dict[str, Any]:
    names = list(inspect.signature(model.forward).parameters)
    return dict(zip(names, args, strict=False))


@contextlib.contextmanager
def _torch_restored() -> Any:
    """Undo what a tool patched into torch: ptflops and calflops replace torch.nn.functional and Tensor methods
    while they count and leave them patched when a model fails, which breaks every later count."""
    import torch.nn.functional as F

    namespaces = [F, torch, torch.Tensor, torch.nn.modules.module]
    saved = [dict(vars(ns)) for ns in namespaces]
    try:
        yield
    finally:
        for ns, before in zip(namespaces, saved, strict=True):
            for key, value in before.items():
                if vars(ns).get(key) is not value:
                    with contextlib.suppress(AttributeError, TypeError):
                        setattr(ns, key, value)


@contextlib.contextmanager
def _quiet() -> Any:
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()),
    ):
        warnings.simplefilter("ignore")
        yield


# — each tool: (model copy, positional inputs) → its number —


def thop_macs(model: torch.nn.Module, args: tuple[Any, ...]) -> int:
    from thop import profile

    macs, _ = profile(model, inputs=args, verbose=False)
    return int(macs)


def ptflops_macs(backend: str) -> Callable[[torch.nn.Module, tuple[Any, ...]], int]:
    def run(model: torch.nn.Module, args: tuple[Any, ...]) -> int:
        from ptflops import get_model_complexity_info

        kwargs = _as_kwargs(model, args)
        macs, _ = get_model_complexity_info(
            model,
            (1,),
            input_constructor=lambda _: kwargs,
            as_strings=False,
            backend=backend,
            print_per_layer_stat=False,
            verbose=False,
        )
        if macs is None:
            raise RuntimeError("ptflops returned None (it prints the error and carries on)")
        return int(macs)

    return run


def fvcore_macs(model: torch.nn.Module, args: tuple[Any, ...]) -> int:
    from fvcore.nn import FlopCountAnalysis

    return int(FlopCountAnalysis(model, args).total())


def torchprofile_macs(model: torch.nn.Module, args: tuple[Any, ...]) -> int:
    from torchprofile import profile_macs

    return int(profile_macs(model, args))


def calflops_flops(model: torch.nn.Module, args: tuple[Any, ...]) -> int:
    from calflops import calculate_flops

    flops, _, _ = calculate_flops(
        model=model, kwargs=_as_kwargs(model, args), print_results=False, print_detailed=False, output_as_string=False
    )
    return int(flops)


def flop_counter_mode_flops(model: torch.nn.Module, args: tuple[Any, ...]) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(*args)
    return int(counter.get_total_flops())


# (tool, what its number is, the flopwise figure it is set against, runner)
TOOLS: list[tuple[str, str, str, Callable[[torch.nn.Module, tuple[Any, ...]], int]]] = [
    ("thop", "MACs", "macs", thop_macs),
    ("ptflops (pytorch backend)", "MACs", "macs", ptflops_macs("pytorch")),
    ("ptflops (aten backend)", "MACs", "macs", ptflops_macs("aten")),
    ("fvcore", "MACs", "macs", fvcore_macs),
    ("torchprofile", "MACs", "macs", torchprofile_macs),
    ("calflops", "FLOPs", "default", calflops_flops),
    ("FlopCounterMode", "FLOPs", "contractions", flop_counter_mode_flops),
]


def measure() -> dict[str, dict[str, Any]]:
    """{model: {"flopwise": {...}, tool: number or error text}}."""
    results: dict[str, dict[str, Any]] = {}
    for name, model, args in _models():
        row: dict[str, Any] = {}
        reference = flopwise.count(model, args)
        row["flopwise"] = {
            "macs": reference.macs,
            "default": reference.flops,
            "contractions": flopwise.count(model, args, convention="contractions").flops,
            "unsupported": reference.unsupported,
        }
        for tool, _, _, run in TOOLS:
            try:
                with _torch_restored(), _quiet():
                    row[tool] = run(copy.deepcopy(model), args)
            except Exception as error:  # a tool that fails is reported as failing, with its message
                row[tool] = f"fails: {type(error).__name__}: {str(error).splitlines()[0][:90] if str(error) else ''}"
        results[name] = row
        print(name, {k: v for k, v in row.items() if k != "flopwise"}, file=sys.stderr)
    return results


def _cell(value: Any, expected: int) -> str:
    if isinstance(value, str):
        return value.replace("|", "\\|")
    if value == expected:
        return f"{value:,} (=)"
    return f"{value:,} ({(value - expected) / expected:+.1%})" if expected else f"{value:,}"


# Why each tool's number differs from flopwise's, worked out from flopwise's per-operator breakdown
# (`report.by_operator()`); "=" cells need no reason. Keys: (tool, model); (tool, "*") applies to every model.
REASONS: dict[tuple[str, str], str] = {
    ("thop", "*"): "module hooks only: never sees matmuls, SDPA or fused attention written inside forward; adds "
    'batch/layer norm (4 per element) and adaptive pooling ((k+1) per output) into its "MACs"',
    ("thop", "SimpleAttentionBlock"): "misses QKᵀ and AV (2 × 25,600 MACs): torch.matmul/einsum in forward",
    ("thop", "ResNet-50"): "+ batch norm 4/element (44,455,936) + global average pool (49+1)·2048 (102,400)",
    ("thop", "MobileNetV3-Large"): "+ batch norm 4/element (17,599,232) + adaptive average pools (k+1 per output, "
    "649,464)",
    ("thop", "ViT-B/16"): "the eval-mode nn.MultiheadAttention fast path (in-proj, QKᵀ, AV, out-proj: 6.29 G MACs) "
    "is invisible to module hooks; LayerNorm added at 4/element",
    ("thop", "BERT-base"): "misses SDPA (301,989,888 MACs); adds LayerNorm 4/element (9,830,400)",
    ("thop", "GPT-2 small"): "sees no projection at all (GPT-2's Conv1D has no thop rule) and no attention: its "
    "whole number is LayerNorm at 4/element (25 × 128·768 × 4 = 9,830,400)",
    ("ptflops (pytorch backend)", "*"): "module hooks plus patched torch.nn.functional; counts bias, "
    'ReLU, norms and pooling into its "MACs"',
    ("ptflops (pytorch backend)", "SimpleLinearModel"): "+ ReLU, 1 per element (20 + 15)",
    ("ptflops (pytorch backend)", "SimpleConv"): "+ conv and fc biases (37,632 + 10) + ReLU (37,632)",
    ("ptflops (pytorch backend)", "SimpleAttentionBlock"): "+ fc_out bias (10·256 = 2,560)",
    ("ptflops (pytorch backend)", "ResNet-50"): "+ batch norm 2/element (22,227,968) + fc bias (1,000) + ReLU, max "
    "and average pool counted twice, by the module hook and by the "
    "patched functional (2 × 10,511,872)",
    ("ptflops (pytorch backend)", "ViT-B/16"): "sees the attention through F.multi_head_attention_forward; adds "
    "biases, LayerNorm and GELU",
    ("ptflops (pytorch backend)", "BERT-base"): "misses SDPA (301,989,888); adds Linear biases (10,617,600) and "
    "LayerNorm 1/element (2,457,600)",
    ("ptflops (pytorch backend)", "GPT-2 small"): "misses SDPA (301,989,888); adds LayerNorm 1/element (2,457,600) "
    "and 82,944 in small ops (not reconciled)",
    ("ptflops (aten backend)", "*"): "dispatch level, ~20 ops known: bias of addmm/convolution counted as MACs; SDPA "
    "and fused attention kernels unknown (silently 0)",
    ("ptflops (aten backend)", "SimpleConv"): "+ conv and fc biases as MACs (37,632 + 10)",
    ("ptflops (aten backend)", "SimpleAttentionBlock"): "+ fc_out bias as MACs (2,560)",
    ("ptflops (aten backend)", "ResNet-50"): "+ fc bias as MACs (1,000)",
    ("ptflops (aten backend)", "MobileNetV3-Large"): "+ conv and fc biases as MACs (5,080 + 2,280)",
    ("ptflops (aten backend)", "ViT-B/16"): "misses the attention products inside _native_multi_head_attention; "
    "its projections come through as addmm with bias",
    ("ptflops (aten backend)", "BERT-base"): "misses SDPA (301,989,888); + Linear biases as MACs (10,617,600)",
    ("ptflops (aten backend)", "GPT-2 small"): "misses SDPA (301,989,888); + Conv1D biases as MACs (10,616,832)",
    ("fvcore", "*"): "jit trace; counts one flop per MAC; adds batch norm 2/element, LayerNorm 5/element and "
    "adaptive average pooling 1 per input element; skips ops it has no handle for (SDPA)",
    ("fvcore", "ResNet-50"): "+ batch norm 2/element (22,227,968) + global average pool 1/input (100,352)",
    ("fvcore", "MobileNetV3-Large"): "+ batch norm 2/element (8,799,616) + average pools 1/input (644,448)",
    ("fvcore", "ViT-B/16"): "misses the attention products of the fused MHA kernel; adds LayerNorm 5/element",
    ("fvcore", "BERT-base"): "misses SDPA (301,989,888); + LayerNorm 5/element (12,288,000)",
    ("fvcore", "GPT-2 small"): "jit trace cannot return GPT-2's dict output",
    ("torchprofile", "*"): "jit trace; counts batch norm and LayerNorm 1/element and some elementwise ops",
    ("torchprofile", "ResNet-50"): "+ batch norm 1/element (11,113,984) + global pool outputs (2,048)",
    ("torchprofile", "MobileNetV3-Large"): "+ batch norm 1/element (4,399,808) + SE scale multiplies (597,408) + "
    "pool outputs (5,016)",
    ("torchprofile", "ViT-B/16"): "+ LayerNorm and GELU elementwise work; sees the attention",
    ("torchprofile", "BERT-base"): "+ LayerNorm 1/element (2,457,600); sees SDPA",
    ("torchprofile", "GPT-2 small"): "+ LayerNorm 1/element (2,457,600) + the GELU's multiplies (4 × 128·3072 "
    "per layer = 18,874,368)",
    ("calflops", "*"): "2 FLOPs per MAC + patched functionals; no bias adds, no residual adds, no SDPA",
    ("calflops", "SimpleConv"): "no fc bias add (10)",
    ("calflops", "SimpleAttentionBlock"): "fails on the None mask argument (moves every input with .to())",
    ("calflops", "ResNet-50"): "batch norm 2/element instead of 4 (−22,227,968), no residual adds (−5,519,360), max "
    "pool 1 per input instead of 8 compares per output (−802,816), no fc bias (−1,000)",
    ("calflops", "MobileNetV3-Large"): "batch norm 2/element instead of 4, no bias or residual adds; hardswish "
    "and SE multiplies counted differently",
    ("calflops", "ViT-B/16"): "misses the fused MHA kernel's products; LayerNorm 5/element; no GELU, biases or "
    "residual adds",
    ("calflops", "BERT-base"): "= FlopCounterMode (no SDPA, −603,979,776) + LayerNorm 5/element (12,288,000); no "
    "GELU, softmax, bias or residual adds",
    ("calflops", "GPT-2 small"): "= FlopCounterMode (no SDPA, −603,979,776) + LayerNorm 5/element (12,288,000) + "
    "82,944 in small ops (not reconciled)",
    ("FlopCounterMode", "*"): "contractions only, at dispatch level; SDPA on CPU and the fused MHA kernel unknown "
    "(silently 0)",
    ("FlopCounterMode", "ViT-B/16"): "misses _native_multi_head_attention (eval fast path): −2 × 6,292,703,232",
    ("FlopCounterMode", "BERT-base"): "misses _scaled_dot_product_flash_attention_for_cpu: −2 × 301,989,888",
    ("FlopCounterMode", "GPT-2 small"): "misses _scaled_dot_product_flash_attention_for_cpu: −2 × 301,989,888",
}


def _reason(tool: str, model: str, value: Any, expected: int) -> str:
    if value == expected:
        return ""
    return REASONS.get((tool, model)) or REASONS.get((tool, "*"), "(unexplained)")


def render(results: dict[str, dict[str, Any]]) -> str:
    lines = [
        "# flopwise beside other FLOP counters\n",
        "Generated by `make compare-tools` (bench/compare_tools.py, torch 2.14.1, CPU, eval mode, random weights, "
        "batch 1: images 224×224, 128 tokens); the tools are installed only in build/compare-venv. Each cell is "
        "the tool's number, then its difference from flopwise's under the matching convention: MAC counters "
        "against flopwise MACs, calflops against flopwise's default FLOPs, FlopCounterMode against the "
        "`contractions` convention. Reasons were worked out from flopwise's per-operator breakdown "
        "(`report.by_operator()`); every number in them is a count of this table's models.\n",
        "## flopwise\n",
        "| model | MACs | FLOPs (default) | FLOPs (contractions) | unsupported |",
        "|---|--:|--:|--:|---|",
    ]
    for model, row in results.items():
        ref = row["flopwise"]
        lines.append(
            f"| {model} | {ref['macs']:,} | {ref['default']:,} | {ref['contractions']:,} | "
            f"{ref['unsupported'] or 'none'} |"
        )
    for tool, unit, against, _ in TOOLS:
        label = {
            "macs": "flopwise MACs",
            "default": "flopwise default FLOPs",
            "contractions": "flopwise contractions FLOPs",
        }[against]
        lines += [
            "",
            f"## {tool} ({unit}, against {label})\n",
            f"| model | {tool} | flopwise | why they differ |",
            "|---|--:|--:|---|",
        ]
        for model, row in results.items():
            expected = row["flopwise"][against]
            value = row[tool]
            lines.append(
                f"| {model} | {_cell(value, expected)} | {expected:,} | {_reason(tool, model, value, expected)} |"
            )
        general = REASONS.get((tool, "*"))
        if general:
            lines.append(f"\nIn general: {general}.")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    results = measure()
    text = render(results)
    print(text)
    if "--no-write" not in argv:  # the Ultralytics section at the end is bench/yolo_info.py's: kept as it is
        _, mark, kept = PAGE.read_text().partition("<!-- ultralytics: written by bench/yolo_info.py -->")
        PAGE.write_text(text + (f"\n{mark}{kept}" if mark else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
