"""Counting conventions as data: how MACs and non-contraction work become FLOPs.

MACs never depend on the convention; FLOPs do. Every preset is one frozen object, so a number in a paper
or another tool can be lined up with flopwise by naming the convention it used.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .cost import Work


@dataclass(frozen=True)
class Convention:
    name: str
    description: str
    flops_per_mac: int = 2  # a MAC is a multiply and an add
    exact_dots: bool = False  # a k-term dot product is k multiplies and k−1 adds (2k−1), not 2k
    other_ops: bool = True  # count non-contraction FLOPs (activations, norms, softmax, residual adds…)
    skip: frozenset[str] = frozenset()  # kinds of non-contraction FLOPs left out, e.g. {"bias"}
    causal: bool = False  # count only the unmasked query–key pairs of causal attention (default: dense)

    def macs(self, work: Work) -> int:
        if self.causal and work.causal_macs is not None:
            return work.causal_macs.value
        return work.mac_count

    def flops(self, work: Work) -> int:
        total = self.flops_per_mac * self.macs(work)
        if self.exact_dots:
            total -= work.dots
        if self.other_ops:
            total += sum(f.term.value for f in work.flops if f.kind not in self.skip)
        return total

    def with_options(self, **changes: object) -> Convention:
        return replace(self, **changes)  # type: ignore[arg-type]


DEFAULT = Convention("default", "2 FLOPs per MAC plus every non-contraction op (activations, norms, adds, bias)")
CONTRACTIONS = Convention(
    "contractions",
    "FLOPs = 2 × MACs; matmuls, convolutions and attention only (the guides' totals, PaLM-style MFU, "
    "torch FlopCounterMode)",
    other_ops=False,
)
MAC_AS_FLOP = Convention(
    "mac", "FLOPs = MACs: what many vision papers call FLOPs (ResNet-50 ≈ 4.1 G)", flops_per_mac=1, other_ops=False
)
EXACT = Convention(
    "exact", "a k-term dot product is 2k−1 FLOPs (as the guides' linear formula), plus every other op", exact_dots=True
)
NO_BIAS = Convention("no-bias", "the default without bias adds", skip=frozenset({"bias"}))
FUSED_BN = Convention(
    "fused-bn",
    "the default with inference batch norm folded into the preceding convolution (costs nothing)",
    skip=frozenset({"bn_inference"}),
)

CAUSAL = Convention(
    "causal", "the default, with causal attention counting only the query–key pairs its mask keeps", causal=True
)

PRESETS: dict[str, Convention] = {
    c.name: c for c in (DEFAULT, CONTRACTIONS, MAC_AS_FLOP, EXACT, NO_BIAS, FUSED_BN, CAUSAL)
}


def resolve(convention: str | Convention) -> Convention:
    if isinstance(convention, Convention):
        return convention
    try:
        return PRESETS[convention]
    except KeyError:
        raise ValueError(
            f"unknown convention {convention!r}; expected one of {', '.join(PRESETS)} or a flopwise.Convention"
        ) from None
