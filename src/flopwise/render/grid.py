"""The one table engine: every plain-text and Markdown table in flopwise is laid out here.

A table is a list of `Column`s (a header and an alignment) and rows of already formatted cells. Renderers
decide what goes in the cells; this module only decides where the cells go.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    header: str
    align: str = "right"  # "left" for names and types, "right" for numbers


def left(*headers: str) -> list[Column]:
    return [Column(h, "left") for h in headers]


def right(*headers: str) -> list[Column]:
    return [Column(h, "right") for h in headers]


def text_table(columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> list[str]:
    """Header, a rule, then the rows; each column as wide as its widest cell, two spaces between columns."""
    widths = [max([len(c.header), *(len(row[i]) for row in rows)]) for i, c in enumerate(columns)]

    def line(cells: Sequence[str]) -> str:
        padded = [
            cell.ljust(width) if column.align == "left" else cell.rjust(width)
            for cell, width, column in zip(cells, widths, columns, strict=True)
        ]
        return "  ".join(padded).rstrip()

    return [line([c.header for c in columns]), line(["─" * w for w in widths]), *(line(row) for row in rows)]


def markdown_table(columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> list[str]:
    """A GitHub-flavoured Markdown table; `|` inside a cell is escaped."""

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    rule = "|" + "|".join(":--" if c.align == "left" else "--:" for c in columns) + "|"
    return [line([c.header for c in columns]), rule, *(line(row) for row in rows)]
