"""flopwise: exact MACs, FLOPs, parameters and bytes moved of any PyTorch model, per module and per operator."""

from . import render  # noqa: F401 - registers the renderers as views of Report
from .conventions import PRESETS as CONVENTIONS
from .conventions import Convention
from .cost import Cost, Flops, Term, Work
from .count import count, counting
from .explain import explain
from .llm import count_generate
from .measure import measure  # the function; `from flopwise.measure import …` still reaches the package
from .registry import formula, zero_cost
from .report import ModuleRow, Report
from .train import Monitor  # importing flopwise.train also registers step="train" with count() and counting()
from .version import __version__ as __version__

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
