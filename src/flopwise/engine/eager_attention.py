"""Attention written out in ops (eager attention), under attention="masked": the pairs its mask keeps.

Many models compute attention without SDPA: scores = Q·Kᵀ (a batched matmul), scaled or soft-capped, a mask added
(additive: −inf or the dtype's lowest value where a pair is dropped) or applied (`masked_fill`, `where`), a softmax
over the keys, then probabilities·V. This follows that pattern through the ops, whatever module writes it: a
contraction's output is a score tensor; elementwise ops and views carry it on; a mask whose values are known (real
tensors, or values followed from the inputs) marks the pairs it keeps; softmax makes probabilities; the contraction
that multiplies them by V is the second one. Both contractions then count only the kept pairs (`Work.masked_macs`).
A mask whose values are unknown leaves the attention dense, with a warning.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import torch
from torch.utils._python_dispatch import _disable_current_modes
from torch.utils.weak import WeakTensorKeyDictionary

from ..core.conventions import Convention
from ..core.cost import Cost, OpCall, Term
from ..shapes_only.values import Values, known_value

CONTRACTIONS = {"aten.bmm", "aten.mm", "aten.matmul"}
SOFTMAX = {"aten._softmax", "aten._safe_softmax", "aten.softmax"}
# ops that carry scores on unchanged in layout: views, casts, scaling, soft-capping, dropout
CARRY = {
    "aten.view",
    "aten._unsafe_view",
    "aten.reshape",
    "aten.expand",
    "aten.clone",
    "aten.contiguous",
    "aten._to_copy",
    "aten.to",
    "aten.mul",
    "aten.div",
    "aten.tanh",
    "aten.native_dropout",
    "aten.dropout",
    "aten.alias",
    "aten.detach",
    "aten.unsqueeze",
    "aten.squeeze",
}
UNKNOWN_MASK = "eager attention: the values of its mask are unknown here; its pairs are counted dense"


class Scores(NamedTuple):
    call: int  # index of the Q·Kᵀ contraction among the count's calls
    dim: int  # its contraction width E
    keep: torch.Tensor | None  # the pairs kept (bool, broadcastable to the scores), None when no mask applied yet
    probabilities: bool  # after the softmax over keys
    unknown: bool  # a mask was applied whose values are unknown
    kept: int | None = None  # the pairs kept, counted at the softmax (None: no mask, every pair)


class EagerAttention:
    """The score tensors of one count's eager attention (see the module docstring)."""

    def __init__(self, convention: Convention, values: Values | None, warnings: list[str]) -> None:
        self.convention, self.values, self.warnings = convention, values, warnings
        self.tracked: WeakTensorKeyDictionary = WeakTensorKeyDictionary()

    def after(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any, calls: list[OpCall]) -> None:
        """After an op was recorded (its record is `calls[-1]`)."""
        first = args[0] if args and isinstance(args[0], torch.Tensor) else None
        scores = self._get(first)
        if name in CONTRACTIONS:
            if scores is not None and scores.probabilities:
                self._finish(scores, calls)
            elif isinstance(out, torch.Tensor) and out.dim() >= 2:
                self._set(
                    out, Scores(len(calls) - 1, int(first.shape[-1]) if first is not None else 0, None, False, False)
                )
            return
        if scores is None and name == "aten.add" and len(args) > 1:
            scores = self._get(args[1])
            if scores is not None:  # mask + scores
                args = (args[1], args[0], *args[2:])
        if name == "aten.where" and len(args) == 3:  # where(condition, scores, −inf) or where(condition, −inf, scores)
            scores = self._get(args[1]) or self._get(args[2])
        if scores is None or scores.probabilities and name not in CARRY:
            return
        result = out[0] if isinstance(out, tuple) else out
        if not isinstance(result, torch.Tensor):
            return
        if name in CARRY:
            self._set(result, scores)
        elif name in SOFTMAX and first is not None and _over_last(args, first):
            kept = _kept(scores.keep, tuple(int(d) for d in first.shape)) if scores.keep is not None else None
            self._set(result, scores._replace(probabilities=True, kept=kept))
        elif name in ("aten.add", "aten.sub", "aten.masked_fill", "aten.where"):
            masked = self._masked(name, args, scores)
            if masked is not None:
                self._set(result, masked)

    def _masked(self, name: str, args: tuple[Any, ...], scores: Scores) -> Scores | None:
        """The scores after a mask op, or None when the op is not a mask (a bias of values, a fill that keeps)."""
        if name in ("aten.add", "aten.sub"):
            mask = args[1]
            if not isinstance(mask, torch.Tensor) or mask.dim() == 0:
                return scores  # a scalar shift changes no pair
            value = known_value(mask, self.values)
            if value is None:
                return scores._replace(unknown=True)
            with _disable_current_modes():
                keep = value > torch.finfo(value.dtype).min if value.is_floating_point() else None
            return scores._replace(keep=_and(scores.keep, keep)) if keep is not None else None
        if name == "aten.masked_fill":
            mask, fill = args[1], args[2]
            if not _dropping(fill, self.values):
                return None
            value = known_value(mask, self.values)
            if value is None:
                return scores._replace(unknown=True)
            with _disable_current_modes():
                return scores._replace(keep=_and(scores.keep, ~value.bool()))
        condition, first, second = args
        kept_where_true = self._get(first) is not None
        if not _dropping(second if kept_where_true else first, self.values):
            return None
        value = known_value(condition, self.values)
        if value is None:
            return scores._replace(unknown=True)
        with _disable_current_modes():
            keep = value.bool() if kept_where_true else ~value.bool()
            return scores._replace(keep=_and(scores.keep, keep))

    def _finish(self, probabilities: Scores, calls: list[OpCall]) -> None:
        """The probabilities·V contraction (the last call) and Q·Kᵀ count the kept pairs only."""
        if probabilities.unknown:
            if UNKNOWN_MASK not in self.warnings:
                self.warnings.append(UNKNOWN_MASK)
            return
        kept = probabilities.kept
        if kept is None:
            return  # no mask: every pair is computed
        pv = calls[-1]
        width = pv.shapes[1][-1] if len(pv.shapes) > 1 and pv.shapes[1] else 0
        calls[-1] = self._with_pairs(pv, kept, int(width), "E_v")
        qk = calls[probabilities.call]
        calls[probabilities.call] = self._with_pairs(qk, kept, probabilities.dim, "E")

    def _with_pairs(self, call: OpCall, kept: int, width: int, letter: str) -> OpCall:
        note = f"dense: every query–key pair is counted; attention='masked' counts the K = {kept:,} pairs kept"
        work = dataclasses.replace(call.work, masked_macs=Term(f"K·{letter}", **{"K": kept, letter: width}), note=note)
        cost = Cost(
            self.convention.macs(work), self.convention.flops(work), call.cost.bytes_read, call.cost.bytes_written
        )
        return call._replace(work=work, cost=cost)

    def _get(self, t: Any) -> Scores | None:
        if not isinstance(t, torch.Tensor):
            return None
        found = self.tracked.get(t)  # type: ignore[no-untyped-call]
        return found if isinstance(found, Scores) else None

    def _set(self, t: torch.Tensor, scores: Scores) -> None:
        self.tracked[t] = scores


def _over_last(args: tuple[Any, ...], x: torch.Tensor | None) -> bool:
    dim = args[1] if len(args) > 1 and isinstance(args[1], int) else -1
    return x is not None and dim in (-1, x.dim() - 1)


def _dropping(fill: Any, values: Values | None) -> bool:
    """Whether a fill value drops a pair from the softmax: −inf, or at most the lowest value of float16."""
    if isinstance(fill, torch.Tensor):
        value = known_value(fill, values) if fill.numel() == 1 else None
        if value is None:
            return False
        with _disable_current_modes():
            fill = float(value.item())
    return isinstance(fill, (int, float)) and fill <= torch.finfo(torch.float16).min


def _and(keep: torch.Tensor | None, more: torch.Tensor) -> torch.Tensor:
    with _disable_current_modes():
        return more.cpu() if keep is None else keep & more.cpu()


def _kept(keep: torch.Tensor, shape: tuple[int, ...]) -> int:
    """Entries of `keep` broadcast to `shape` that are True: its own count times the copies broadcasting makes."""
    sizes = (1,) * (len(shape) - keep.dim()) + tuple(keep.shape)
    copies = math.prod(n for n, m in zip(shape, sizes, strict=True) if m == 1)
    with _disable_current_modes():
        return int(keep.sum()) * copies
