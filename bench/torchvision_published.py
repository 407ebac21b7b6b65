"""flopwise's contraction MACs beside the GMACs torchvision publishes for each of its weights (`meta["_ops"]`).

    .venv/bin/python bench/torchvision_published.py [--only NAME,…] [--family detection,…]
    (`make torchvision-published`)

torchvision measures `_ops` with its own dispatch counter (its test/common_extended_utils.py): multiplications of
mm, addmm, bmm and convolution (quantized conv2d too), in GMACs rounded to 3 decimals, on the input its
preprocessing (`weights.transforms()`) makes of a 512×512 image — one 3×512×512 image for detection, 16 frames for
video, two frames for optical flow. This sweep builds each model with `weights=None` (never downloading), as its
builder would with those weights (auxiliary heads, image size, transformed input), makes the same input by running
the same transforms on a random 512×512 image, and compares `count(..., convention="contractions").macs`.

Classification, segmentation, video and optical-flow models are built on the meta device and counted shape-only;
quantized models are quantized for real (torchvision's own `quantize_model`, calibrated on a random image, for
fbgemm) and counted for real; detection models are counted for real with random weights: their proposals, and so the
MACs of R-CNN heads, depend on the trained weights (see `compares`), so for those only completeness is checked.

Prints one row per weights entry; exits 1 if a figure differs or a count is incomplete.
tests/test_torchvision_published.py runs a sample of these rows (all of them with FLOPWISE_TORCHVISION_PUBLISHED=all).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torchvision
from torchvision.models import get_model, get_model_weights, list_models

import flopwise

SIDE = 512  # torchvision measures on a 512×512 image
# detection models whose contractions do not depend on the data (no per-proposal head): their `_ops` applies
DENSE_DETECTORS = ("retinanet_", "fcos_", "ssd300_", "ssdlite320_")


@dataclass(frozen=True)
class Case:
    """One weights entry of one builder: what torchvision published for it, and how to build and feed it."""

    name: str
    weights: str  # the entry's name in its enum: IMAGENET1K_V1, COCO_V1, …
    family: str  # classification, quantization, segmentation, detection, video, optical_flow
    published: float  # meta["_ops"], GMACs

    @property
    def id(self) -> str:
        return f"{self.name}.{self.weights}"

    @property
    def compares(self) -> bool:
        """Whether flopwise's figure should equal the published one (not for R-CNN heads: see the module doc)."""
        return self.family != "detection" or self.name.startswith(DENSE_DETECTORS)

    @property
    def real(self) -> bool:
        """Counted for real: quantized tensors have no fake form; detection needs values (nms, score thresholds)."""
        return self.family in ("quantization", "detection")

    def entry(self) -> Any:
        return get_model_weights(self.name)[self.weights]


def family_of(weights: Any) -> str:
    parts = type(weights).__module__.split(".")  # torchvision.models[.detection].faster_rcnn
    return parts[2] if len(parts) > 3 else "classification"


def cases() -> list[Case]:
    """Every weights entry with a published `_ops`, in torchvision's order."""
    found = []
    for name in list_models():
        for entry in get_model_weights(name):
            if "_ops" in entry.meta:
                found.append(Case(name, entry.name, family_of(entry), float(entry.meta["_ops"])))
    return found


def builder_options(case: Case) -> dict[str, Any]:
    """The options the builder sets itself when given these weights (weights=None sets none of them)."""
    meta = case.entry().meta
    options: dict[str, Any] = {"weights": None}
    if case.family in ("detection", "segmentation"):
        options["weights_backbone"] = None
    if meta.get("categories") is not None and case.family != "optical_flow":
        options["num_classes"] = len(meta["categories"])
    if case.name.startswith(("fcn_", "deeplabv3_")):
        options["aux_loss"] = True  # the weights carry the auxiliary head, and eval runs it
    if case.name.startswith(("googlenet", "inception_v3", "quantized_googlenet", "quantized_inception_v3")):
        options.update(transform_input=True, aux_logits=True, init_weights=False)
    if case.name.startswith("vit_"):
        options["image_size"] = meta["min_size"][0]
    if case.name.startswith("maxvit_"):
        options["input_size"] = meta["min_size"]
    if case.name.startswith("keypointrcnn_"):
        options["num_keypoints"] = len(meta["keypoint_names"])
    if case.family == "quantization":
        options.update(quantize=True, backend="fbgemm")
    return options


@contextlib.contextmanager
def _engine_kept() -> Iterator[None]:
    """torchvision's quantize_model sets the global quantized engine; put it back."""
    engine = torch.backends.quantized.engine
    try:
        yield
    finally:
        torch.backends.quantized.engine = engine


def build(case: Case) -> torch.nn.Module:
    options = builder_options(case)
    with warnings.catch_warnings(), _engine_kept():
        warnings.simplefilter("ignore")
        if case.real:
            torch.manual_seed(0)
            return get_model(case.name, **options).eval()
        try:
            with torch.device("meta"):
                return get_model(case.name, **options).eval()
        except NotImplementedError:  # regnet computes its widths from tensor data while being built
            return get_model(case.name, **options).eval().to("meta")


def inputs(case: Case) -> tuple[Any, ...]:
    """The positional inputs torchvision measured on: its transforms applied to a random 512×512 image."""
    transforms = case.entry().transforms()
    generator = torch.Generator().manual_seed(0)
    if case.family == "detection":
        return ([transforms(torch.rand(3, SIDE, SIDE, generator=generator))],)
    if case.family == "optical_flow":
        frame = torch.rand(1, 3, SIDE, SIDE, generator=generator)
        return tuple(transforms(frame, frame))
    shape = (1, 16, 3, SIDE, SIDE) if case.family == "video" else (1, 3, SIDE, SIDE)
    return (transforms(torch.rand(*shape, generator=generator)),)


@dataclass(frozen=True)
class Row:
    case: Case
    macs: int
    unsupported: dict[str, int]
    seconds: float
    explained: str = ""  # for R-CNN models: the published figure as dense + P proposals + D detections

    @property
    def gmacs(self) -> float:
        return round(self.macs / 1e9, 3)

    @property
    def equal(self) -> bool:
        return self.gmacs == self.case.published

    @property
    def ok(self) -> bool:
        return not self.unsupported and (self.equal or not self.case.compares)


# R-CNN heads run once per proposal (the box head) and once per detection (mask or keypoint head)
_PER_DETECTION = {"mask_head": "mask_predictor", "keypoint_head": "keypoint_predictor"}


def _macs(module: torch.nn.Module, *shape: int) -> int:
    with torch.no_grad():
        return flopwise.count(module, torch.rand(*shape), convention="contractions").macs


def rcnn_parts(model: Any, r: flopwise.Report) -> tuple[int, int, int]:
    """(dense MACs, MACs per proposal, MACs per detection) of an R-CNN model counted as `r`: the dense part is the
    backbone, FPN and RPN, whatever the data; the box head runs on each proposal, a mask or keypoint head on each
    detection."""
    heads = model.roi_heads
    channels = model.backbone.out_channels
    size = heads.box_roi_pool.output_size
    size = size if isinstance(size, int) else size[0]
    per_proposal = _macs(heads.box_head, 1, channels, size, size)
    per_proposal += _macs(heads.box_predictor, 1, heads.box_predictor.cls_score.in_features)
    per_detection, per_detection_macs = 0, 0
    for head, predictor in _PER_DETECTION.items():
        if getattr(heads, head, None) is not None:
            pool = getattr(heads, head.replace("_head", "_roi_pool")).output_size
            pool = pool if isinstance(pool, int) else pool[0]
            hidden = _macs(getattr(heads, head), 1, channels, pool, pool)
            first = next(m for m in getattr(heads, predictor).modules() if isinstance(m, torch.nn.modules.conv._ConvNd))
            width = first.in_channels  # what the head hands its predictor
            per_detection = hidden + _macs(getattr(heads, predictor), 1, width, pool, pool)
            per_detection_macs = r[f"roi_heads.{head}"].macs + r[f"roi_heads.{predictor}"].macs
    dense = r.macs - r["roi_heads.box_head"].macs - r["roi_heads.box_predictor"].macs - per_detection_macs
    return dense, per_proposal, per_detection


def explain_published(case: Case, dense: int, per_proposal: int, per_detection: int) -> str:
    """The proposals P and detections D for which dense + P·per_proposal + D·per_detection rounds to the published
    figure: the counts torchvision's trained weights gave on its random image."""
    for detections in range(0, 101 if per_detection else 1):  # at most 100 detections per image
        rest = case.published * 1e9 - dense - detections * per_detection
        proposals = round(rest / per_proposal)
        total = dense + proposals * per_proposal + detections * per_detection
        if 0 <= proposals <= 2000 and round(total / 1e9, 3) == case.published:
            shown = f" + {detections} × {per_detection:,} per detection" if per_detection else ""
            return f"published = {dense:,} dense + {proposals} × {per_proposal:,} per proposal{shown}"
    return "published figure not explained by whole proposals and detections"


def count(case: Case) -> Row:
    start = time.perf_counter()
    model = build(case)
    with warnings.catch_warnings(), _engine_kept(), torch.no_grad():
        warnings.simplefilter("ignore")
        r = flopwise.count(model, inputs(case), mode="real" if case.real else "meta", convention="contractions")
        explained = ""
        if hasattr(model, "roi_heads"):
            explained = explain_published(case, *rcnn_parts(model, r))
    return Row(case, r.macs, dict(r.unsupported), time.perf_counter() - start, explained)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="comma-separated builder names")
    parser.add_argument("--family", default="", help="comma-separated families (classification, detection, …)")
    args = parser.parse_args(argv)
    only = {n for n in args.only.split(",") if n}
    families = {f for f in args.family.split(",") if f}
    failed = 0
    print(f"torchvision {torchvision.__version__}, torch {torch.__version__}: GMACs of contractions, 512×512 image")
    print(f"{'model.weights':<58} {'family':<14} {'published':>10} {'flopwise':>10} {'MACs':>16}  result")
    for case in cases():
        if (only and case.name not in only) or (families and case.family not in families):
            continue
        try:
            row = count(case)
        except Exception as error:  # one failing model does not stop the sweep
            failed += 1
            print(f"{case.id:<58} {case.family:<14} {case.published:>10} {'':>10} {'':>16}  ERROR {error!r:.200}")
            continue
        result = "equal" if row.equal else "differs" if row.case.compares else "complete (heads depend on weights)"
        if row.unsupported:
            result = f"UNSUPPORTED {row.unsupported}"
        failed += not row.ok
        print(
            f"{case.id:<58} {case.family:<14} {case.published:>10} {row.gmacs:>10} {row.macs:>16,}  {result}"
            f"  ({row.seconds:.1f} s)",
            flush=True,
        )
        if row.explained:
            print(f"{'':<58} {row.explained}")
    print(f"{failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
