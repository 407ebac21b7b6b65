"""The package reads top to bottom: every import (function-level ones too) points down a layer, never up, and
no module imports itself back through others. Module sizes stay within the simplicity budget."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parent.parent / "src" / "flopwise"

# Lower numbers are lower layers; a module may import its own layer (acyclically) and the layers below it.
LAYERS: dict[str, int] = {
    "flopwise.core": 0,  # Term, Work, Cost, conventions, the energy table
    "flopwise.formulas": 1,  # the registry, one call priced, one file per op family
    "flopwise.shapes_only": 2,  # the fake mode, fake tensors made directly, the one value store
    "flopwise.shortcuts": 3,  # the keyer, replays and the memo (shape-only counts)
    "flopwise.symbolic.trace": 3,  # the run with symbolic sizes, which the dispatch mode records into
    "flopwise.engine": 4,  # the dispatch mode, module stack, memory, higher-order ops, restore, run state
    "flopwise.report": 5,  # the Report, assembled from a run; effective MACs; MoE records
    "flopwise.symbolic": 5,  # the fit and its report
    "flopwise.counter": 6,  # count(), counting()
    "flopwise.examples": 6,
    "flopwise.onnx_count": 6,  # .onnx files: ONNX shape inference, each node costed by the registry's formulas
    "flopwise.edge": 6,  # .pte and .tflite files read as FlatBuffers, costed by the registry's formulas; ultralytics
    "flopwise.render": 7,
    "flopwise.explanation": 7,
    "flopwise.llm": 7,
    "flopwise.hardware": 8,  # timing, device peaks, roofline, MFU, energy
    "flopwise.train": 8,
    "flopwise.parallel": 8,  # parallel plans: rank programs on torch's fake process group, step-time estimates
    "flopwise.integrations": 9,
    "flopwise.cli": 9,
    "flopwise.__main__": 9,
    "flopwise": 10,  # the package root re-exports the public surface
}
MAX_LINES = 400  # the style guide's figure, in lines as the formatter lays them out


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SOURCE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(SOURCE.rglob("*.py"))}


def layer(name: str) -> int:
    prefix = name
    while prefix not in LAYERS:
        if "." not in prefix:
            raise AssertionError(f"{name} is in no layer: add it to LAYERS in tests/test_layers.py")
        prefix = prefix.rpartition(".")[0]
    return LAYERS[prefix]


def imports_of(name: str, source: str | None = None) -> set[str]:
    """Every flopwise module `name` imports, at any depth in its code (functions and TYPE_CHECKING blocks too)."""
    path = MODULES.get(name)
    package = name if path is not None and path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source if source is not None else MODULES[name].read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("flopwise")}
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            target = node.module or "" if node.level == 0 else ".".join(p for p in (base, node.module) if p)
            if not target.startswith("flopwise"):
                continue
            submodules = {f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in MODULES}
            found |= submodules or {target}
    return {m for m in found if m != name}


GRAPH = {name: imports_of(name) for name in MODULES}


def test_every_import_points_down_the_layers() -> None:
    upward = [
        f"{name} (layer {layer(name)}) imports {target} (layer {layer(target)})"
        for name, targets in GRAPH.items()
        for target in sorted(targets)
        if layer(target) > layer(name)
    ]
    assert not upward, "\n".join(upward)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles() -> None:
    assert cycles(GRAPH) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_function_level_and_relative_imports_are_seen() -> None:
    source = "def f():\n    from ..report import Report\n    from . import table\n    return Report\n"
    assert imports_of("flopwise.render.rows", source) == {"flopwise.report", "flopwise.render.table"}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_within_the_size_budget(name: str) -> None:
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_LINES or name in OVER_BUDGET, f"{name}: {lines} lines (budget {MAX_LINES}); split it"


# count() and counting() with the one run they share: one module that reads top to bottom beats two halves
OVER_BUDGET: set[str] = {"flopwise.counter"}


def readme_layout() -> list[str]:
    """The entries of the README's layout block, top to bottom: `cli`, `counter`, `__init__`, …"""
    readme = (SOURCE.parent.parent / "README.md").read_text()
    block = readme.split("## Layout", 1)[1].split("```", 2)[1]
    entries = [line.split()[0] for line in block.splitlines() if line.startswith("  ") and not line.startswith("   ")]
    return [entry.rstrip("/").removesuffix(".py") for entry in entries]


def test_the_readme_layout_lists_the_tree_in_layer_order() -> None:
    on_disk = {p.stem if p.is_file() else p.name for p in SOURCE.iterdir() if p.suffix == ".py" or p.is_dir()}
    listed = readme_layout()
    assert sorted(listed) == sorted(on_disk - {"__pycache__"})
    layers = [layer("flopwise" if entry == "__init__" else f"flopwise.{entry}") for entry in listed]
    assert layers == sorted(layers, reverse=True), list(zip(listed, layers))  # each entry stands on those below it
