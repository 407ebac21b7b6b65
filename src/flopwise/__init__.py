"""flopwise: exact MACs, FLOPs, parameters and bytes moved of any PyTorch model, per module and per operator."""

from . import render  # noqa: F401 - registers the renderers as views of Report
from .core.conventions import PRESETS as CONVENTIONS
from .core.conventions import Convention
from .core.cost import Cost, Flops, Term, Work
from .core.version import __version__ as __version__
from .counter import count, counting
from .explanation import explain
from .formulas.registry import formula, zero_cost
from .hardware import measure
from .llm import count_generate
from .report.report import ModuleRow, Report
from .train import Monitor  # importing flopwise.train also registers step="train" with count() and counting()

__all__ = [
    "CONVENTIONS",
    "Convention",
    "Cost",
    "Flops",
    "ModuleRow",
    "Monitor",
    "Report",
    "Term",
    "Work",
    "count",
    "count_generate",
    "counting",
    "explain",
    "formula",
    "measure",
    "zero_cost",
]
