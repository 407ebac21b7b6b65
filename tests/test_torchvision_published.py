"""flopwise's contraction MACs equal the GMACs torchvision publishes for its weights (`weights.meta["_ops"]`).

torchvision measures `_ops` with its own dispatch counter on the input its preprocessing makes of a 512×512 image
(bench/torchvision_published.py says how, and builds every model the way its builder would with those weights,
from `weights=None`, never downloading). Here a sample across the families runs in `make test`; every weights
entry runs with FLOPWISE_TORCHVISION_PUBLISHED=all (`make torchvision-published`, part of `make zoo`).

Detection: RetinaNet, FCOS, SSD and SSDlite have no per-proposal head, so their figure is checked like the others.
An R-CNN's box head runs once per proposal and its mask or keypoint head once per detection: how many depends on
the trained weights, which a count with `weights=None` has not got. Those models must count completely, and their
published figure must be the count's dense part plus whole proposals and detections at the count's per-RoI MACs
(Faster R-CNN MobileNetV3-320: the dense part alone, the trained RPN keeping no proposal on a random image).
"""

from __future__ import annotations

import os
import sys
import warnings

import pytest
import torch
import torchvision

import flopwise
from flopwise.shapes_only.values import NeedsData

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bench"))
import torchvision_published as published  # noqa: E402

ALL = os.environ.get("FLOPWISE_TORCHVISION_PUBLISHED") == "all"
SAMPLE = {  # one or two small models of each family, and the builder options that change the architecture
    "resnet18.IMAGENET1K_V1",
    "mobilenet_v3_small.IMAGENET1K_V1",
    "googlenet.IMAGENET1K_V1",
    "vit_b_16.IMAGENET1K_SWAG_E2E_V1",  # image_size 384 from the weights
    "lraspp_mobilenet_v3_large.COCO_WITH_VOC_LABELS_V1",
    "fcn_resnet50.COCO_WITH_VOC_LABELS_V1",  # aux head
    "r3d_18.KINETICS400_V1",
    "raft_small.C_T_V2",
    "quantized_mobilenet_v3_large.IMAGENET1K_QNNPACK_V1",
    "ssdlite320_mobilenet_v3_large.COCO_V1",
    "fasterrcnn_mobilenet_v3_large_320_fpn.COCO_V1",
}
CASES = [case for case in published.cases() if ALL or case.id in SAMPLE]


def test_the_sample_covers_every_family() -> None:
    every = published.cases()
    assert len(every) >= 160  # 166 weights entries with `_ops` in torchvision 0.29
    assert (
        {c.family for c in CASES}
        == {c.family for c in every}
        == {"classification", "quantization", "segmentation", "detection", "video", "optical_flow"}
    )


@pytest.mark.parametrize("case", [c for c in CASES if c.compares], ids=lambda c: c.id)
def test_contraction_macs_equal_the_published_figure(case: published.Case) -> None:
    row = published.count(case)
    assert row.unsupported == {}
    assert row.gmacs == case.published, f"{case.id}: flopwise {row.macs:,} MACs, torchvision {case.published} G"


@pytest.mark.parametrize("case", [c for c in CASES if not c.compares], ids=lambda c: c.id)
def test_rcnn_models_count_completely_and_their_figure_is_whole_proposals(case: published.Case) -> None:
    row = published.count(case)
    assert row.unsupported == {}
    assert row.explained.startswith("published = "), row.explained


def test_the_rcnn_figure_of_faster_rcnn_mobilenet_320_is_its_dense_part() -> None:
    case = next(c for c in published.cases() if c.id == "fasterrcnn_mobilenet_v3_large_320_fpn.COCO_V1")
    model = published.build(case)
    with torch.no_grad():
        r = flopwise.count(model, published.inputs(case), convention="contractions")
    dense, per_proposal, per_detection = published.rcnn_parts(model, r)
    # box head per proposal: TwoMLPHead 256·7·7 → 1024 → 1024, then 1024 → 91 classes and 1024 → 4·91 boxes
    assert per_proposal == 256 * 7 * 7 * 1024 + 1024 * 1024 + 1024 * 91 + 1024 * 4 * 91 == 14_359_552
    assert per_detection == 0  # no mask or keypoint head
    assert r.macs == dense + 150 * per_proposal  # random weights: rpn_post_nms_top_n_test = 150 proposals kept
    assert round(dense / 1e9, 3) == case.published == 0.719  # trained weights: none above rpn_score_thresh


FASTER_RCNN_INPUT = ([torch.rand(3, 512, 512)],)


def _faster_rcnn() -> torch.nn.Module:
    return torchvision.models.detection.fasterrcnn_mobilenet_v3_large_320_fpn(
        weights=None, weights_backbone=None
    ).eval()


def test_faster_rcnn_counts_completely_in_real_and_fake_mode() -> None:
    model = _faster_rcnn()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        real = flopwise.count(model, FASTER_RCNN_INPUT)
        fake = flopwise.count(model, FASTER_RCNN_INPUT, mode="fake")
    assert real.complete and fake.complete, (real.unsupported, fake.unsupported)
    assert {"torchvision.nms", "torchvision.roi_align"} <= set(real.operator_calls())
    # the proposals depend on the weights: the fake count meets a data-dependent op and counts again for real
    assert any("counting again in real mode" in w for w in fake.warnings), fake.warnings
    assert (fake.macs, fake.flops, fake.bytes_read, fake.bytes_written) == (
        real.macs,
        real.flops,
        real.bytes_read,
        real.bytes_written,
    )


def test_faster_rcnn_on_the_meta_device_says_it_needs_weights_in_one_line() -> None:
    with torch.device("meta"):
        model = _faster_rcnn()
    with warnings.catch_warnings(), pytest.raises(NeedsData) as caught:
        warnings.simplefilter("ignore")
        flopwise.count(model, FASTER_RCNN_INPUT, mode="meta")
    message = str(caught.value)
    assert "\n" not in message and "needs a value computed from the weights" in message and "'rpn'" in message
