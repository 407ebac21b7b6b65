"""flopwise: exact MACs, FLOPs, parameters and bytes moved of any PyTorch model, per module and per operator."""

from __future__ import annotations

import os as _os
import sys as _sys
from typing import TYPE_CHECKING, Any

from .core.version import __version__ as __version__


def _starting_the_command_line() -> bool:
    """True while the `flopwise` console script or `python -m flopwise` starts. The root then imports the public API
    on first use instead of at once, so that `flopwise --help` answers without importing torch; the command's own
    modules import what they run. Everywhere else (`import flopwise` in a program) the API is imported here."""
    argv0 = _sys.argv[0] if _sys.argv else ""
    if _os.path.basename(argv0) in ("flopwise", "flopwise.exe", "flopwise-script.py"):
        return True
    orig = getattr(_sys, "orig_argv", [])
    return argv0 == "-m" and "-m" in orig and orig[orig.index("-m") + 1 :][:1] == ["flopwise"]


def _import_api() -> None:
    """The public API, imported into the package; importing render and train also registers the renderers as views of
    Report and step="train" with count() and counting()."""
    from . import parallel, render, train  # noqa: F401
    from .core.conventions import PRESETS, Convention  # noqa: F401
    from .core.cost import Cost, Flops, Term, Work  # noqa: F401
    from .counter import count, counting  # noqa: F401
    from .explanation import explain  # noqa: F401
    from .formulas.registry import formula, zero_cost  # noqa: F401
    from .hardware import measure  # noqa: F401
    from .llm import count_generate  # noqa: F401
    from .report.report import ModuleRow, Report  # noqa: F401
    from .train import Monitor  # noqa: F401

    api = {**locals(), "CONVENTIONS": PRESETS}
    globals().update({name: api[name] for name in __all__})


if TYPE_CHECKING:
    from .core.conventions import PRESETS as CONVENTIONS
    from .core.conventions import Convention
    from .core.cost import Cost, Flops, Term, Work
    from .counter import count, counting
    from .explanation import explain
    from .formulas.registry import formula, zero_cost
    from .hardware import measure
    from .llm import count_generate
    from .report.report import ModuleRow, Report
    from .train import Monitor


def __getattr__(name: str) -> Any:
    """The public API on first use, where the command line's start left it out (see _starting_the_command_line)."""
    if name not in __all__:
        raise AttributeError(f"module 'flopwise' has no attribute {name!r}")
    _import_api()
    return globals()[name]


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

if not _starting_the_command_line():
    _import_api()
