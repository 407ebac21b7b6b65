"""Counting conventions as data: how MACs and non-contraction work become FLOPs.

MACs depend on the convention only through masked attention (`masked`, what `attention="masked"` sets: the
query–key pairs a mask keeps instead of the full score matrix); FLOPs depend on all of it. Every preset is one
frozen object, so a number in a paper or another tool can be lined up with flopwise by naming the convention it
used. `Convention.breakdown` is the one statement of the rule: the count sums its parts and the explanation
shows them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .cost import Term, Work

MAC_PART, DOTS_PART = "MACs", "dot products"  # the labels of the two parts that are not a kind of other work


@dataclass(frozen=True)
class Part:
    """One summand of a call's FLOPs: `per_mac` FLOPs per MAC, one less per dot product, or other work."""

    label: str  # MAC_PART, DOTS_PART, or the kind of non-contraction work ("bias", "softmax", …)
    value: int  # FLOPs, negative for the dot-product correction
    term: Term | None = None  # the MACs, or the formula of the other work; None for the dot products


@dataclass(frozen=True)
class Convention:
    name: str
    description: str
    flops_per_mac: int = 2  # a MAC is a multiply and an add
    exact_dots: bool = False  # a k-term dot product is k multiplies and k−1 adds (2k−1), not 2k
    other_ops: bool = True  # count non-contraction FLOPs (activations, norms, softmax, residual adds…)
    skip: frozenset[str] = frozenset()  # kinds of non-contraction FLOPs left out, e.g. {"bias"}
    masked: bool = False  # attention counts only the query–key pairs its mask keeps (default: dense, the guides')

    def macs_term(self, work: Work) -> Term | None:
        """The MACs counted: the pairs a mask keeps under masked attention, else all."""
        return work.masked_macs if self.masked and work.masked_macs is not None else work.macs

    @property
    def attention(self) -> str:
        return "masked" if self.masked else "dense"

    def macs(self, work: Work) -> int:
        term = self.macs_term(work)
        return term.value if term is not None else 0

    def counts(self, kind: str) -> bool:
        """Whether FLOPs of this kind of non-contraction work are counted."""
        return self.other_ops and kind not in self.skip

    def breakdown(self, work: Work) -> list[Part]:
        """The FLOPs of one call, part by part: per_mac·MACs, − dot products (exact), + each other kind."""
        parts = []
        macs = self.macs_term(work)
        if macs is not None and self.flops_per_mac:
            parts.append(Part(MAC_PART, self.flops_per_mac * macs.value, macs))
            if self.exact_dots and work.dots:  # a k-term dot product is k multiplies and k−1 adds
                parts.append(Part(DOTS_PART, -work.dots))
        parts += [Part(f.kind, f.term.value, f.term) for f in work.flops if self.counts(f.kind)]
        return parts

    def flops(self, work: Work) -> int:
        return sum(part.value for part in self.breakdown(work))

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

# Kept for users of the former name: the default convention with attention="masked" (any mask, not only causal).
CAUSAL = Convention(
    "causal",
    'the default with attention="masked": attention counts only the query–key pairs its mask keeps',
    masked=True,
)
ATTENTION = ("dense", "masked")


def with_attention(convention: Convention, attention: str) -> Convention:
    """The convention with attention counted "dense" (every query–key pair) or "masked" (the pairs kept)."""
    if attention not in ATTENTION:
        raise ValueError(f"attention must be one of {', '.join(ATTENTION)}, got {attention!r}")
    masked = attention == "masked"
    return convention if convention.masked == masked else convention.with_options(masked=masked)


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
