"""Links between accelerators: bandwidth per GPU and per direction, and the latency a collective pays per step.

Bandwidths are the datasheets' figures, in GB/s (10⁹ bytes/s) one way: an NVLink figure quoted as a
bidirectional total per GPU is halved (what one step of a ring moves each way), a network port's Gb/s is divided
by 8, one port (NIC) per GPU as in NVIDIA's DGX and HGX systems. They are peaks; achieved bus bandwidth is lower
(nccl-tests shows 80–90 % of them on large messages), and `Link(..., bandwidth_gbs=…)` or `efficiency=` in
`estimate()` says so where it matters.

Latency: NCCL's own cost model for the ring algorithm and its Simple protocol (NVIDIA/nccl, src/graph/tuning.cc:
`baseLat` 8.4 µs per collective, `hwLat` per ring step 3.4 µs over NVLink, 5.7 µs over PCIe, 9.6 µs over the
network). A collective's time is then, with n ranks in its group and size S (local.py):

    t = base + steps·hop + S·factor / bandwidth

all-reduce: 2(n−1) steps, factor 2(n−1)/n; all-gather, reduce-scatter, all-to-all: n−1 steps, factor (n−1)/n;
send, recv, broadcast: one step, factor 1 (nccl-tests' PERFORMANCE.md: bus bandwidth = algorithm bandwidth ×
factor).
"""

from __future__ import annotations

from dataclasses import dataclass, field

NCCL_TUNING = "NCCL's ring/Simple cost model (NVIDIA/nccl src/graph/tuning.cc: baseLat 8.4 µs, hwLat per step)"
BASE_LATENCY_US = 8.4


@dataclass(frozen=True)
class Link:
    name: str
    bandwidth_gbs: float  # per GPU, one direction
    hop_latency_us: float  # per ring step
    source: str  # where the bandwidth comes from
    latency_source: str = NCCL_TUNING
    aliases: tuple[str, ...] = field(default=())


_H100 = "NVIDIA H100 Tensor Core GPU datasheet: NVLink 900 GB/s per GPU (bidirectional), halved"
LINKS: tuple[Link, ...] = (
    Link("NVLink4", 450.0, 3.4, _H100, aliases=("nvlink", "nvlink-h100", "h100")),
    Link(
        "NVLink3",
        300.0,
        3.4,
        "NVIDIA A100 Tensor Core GPU datasheet: NVLink 600 GB/s (bidirectional), halved",
        aliases=("nvlink-a100", "a100"),
    ),
    Link(
        "NVLink5",
        900.0,
        3.4,
        "NVIDIA DGX B200 datasheet: fifth-generation NVLink 1.8 TB/s per GPU (bidirectional), halved",
        aliases=("nvlink-b200", "b200"),
    ),
    Link(
        "InfiniBand-NDR",
        50.0,
        9.6,
        "NVIDIA ConnectX-7 datasheet: 400 Gb/s per port (NDR), one port per GPU",
        aliases=("ib", "ndr", "infiniband", "ib-ndr"),
    ),
    Link(
        "InfiniBand-HDR",
        25.0,
        9.6,
        "NVIDIA ConnectX-6 datasheet: 200 Gb/s per port (HDR), one port per GPU",
        aliases=("hdr", "ib-hdr"),
    ),
    Link(
        "Ethernet-400G",
        50.0,
        9.6,
        "IEEE 802.3bs-2017 (400GbE): 400 Gb/s per port, one port per GPU",
        aliases=("400gbe", "roce-400g"),
    ),
    Link(
        "Ethernet-100G",
        12.5,
        9.6,
        "IEEE 802.3 (100GbE): 100 Gb/s per port, one port per GPU",
        aliases=("100gbe", "ethernet"),
    ),
    Link(
        "PCIe-Gen5",
        64.0,
        5.7,
        "PCI-SIG PCI Express 5.0: 32 GT/s × 16 lanes, about 64 GB/s each way",
        aliases=("pcie5", "pcie"),
    ),
    Link(
        "PCIe-Gen4",
        32.0,
        5.7,
        "PCI-SIG PCI Express 4.0: 16 GT/s × 16 lanes, about 32 GB/s each way",
        aliases=("pcie4",),
    ),
)


def find_link(name: str | Link) -> Link:
    """A row of LINKS by name or alias (case-insensitive); a `Link` is returned as given (an override)."""
    if isinstance(name, Link):
        return name
    for link in LINKS:
        if name.lower() == link.name.lower() or name.lower() in link.aliases:
            return link
    raise ValueError(
        f"unknown link {name!r}; known: {', '.join(link.name for link in LINKS)}, or pass "
        "Link(name, bandwidth_gbs, hop_latency_us, source)"
    )


def steps_and_factor(kind: str, n: int) -> tuple[int, float]:
    """Ring steps and bus-bandwidth factor of a collective of `kind` over `n` ranks (module docstring)."""
    if n <= 1:
        return 0, 0.0
    if kind == "all_reduce":
        return 2 * (n - 1), 2 * (n - 1) / n
    if kind in ("all_gather", "reduce_scatter", "all_to_all"):
        return n - 1, (n - 1) / n
    return 1, 1.0


def seconds(kind: str, n: int, size: int, calls: int, link: Link, efficiency: float = 1.0) -> float:
    """Time of `calls` collectives of `kind` moving `size` bytes in all (each as the module docstring says)."""
    steps, factor = steps_and_factor(kind, n)
    if steps == 0 or calls == 0:
        return 0.0
    latency = calls * (BASE_LATENCY_US + steps * link.hop_latency_us) * 1e-6
    return latency + size * factor / (link.bandwidth_gbs * 1e9 * efficiency)
