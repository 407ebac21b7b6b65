"""The result of a count: frozen data indexed by module and by operator.

Rendering lives above this module, in `render/` and `explain/`. They register their functions here as views
when flopwise is imported, so that `print(report)` works without this module importing any of them.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..core.conventions import Convention
from ..core.cost import ZERO, Cost, OpCall, Work, totals_by, with_uses
from ..core.energy import EnergyEstimate, estimate_by_dtype
from .experts import MoELayer

# module types whose submodules run in a compiled graph, unseen by module hooks (torch.jit.script, torch.jit.trace)
SCRIPT_TYPES = frozenset({"RecursiveScriptModule", "ScriptModule", "TopLevelTracedModule", "TracedModule"})
CONTAINER_TYPES = frozenset({"ModuleList", "ModuleDict", "ParameterList", "ParameterDict"})  # no forward to run


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
    phases: dict[str, Cost] = field(default_factory=dict)  # a training step: this module's cost per phase
    effective_macs: int | None = None  # MACs once zero weights are skipped (effective.py); None without values
    weight_density: float | None = None  # non-zero share of this module's own weights; None if it has none
    # the tensors of the module's first forward call (a module called several times: `calls` says how often)
    input_shapes: tuple[tuple[int, ...], ...] = ()  # positional tensor inputs
    output_shapes: tuple[tuple[int, ...], ...] = ()

    @property
    def depth(self) -> int:
        return 0 if not self.name else self.name.count(".") + 1

    def with_weights(self, effective_macs: int, weight_density: float | None) -> ModuleRow:
        """This row with its effective MACs and weight density (dataclasses.replace would run __init__ again: a
        tenth of a millisecond on every count of a model with a few hundred modules)."""
        row = object.__new__(ModuleRow)
        row.__dict__.update(self.__dict__, effective_macs=effective_macs, weight_density=weight_density)
        return row

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
class Shortcuts:
    """What a shape-only count skipped: op calls made from a replayed block's tape or from the memo instead of
    being run through the fake mode and priced again (each the same record a plain count makes)."""

    replayed: int = 0
    memo: int = 0

    @property
    def calls(self) -> int:
        return self.replayed + self.memo


@dataclass(frozen=True)
class Report:
    _views: ClassVar[dict[str, Callable[..., Any]]] = {}  # name → renderer, filled by render/ and explain/

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
    warnings: list[str] = field(default_factory=list)  # what the count could not keep as found or had to assume
    # A training step (count(step="train") or counting(step="train")): the total split by phase (forward,
    # backward, optimizer, recompute), and what backward did not compute because parameters are frozen.
    phases: dict[str, Cost] = field(default_factory=dict)  # also prefill, decode (count_generate)
    frozen_savings: Cost | None = None
    sizes: dict[str, int] = field(default_factory=dict)  # a transformer's train step: L, d, heads, tokens, … (train/)
    moe: list[MoELayer] = field(default_factory=list)  # per mixture-of-experts layer: routing, active params
    shortcuts: Shortcuts = field(default_factory=Shortcuts)  # calls replayed or made from the memo (shape-only)

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
    def effective_macs(self) -> int | None:
        """MACs once multiplications by zero weights are skipped (pruning); None when weights had no values."""
        return self.modules[""].effective_macs if "" in self.modules else None

    @property
    def sparse_weights(self) -> bool:
        """Whether some module's weights hold any exact zero (one is enough; the tables show their density columns
        only when pruning is visible, ≥ 1 % of a module's weights zero: render.tree.shows_density)."""
        return any(row.weight_density is not None and row.weight_density < 1 for row in self.modules.values())

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

    def uncalled_modules(self) -> list[str]:
        """Qualified names of the counted model's modules whose forward never ran during the count (as fvcore's
        `uncalled_modules`), sorted; the root is never listed, and a shared module is known by its first name.
        Containers with no forward of their own (nn.ModuleList, nn.ModuleDict, nn.ParameterList/Dict) are not
        listed, as fvcore's warning leaves them out; their submodules are. Submodules of a TorchScript module run
        inside its compiled graph, where no Python hook sees them: they are not listed, whether they ran is unknown."""
        scripted = [name + "." if name else "" for name, row in self.modules.items() if row.type in SCRIPT_TYPES]
        return sorted(
            name
            for name, row in self.modules.items()
            if name
            and not row.calls
            and row.type not in CONTAINER_TYPES
            and not any(name.startswith(inside) for inside in scripted)
        )

    def by_operator(self) -> dict[str, Cost]:
        """{op name: summed cost}, most FLOPs first."""
        totals = totals_by((call.op, call.cost, n) for call, n in with_uses(self.calls))
        return dict(sorted(totals.items(), key=lambda kv: (-kv[1].flops, -kv[1].macs, kv[0])))

    def by_dtype(self) -> dict[str, Cost]:
        """{compute dtype: summed cost}, most FLOPs first: 'float32', 'bfloat16', 'float16', 'float8' (every
        float8 format), 'int8' (quantized products too), 'bool'… Each op counts under the dtype it computed in,
        recorded when it ran (autocast included; see registry.compute_dtype); a call whose products and other
        arithmetic differ in dtype (an int8 LSTM: int8 gate products, float gate arithmetic) is split between
        them. Weight memory per dtype is `param_bytes`."""
        totals = totals_by(self._dtype_parts())
        return dict(sorted(totals.items(), key=lambda kv: (-kv[1].flops, -kv[1].macs, -kv[1].bytes, kv[0])))

    def _dtype_parts(self) -> Iterator[tuple[str, Cost, int]]:
        for call, n in with_uses(self.calls):
            cost = call.cost
            if not call.dtype or not (cost.macs or cost.flops or cost.bytes_read or cost.bytes_written):
                continue
            other = call.work.other_dtype
            if other and other != call.dtype:
                moved = self.convention.flops(Work(flops=call.work.flops))  # the non-contraction FLOPs counted
                yield other, Cost(flops=moved), n
                cost = Cost(cost.macs, cost.flops - moved, cost.bytes_read, cost.bytes_written)
            yield call.dtype, cost, n

    def energy(self) -> EnergyEstimate:
        """An ESTIMATE of the joules of this count from its MACs and FLOPs per dtype and its bytes moved, with the
        per-operation energies of Horowitz, ISSCC 2014 (45 nm) — `flopwise.energy` states the table. Dtypes the
        source has no figure for are named in `.left_out`, never guessed."""
        return estimate_by_dtype(self.by_dtype())

    def operator_calls(self) -> Counter[str]:
        calls: Counter[str] = Counter()
        for call, n in with_uses(self.calls):
            calls[call.op] += n
        return calls

    # — output: the renderers registered as views —
    @classmethod
    def register_view(cls, name: str, render: Callable[..., Any]) -> None:
        cls._views[name] = render

    def _view(self, name: str, **options: Any) -> Any:
        return self._views[name](self, **options)

    def to_dict(self) -> dict[str, Any]:
        """Plain data, schema `flopwise/1`."""
        result: dict[str, Any] = self._view("dict")
        return result

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def table(self, depth: int | None = 2, shapes: bool = False) -> str:
        """The plain-text module table that `print(report)` shows; `shapes=True` adds each module's input and
        output shapes (of its first call)."""
        text: str = self._view("table", depth=depth, shapes=shapes)
        return text

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
        text: str = self._view("explain", depth=depth, fmt=fmt)
        return text

    def to_csv(self, depth: int | None = None, per_operator: bool = False) -> str:
        """One CSV row per module (or per aten operator), exact integers."""
        text: str = self._view("csv", depth=depth, per_operator=per_operator)
        return text

    def to_markdown(self, depth: int | None = 2, per_operator: bool = False, shapes: bool = False) -> str:
        """A Markdown table ready for a README or a paper, with the exact totals below it."""
        text: str = self._view("markdown", depth=depth, per_operator=per_operator, shapes=shapes)
        return text

    def to_dataframe(self, depth: int | None = None, by: str = "module") -> Any:
        """A pandas DataFrame, one row per module (or per operator with by="operator"); needs pandas."""
        return self._view("dataframe", depth=depth, by=by)

    def rich_table(self, depth: int | None = 2) -> Any:
        """A rich.table.Table of the module tree, for `rich.print(report.rich_table())`; needs rich."""
        return self._view("rich", depth=depth)

    def to_html(self, measurement: Any = None) -> str:
        """One self-contained HTML page (no network when viewed): the module tree as a zoomable icicle, sortable
        and filterable tables of modules and operators, the hand calculation per module; with a `Measurement`
        of this count, its timings and roofline too."""
        text: str = self._view("html_report", measurement=measurement)
        return text

    def vs_formulas(self) -> Any:
        """A transformer's train step beside 6ND, PaLM and Megatron, each difference term by term (flopwise.train)."""
        return self._view("vs_formulas")

    def _repr_html_(self) -> str:
        text: str = self._view("html")
        return text
