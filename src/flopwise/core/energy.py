"""An ESTIMATE of energy from counts: energy per arithmetic op and per byte moved, by dtype. The one table of
these figures: `report.energy()` and `flopwise.measure` both use it.

Source: M. Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014, Figure 1.1.9
(45 nm process, 0.9 V). Its figures, in pJ per operation:

    add  : int8 0.03, int16 0.05, int32 0.1, fp16 0.4, fp32 0.9
    mult : int8 0.2, int32 3.1, fp16 1.1, fp32 3.7
    DRAM : 1.3–2.6 nJ per 64-bit access  →  162.5–325 pJ per byte

How the estimate is made: a MAC costs one multiply and one add; every other FLOP costs one add (the
elementary-function FLOP counts of the conventions already split exp, tanh… into several); every byte the
count says an op reads or writes costs one DRAM byte (an upper bound on traffic: caches and fusion keep
much of it on chip), given as a low–high range from the DRAM figure's range. Not in the source and so
marked as such: bfloat16 uses the fp16 figures (an 8-bit-mantissa multiplier is smaller, so this is high);
float64, float8, int4, int16, int64 and bool have no figure, and the arithmetic in them is refused rather than
guessed (`estimate` returns None; `estimate_by_dtype` keeps their DRAM bytes, which cost the same in any dtype, and
names what it left out).

Modern nodes (7 nm, 5 nm) spend several times less per op than 45 nm; this is an order-of-magnitude
estimate for comparing models and dtypes, not a measurement of any device's power.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .cost import Cost

SOURCE = "Horowitz, ISSCC 2014, Fig. 1.1.9 (45 nm, 0.9 V)"
PROCESS_NODE = "45 nm"
DRAM_PJ_PER_BYTE = (1300 / 8, 2600 / 8)  # 1.3–2.6 nJ per 64-bit access

# dtype → (add pJ, multiply pJ, note)
_PJ: dict[str, tuple[float, float, str]] = {
    "float32": (0.9, 3.7, ""),
    "float16": (0.4, 1.1, ""),
    "bfloat16": (0.4, 1.1, "bfloat16 not in the source: fp16 figures used (an upper bound)"),
    "int8": (0.03, 0.2, ""),
    "uint8": (0.03, 0.2, ""),
    "int32": (0.1, 3.1, ""),
}


@dataclass(frozen=True)
class Energy:
    """Joules for some work: arithmetic, and DRAM traffic as a (low, high) range."""

    compute_j: float
    memory_j: tuple[float, float]

    @property
    def total_j(self) -> tuple[float, float]:
        return (self.compute_j + self.memory_j[0], self.compute_j + self.memory_j[1])

    def __add__(self, other: Energy) -> Energy:
        return Energy(
            self.compute_j + other.compute_j,
            (self.memory_j[0] + other.memory_j[0], self.memory_j[1] + other.memory_j[1]),
        )


def energy_table() -> dict[str, tuple[float, float, str]]:
    """{dtype: (pJ per add, pJ per multiply, note)} — the figures the estimate uses."""
    return dict(_PJ)


def unsupported_reason(dtype: str) -> str | None:
    """Why no estimate can be made for `dtype`, or None when it can."""
    if dtype in _PJ:
        return None
    return f"{SOURCE} gives no figure for {dtype}; no energy estimate is made rather than a guess"


def _dram_j(nbytes: int) -> tuple[float, float]:
    low, high = (nbytes * pj * 1e-12 for pj in DRAM_PJ_PER_BYTE)
    return (low, high)


def estimate(cost: Cost, dtype: str) -> Energy | None:
    """Energy of `cost` in `dtype`; None when the source has no figure for the dtype."""
    if dtype not in _PJ:
        return None
    add_pj, mult_pj, _ = _PJ[dtype]
    other_flops = max(cost.flops - 2 * cost.macs, 0)  # FLOPs beyond the MACs' multiply-add pairs
    compute_pj = cost.macs * (mult_pj + add_pj) + other_flops * add_pj
    return Energy(compute_pj * 1e-12, _dram_j(cost.bytes))


@dataclass(frozen=True)
class EnergyEstimate:
    """An ESTIMATE of the joules of a count, per compute dtype (`report.energy()`): what the figures of `SOURCE`
    give, never a measurement. `left_out` names each dtype whose arithmetic has no figure (its bytes are in)."""

    by_dtype: dict[str, Energy]
    left_out: dict[str, str] = field(default_factory=dict)  # dtype → why its arithmetic is not in the estimate
    notes: tuple[str, ...] = ()  # assumptions of the table for the dtypes used (bfloat16 as fp16)
    source: str = SOURCE
    process_node: str = PROCESS_NODE

    @property
    def compute_j(self) -> float:
        return sum(e.compute_j for e in self.by_dtype.values())

    @property
    def memory_j(self) -> tuple[float, float]:
        return (sum(e.memory_j[0] for e in self.by_dtype.values()), sum(e.memory_j[1] for e in self.by_dtype.values()))

    @property
    def total_j(self) -> tuple[float, float]:
        """(low, high) joules: the arithmetic plus DRAM traffic at the low and high end of its figure."""
        return (self.compute_j + self.memory_j[0], self.compute_j + self.memory_j[1])

    @property
    def complete(self) -> bool:
        """Whether the arithmetic of every dtype is in the estimate."""
        return not self.left_out

    def __str__(self) -> str:
        low, high = self.total_j
        text = (
            f"ESTIMATE {low:.3g}–{high:.3g} J (arithmetic {self.compute_j:.3g} J, DRAM {self.memory_j[0]:.3g}–"
            f"{self.memory_j[1]:.3g} J; {self.source})"
        )
        return "; ".join([text, *self.notes, *self.left_out.values()])


def estimate_by_dtype(costs: dict[str, Cost]) -> EnergyEstimate:
    """The estimate of work split by compute dtype ({dtype: Cost}, as `report.by_dtype()` gives it). A dtype with
    no figure keeps its DRAM bytes; its arithmetic, if it has any, is left out and named in `left_out`."""
    by_dtype: dict[str, Energy] = {}
    left_out: dict[str, str] = {}
    for dtype, cost in costs.items():
        energy = estimate(cost, dtype)
        if energy is None:
            energy = Energy(0.0, _dram_j(cost.bytes))
            if cost.macs or cost.flops:
                left_out[dtype] = (
                    f"{dtype} arithmetic left out ({cost.macs:,} MACs, {cost.flops:,} FLOPs): "
                    f"{SOURCE} gives no figure for {dtype}"
                )
        by_dtype[dtype] = energy
    notes = tuple(_PJ[d][2] for d in costs if d in _PJ and _PJ[d][2])
    return EnergyEstimate(by_dtype, left_out, notes)
