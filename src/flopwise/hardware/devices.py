"""Peak FLOP/s per dtype and memory bandwidth of common accelerators: data, one source per figure.

Figures are the vendors' dense (not 2:4-sparse) peaks at boost clock, in TFLOP/s, and the memory bandwidth
in GB/s (10⁹ bytes/s). A dtype a device's sheet does not state is absent, and absent means unknown: no
figure is ever derived from a neighbouring device or dtype. Names are matched against
`torch.cuda.get_device_name()` by pattern; a name that matches no pattern is an unknown device.

Keys of `tflops`: "float64" (FP64 tensor/matrix units where the sheet has them), "float32" (CUDA cores /
vector units), "tf32" (float32 matmuls with TF32 allowed), "float16", "bfloat16" (tensor/matrix units, FP32
accumulate), "float8", "int8" (TOPS).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class DeviceSpec:
    name: str
    patterns: tuple[str, ...]  # regular expressions matched against the device name torch reports
    tflops: dict[str, float]
    bandwidth_gbs: float
    source: str  # where every figure of this row comes from
    notes: str = ""
    aliases: tuple[str, ...] = field(default=())


_A100_SHEET = "NVIDIA A100 Tensor Core GPU datasheet (nvidia.com/content/dam/en-zz/Solutions/Data-Center/a100/pdf/nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf)"  # noqa: E501
_H100_SHEET = (
    "NVIDIA H100 Tensor Core GPU datasheet (resources.nvidia.com/en-us-tensor-core/nvidia-tensor-core-gpu-datasheet)"  # noqa: E501
)
_A100 = {"float64": 19.5, "float32": 19.5, "tf32": 156.0, "float16": 312.0, "bfloat16": 312.0, "int8": 624.0}
_H100_SXM = {
    "float64": 67.0,
    "float32": 67.0,
    "tf32": 494.7,
    "float16": 989.4,
    "bfloat16": 989.4,
    "float8": 1978.9,
    "int8": 1978.9,
}

DEVICES: tuple[DeviceSpec, ...] = (
    DeviceSpec("A100-SXM4-80GB", (r"A100[- ]SXM4?[- ]80GB",), _A100, 2039.0, _A100_SHEET),
    DeviceSpec("A100-SXM4-40GB", (r"A100[- ]SXM4?[- ]40GB",), _A100, 1555.0, _A100_SHEET),
    DeviceSpec("A100-PCIe-80GB", (r"A100 80GB PCIe", r"A100[- ]PCIE[- ]80GB"), _A100, 1935.0, _A100_SHEET),
    DeviceSpec("A100-PCIe-40GB", (r"A100[- ]PCIE[- ]40GB",), _A100, 1555.0, _A100_SHEET),
    DeviceSpec("H100-SXM", (r"H100 80GB HBM3$", r"H100 SXM"), _H100_SXM, 3350.0, _H100_SHEET),
    DeviceSpec(
        "H100-PCIe",
        (r"H100 PCIe",),
        {
            "float64": 51.0,
            "float32": 51.0,
            "tf32": 378.0,
            "float16": 756.0,
            "bfloat16": 756.0,
            "float8": 1513.0,
            "int8": 1513.0,
        },
        2000.0,
        _H100_SHEET,
    ),
    DeviceSpec(
        "H200-SXM",
        (r"^NVIDIA H200$", r"H200 SXM", r"H200 141GB HBM3e$"),
        _H100_SXM,  # same Hopper die and clocks as H100 SXM; only the memory differs
        4800.0,
        "NVIDIA H200 product page and datasheet (nvidia.com/en-us/data-center/h200/)",
    ),
    DeviceSpec(
        "L4",
        (r"NVIDIA L4$",),
        {"float32": 30.3, "tf32": 60.0, "float16": 121.0, "bfloat16": 121.0, "float8": 242.5, "int8": 242.5},
        300.0,
        "NVIDIA L4 Tensor Core GPU datasheet (nvidia.com/en-us/data-center/l4/); sheet gives sparse figures, halved",
    ),
    DeviceSpec(
        "L40S",
        (r"L40S",),
        {"float32": 91.6, "tf32": 183.0, "float16": 362.05, "bfloat16": 362.05, "float8": 733.0, "int8": 733.0},
        864.0,
        "NVIDIA L40S GPU datasheet (nvidia.com/en-us/data-center/l40s/); sheet gives sparse figures, halved",
    ),
    DeviceSpec(
        "A10",
        (r"NVIDIA A10$",),
        {"float32": 31.2, "tf32": 62.5, "float16": 125.0, "bfloat16": 125.0, "int8": 250.0},
        600.0,
        "NVIDIA A10 Tensor Core GPU datasheet (nvidia.com/en-us/data-center/products/a10-gpu/)",
    ),
    DeviceSpec(
        "V100-SXM2",
        (r"V100[- ]SXM2",),
        {"float64": 7.8, "float32": 15.7, "float16": 125.0},
        900.0,
        "NVIDIA Tesla V100 datasheet (images.nvidia.com/content/technologies/volta/pdf/volta-v100-datasheet-update-us-1165301-r5.pdf)",  # noqa: E501
    ),
    DeviceSpec(
        "T4",
        (r"Tesla T4",),
        {"float32": 8.1, "float16": 65.0, "int8": 130.0},
        320.0,
        "NVIDIA T4 Tensor Core GPU datasheet (nvidia.com/en-us/data-center/tesla-t4/)",
    ),
    DeviceSpec(
        "RTX-4090",
        (r"GeForce RTX 4090",),
        {"float32": 82.6, "tf32": 82.6, "float16": 165.2, "bfloat16": 165.2, "float8": 330.3, "int8": 660.6},
        1008.0,
        "NVIDIA Ada GPU Architecture whitepaper v2.1, Appendix A, Table 2 (GeForce RTX 4090); "
        "float16/bfloat16/float8 with FP32 accumulate",
    ),
    DeviceSpec(
        "MI300X",
        (r"MI300X",),
        {
            "float64": 163.4,
            "float32": 163.4,
            "tf32": 653.7,
            "float16": 1307.4,
            "bfloat16": 1307.4,
            "float8": 2614.9,
            "int8": 2614.9,
        },
        5300.0,
        "AMD Instinct MI300X data sheet (amd.com/en/products/accelerators/instinct/mi300/mi300x.html)",
    ),
    DeviceSpec(
        "TPU-v4",
        (),
        {"bfloat16": 275.0, "int8": 275.0},
        1200.0,
        "Google Cloud TPU v4 documentation (cloud.google.com/tpu/docs/v4)",
        notes="not reachable from torch device names; look up by key with peak_for('TPU-v4', …)",
    ),
    DeviceSpec(
        "TPU-v5e",
        (),
        {"bfloat16": 197.0, "int8": 394.0},
        819.0,
        "Google Cloud TPU v5e documentation (cloud.google.com/tpu/docs/v5e)",
        notes="not reachable from torch device names; look up by key",
    ),
)


def find_device(name: str) -> DeviceSpec | None:
    """The table row for a device name (`torch.cuda.get_device_name()` or a row's own name); None if unknown."""
    for spec in DEVICES:
        if name.lower() == spec.name.lower() or any(re.search(p, name) for p in spec.patterns):
            return spec
    return None


def peak_key(dtype_name: str, tf32_allowed: bool) -> str:
    """The column a dtype's matmuls run at: float32 matmuls use TF32 units when torch allows them."""
    if dtype_name == "float32" and tf32_allowed:
        return "tf32"
    if dtype_name.startswith("float8"):
        return "float8"
    return dtype_name
