"""pandas DataFrames of a report (pandas is an optional dependency: `pip install flopwise[dataframe]`)."""

from __future__ import annotations

from typing import Any

from ..report.report import Report
from .rows import MODULE_COLUMNS, OPERATOR_COLUMNS, module_records, operator_records


def to_dataframe(report: Report, depth: int | None = None, by: str = "module") -> Any:
    """One row per module (`by="module"`, indexed by qualified name) or per aten operator (`by="operator"`)."""
    try:
        import pandas as pd
    except ImportError:
        raise ImportError("Report.to_dataframe() needs pandas: pip install pandas (or flopwise[dataframe])") from None
    if by == "module":
        return pd.DataFrame(module_records(report, depth), columns=list(MODULE_COLUMNS)).set_index("module")
    if by == "operator":
        return pd.DataFrame(operator_records(report), columns=list(OPERATOR_COLUMNS)).set_index("operator")
    raise ValueError(f"to_dataframe: by must be 'module' or 'operator', got {by!r}")
