"""Renderers turn a Report into text or data; counting itself never prints.

Importing this package registers each renderer as a view of `Report` (`report.table()`, `to_dict()`, …).
`grid` is the one table layout every text and Markdown table uses.
"""

from ..report.report import Report
from .console import rich_table
from .csv import report_csv
from .data import report_to_dict
from .frame import to_dataframe
from .html_report import report_html
from .markdown import render_markdown
from .notebook import render_html
from .table import render_table

Report.register_view("table", render_table)
Report.register_view("dict", report_to_dict)
Report.register_view("csv", report_csv)
Report.register_view("markdown", render_markdown)
Report.register_view("dataframe", to_dataframe)
Report.register_view("rich", rich_table)
Report.register_view("html", render_html)  # the small notebook table (_repr_html_)
Report.register_view("html_report", report_html)  # the page to share: report.to_html()
