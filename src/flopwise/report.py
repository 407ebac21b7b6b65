"""The result of a count: frozen data indexed by module and by operator. Rendering lives in `render/`."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .conventions import Convention
from .cost import ZERO, Cost, OpCall


@dataclass(frozen=True)
class ModuleRow:
    """One module: its cost including submodules (`cost`) and of the ops run directly in it (`self_cost`)."""

    name: str
    type: str
    cost: Cost
    self_cost: Cost
    params: int
    trainable_params: int
    calls: int

    @property
    def depth(self) -> int:
        return 0 if not self.name else self.name.count(".") + 1

    @property
    def macs(self) -> int:
        return self.cost.macs

    @property
    def flops(self) -> int:
        return self.cost.flops

    @property
    def bytes_read(self) -> int:
        return self.cost.bytes_read

    @property
    def bytes_written(self) -> int:
        return self.cost.bytes_written

    @property
    def intensity(self) -> float | None:
        """FLOPs per byte moved by this module's ops (submodules included)."""
        return self.cost.intensity


@dataclass(frozen=True)
class Report:
    model: str
    inputs: str
    convention: Convention
    calls: tuple[OpCall, ...]
    modules: dict[str, ModuleRow]  # tree order; "" is the root
    params: int
    trainable_params: int
    unsupported_where: dict[str, dict[str, int]] = field(default_factory=dict)  # op → {module: calls}
    describe: dict[str, str] = field(default_factory=dict)  # module → 'Conv2d 1→16, k3, s1, p1'
    param_bytes: dict[str, int] = field(default_factory=dict)  # dtype → bytes of parameters (see memory.py)
    peak_activation_bytes: int | None = None  # estimate from tensor lifetimes in the dispatch stream
    warnings: tuple[str, ...] = ()  # what the count had to assume or could not keep as found

    # — totals —
    @property
    def total(self) -> Cost:
        return self.modules[""].cost if "" in self.modules else ZERO

    @property
    def macs(self) -> int:
        return self.total.macs

    @property
    def flops(self) -> int:
        return self.total.flops

    @property
    def bytes_read(self) -> int:
        return self.total.bytes_read

    @property
    def bytes_written(self) -> int:
        return self.total.bytes_written

    @property
    def intensity(self) -> float | None:
        """Arithmetic intensity: FLOPs per byte read or written; None when nothing moved."""
        return self.total.intensity

    @property
    def param_memory(self) -> int:
        """Bytes held by the parameters, all dtypes together (`param_bytes` splits them by dtype)."""
        return sum(self.param_bytes.values())

    @property
    def frozen_params(self) -> int:
        return self.params - self.trainable_params

    @property
    def unsupported(self) -> dict[str, int]:
        """{op name: calls} for ops with no known cost; empty means the count is complete."""
        return {op: sum(where.values()) for op, where in self.unsupported_where.items()}

    @property
    def complete(self) -> bool:
        return not self.unsupported_where

    # — queries —
    def __getitem__(self, name: str) -> ModuleRow:
        try:
            return self.modules[name]
        except KeyError:
            close = [m for m in self.modules if m.endswith(name.split(".")[-1])][:3]
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise KeyError(f"no module named {name!r} in this report{hint}") from None

    def __contains__(self, name: object) -> bool:
        return name in self.modules

    def by_module(self, depth: int | None = None) -> list[ModuleRow]:
        """Modules in tree order down to `depth` (0 = the root only; None = every module)."""
        return [row for row in self.modules.values() if depth is None or row.depth <= depth]

    def by_operator(self) -> dict[str, Cost]:
        """{op name: summed cost}, most FLOPs first."""
        totals: dict[str, Cost] = {}
        for call in self.calls:
            totals[call.op] = totals.get(call.op, ZERO) + call.cost
        return dict(sorted(totals.items(), key=lambda kv: (-kv[1].flops, -kv[1].macs, kv[0])))

    def operator_calls(self) -> Counter[str]:
        return Counter(call.op for call in self.calls)

    # — output —
    def to_dict(self) -> dict[str, Any]:
        from .render.data import report_to_dict

        return report_to_dict(self)

    def to_json(self, indent: int | None = 2) -> str:
        import json

        return json.dumps(self.to_dict(), indent=indent)

    def table(self, depth: int | None = 2) -> str:
        from .render.table import render_table

        return render_table(self, depth=depth)

    def __str__(self) -> str:
        return self.table()

    def __repr__(self) -> str:
        # the generated dataclass repr would print every op call; a model makes thousands
        gaps = "" if self.complete else f", unsupported={self.unsupported}"
        return (
            f"Report(model={self.model!r}, inputs={self.inputs!r}, convention={self.convention.name!r}, "
            f"macs={self.macs:,}, flops={self.flops:,}, params={self.params:,}, calls={len(self.calls):,}{gaps})"
        )

    def explain(self, depth: int | None = None, fmt: str = "text") -> str:
        """The hand calculation of this count, per module and op: formula, sizes substituted, result."""
        from .explain import render_explanation

        return render_explanation(self, depth=depth, fmt=fmt)

    def to_csv(self, depth: int | None = None, per_operator: bool = False) -> str:
        """One CSV row per module (or per aten operator), exact integers."""
        from .render.csv import render_csv

        return render_csv([self], depth=depth, per_operator=per_operator)

    def to_markdown(self, depth: int | None = 2, per_operator: bool = False) -> str:
        """A Markdown table ready for a README or a paper, with the exact totals below it."""
        from .render.markdown import render_markdown

        return render_markdown(self, depth=depth, per_operator=per_operator)

    def to_dataframe(self, depth: int | None = None, by: str = "module") -> Any:
        """A pandas DataFrame, one row per module (or per operator with by="operator"); needs pandas."""
        from .render.frame import to_dataframe

        return to_dataframe(self, depth=depth, by=by)

    def rich_table(self, depth: int | None = 2) -> Any:
        """A rich.table.Table of the module tree, for `rich.print(report.rich_table())`; needs rich."""
        from .render.console import rich_table

        return rich_table(self, depth=depth)

    def _repr_html_(self) -> str:
        from .render.html import render_html

        return render_html(self)
