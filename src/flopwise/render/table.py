"""The plain-text table printed by `print(report)`: module tree × params, MACs, FLOPs, share, bytes."""

from __future__ import annotations

from collections.abc import Callable

from ..report.report import Report
from .grid import Column, left, right, text_table
from .rows import incomplete_lines, memory_lines
from .tree import DENSITY_HEADERS, TreeRow, density_cells, shapes_text, share, shows_density, tree_rows
from .units import binary_bytes, count_text, si

COLUMNS = left("Module", "Type") + right("Params", "MACs", "FLOPs", "% FLOPs", "Bytes moved")
SHAPE_COLUMNS = left("Input shape", "Output shape")


def with_shape_columns(columns: list[Column]) -> list[Column]:
    return [*columns[:2], *SHAPE_COLUMNS, *columns[2:]]


def with_shapes(cells: tuple[str, ...], row: TreeRow) -> tuple[str, ...]:
    """The row's cells with its input and output shapes after the type (`--shapes`); blank on a self row."""
    shapes = (
        ("", "")
        if row.is_self
        else (shapes_text(row.input_shapes, row.calls), shapes_text(row.output_shapes, row.calls))
    )
    return (*cells[:2], *shapes, *cells[2:])


def module_grid(
    report: Report, depth: int | None, shapes: bool, name: Callable[[TreeRow], str]
) -> tuple[list[Column], list[tuple[str, ...]]]:
    """The module table's columns and rows, text and Markdown alike: `name` writes a row's first cell; density
    columns when pruning is visible (`shows_density`), shape columns with `--shapes`."""
    tree = tree_rows(report, depth)
    sparse = shows_density(report)
    rows: list[tuple[str, ...]] = [
        (
            name(row),
            row.type,
            count_text(row.params),
            si(row.macs),
            si(row.flops),
            share(row.flops, report.flops),
            binary_bytes(row.cost.bytes),
            *(density_cells(row) if sparse else ()),
        )
        for row in tree
    ]
    columns = COLUMNS + (right(*DENSITY_HEADERS) if sparse else [])
    if shapes:
        return with_shape_columns(columns), [with_shapes(cells, row) for cells, row in zip(rows, tree, strict=True)]
    return columns, rows


def render_table(report: Report, depth: int | None = 2, shapes: bool = False) -> str:
    out = text_table(*module_grid(report, depth, shapes, lambda row: "  " * row.depth + row.label))
    out.append("")
    out.append(f"inputs: {report.inputs or '(none)'}")
    out.append(f"convention: {report.convention.name} — {report.convention.description}")
    out.append(
        f"total: {report.macs:,} MACs, {report.flops:,} FLOPs, {report.params:,} params "
        f"({report.trainable_params:,} trainable, {report.frozen_params:,} frozen), "
        f"{report.bytes_read:,} bytes read, {report.bytes_written:,} bytes written"
    )
    if shows_density(report) and report.effective_macs is not None and report.macs:
        out.append(
            f"effective: {report.effective_macs:,} MACs once multiplications by zero weights are skipped "
            f"({report.effective_macs / report.macs:.1%} of the dense count)"
        )
    out += memory_lines(report)
    out += phase_lines(report)
    if not report.complete:
        out += ["", *incomplete_lines(report)]
    if report.warnings:
        out.append("")
        out.append("warnings:")
        out.extend(f"  {warning}" for warning in report.warnings)
    return "\n".join(out)


def phase_lines(report: Report) -> list[str]:
    """A training step: its total per phase, and what frozen parameters saved backward."""
    if not report.phases:
        return []
    parts = [f"{phase} {cost.macs:,} MACs / {cost.flops:,} FLOPs" for phase, cost in report.phases.items()]
    lines = ["phases: " + "; ".join(parts)]
    saved = report.frozen_savings
    if saved is not None:
        lines.append(
            f"frozen parameters: backward skipped {saved.macs:,} MACs / {saved.flops:,} FLOPs "
            f"(their weight gradients, and input gradients only they needed): {report.frozen_params:,} "
            "frozen parameters"
        )
    return lines
