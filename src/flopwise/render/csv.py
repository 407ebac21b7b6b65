"""CSV: one row per module (or per operator), exact integers, ready for a spreadsheet or pandas."""

from __future__ import annotations

import csv
import io

from ..report.report import Report
from .rows import MODULE_COLUMNS, OPERATOR_COLUMNS, module_records, operator_records


def report_csv(report: Report, depth: int | None = None, per_operator: bool = False) -> str:
    return render_csv([report], depth=depth, per_operator=per_operator)


def render_csv(reports: list[Report], depth: int | None = None, per_operator: bool = False) -> str:
    """Rows of several reports share one header; the `model` column tells them apart."""
    columns = OPERATOR_COLUMNS if per_operator else MODULE_COLUMNS
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for report in reports:
        writer.writerows(operator_records(report) if per_operator else module_records(report, depth))
    return out.getvalue()
