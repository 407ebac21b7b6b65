"""What one count runs with, built once before the model runs and read, never set, by the dispatch mode."""

from __future__ import annotations

from dataclasses import dataclass

from ..core.conventions import Convention
from ..formulas.registry import Formula
from ..shapes_only.values import Values
from ..shortcuts.replay import Replicas
from ..symbolic.trace import Trace
from .restore import StateGuard


@dataclass(frozen=True)
class RunState:
    convention: Convention
    overrides: dict[str, Formula | None]  # op name → its formula for this count (None: ignored)
    guard: StateGuard | None = None  # real mode: parameters and buffers written in place, put back afterwards
    values: Values | None = None  # shape-only modes: the real values of tensors computed from the inputs alone
    replicas: Replicas | None = None  # shape-only modes with shortcuts: repeated blocks replayed, the memo
    trace: Trace | None = None  # a run with symbolic sizes (symbolic/trace.py)
    notes: tuple[str, ...] = ()  # warnings known before the run (how the count was set up)
