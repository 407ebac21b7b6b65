"""The module tree as table rows, with a "(self)" row wherever a module does work outside its children.

With the self rows, the rows directly under a module add up to it: the guides' SimpleAttentionBlock computes
QKᵀ and AV in its own forward, outside its four Linear children, and they appear as its "(self)" row.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.cost import ZERO, Cost
from ..report.report import ModuleRow, Report
from .units import si

SELF = "(self)"


@dataclass(frozen=True)
class TreeRow:
    name: str  # the module's qualified name ("" for the root); a self row carries its module's name
    label: str  # what a table shows: "conv1", "(self)", "SimpleConv (total)"
    type: str
    depth: int  # indentation level: a self row sits at the level of its module's children
    params: int
    cost: Cost
    is_self: bool = False
    calls: int = 0
    input_shapes: tuple[tuple[int, ...], ...] = ()  # of the module's first call; none for a self row
    output_shapes: tuple[tuple[int, ...], ...] = ()
    effective_macs: int | None = None  # MACs once zero weights are skipped (pruning); None without weight values
    weight_density: float | None = None  # non-zero share of the module's own weights; None if it has none

    @property
    def macs(self) -> int:
        return self.cost.macs

    @property
    def flops(self) -> int:
        return self.cost.flops


DENSITY_HEADERS = ("Density", "Effective MACs")
VISIBLE_PRUNING = 0.99  # a module's weight density at most this (≥ 1 % of its weights exactly 0) is shown as pruning


def shows_density(report: Report) -> bool:
    """Whether the tables add Density and Effective MACs columns and the footer's "effective" line: only when
    pruning is visible, some module's weights at least 1 % exact zeros. A random init draws an exact 0.0 now and
    then (one among a Linear's 262k weights); that must not change the printed table. `report.effective_macs`,
    the rows' figures and the JSON stay exact either way."""
    return any(
        row.weight_density is not None and row.weight_density <= VISIBLE_PRUNING for row in report.modules.values()
    )


def density_cells(row: TreeRow) -> tuple[str, str]:
    """The weight density and effective MACs of a row, for tables of models with sparse weights."""
    density = f"{row.weight_density:.1%}" if row.weight_density is not None else ""
    return density, si(row.effective_macs) if row.effective_macs is not None else ""


def share(part: int, total: int) -> str:
    """'12.3%' of the total; '-' when the total is zero."""
    return f"{part / total:.1%}" if total else "-"


def shapes_text(shapes: tuple[tuple[int, ...], ...], calls: int = 1, most: int = 3) -> str:
    """'1×16×28×28'; several tensors joined by commas (the first `most`); '(1st of 3)' when the module ran 3 times
    (the shapes are those of its first call); '-' when no tensor was seen."""
    if not shapes:
        return "-"
    text = ", ".join("×".join(map(str, shape)) if shape else "scalar" for shape in shapes[:most])
    if len(shapes) > most:
        text += f", +{len(shapes) - most} more"
    return text + (f" (1st of {calls})" if calls > 1 else "")


def tree_rows(report: Report, depth: int | None = 2) -> list[TreeRow]:
    """Modules down to `depth` in tree order (each module followed by its subtree), then its self row."""
    shown = report.by_module(depth)
    children: dict[str, list[ModuleRow]] = {}
    for row in shown:
        if row.name:
            children.setdefault(row.name.rpartition(".")[0], []).append(row)
    out: list[TreeRow] = []
    placed: set[str] = set()

    def visit(row: ModuleRow) -> None:
        placed.add(row.name)
        label = row.name.rpartition(".")[2] if row.name else f"{report.model} (total)"
        out.append(
            TreeRow(
                row.name,
                label,
                row.type,
                row.depth,
                row.params,
                row.cost,
                calls=row.calls,
                input_shapes=row.input_shapes,
                output_shapes=row.output_shapes,
                effective_macs=row.effective_macs,
                weight_density=row.weight_density,
            )
        )
        kids = children.get(row.name, [])
        for child in kids:
            visit(child)
        if not kids:
            return
        own_params = max(0, row.params - sum(k.params for k in kids))  # a parameter shared with a child: 0
        if row.self_cost != ZERO or own_params:
            effective = [row.effective_macs, *(k.effective_macs for k in kids)]
            known = [e for e in effective if e is not None]
            own = known[0] - sum(known[1:]) if len(known) == len(effective) else None
            out.append(TreeRow(row.name, SELF, "", row.depth + 1, own_params, row.self_cost, True, effective_macs=own))

    if "" in report.modules:
        visit(report.modules[""])
    # a module whose parent was never recorded (none today) still gets a row rather than vanishing
    for row in shown:
        if row.name not in placed:
            visit(row)
    return out
