"""Every op of PyTorch's Core ATen IR has a cost: a formula, a view, or a declared zero-cost entry."""

from __future__ import annotations

import torch

import flopwise  # noqa: F401 - registers the formulas
from flopwise.formulas.registry import FORMULAS, ZERO_COST, is_view, is_zero_cost, lookup, op_name


def core_ops() -> dict[str, list[torch._ops.OpOverload]]:
    """{op name: its overloads tagged `core`}, enumerated from torch itself."""
    found: dict[str, list[torch._ops.OpOverload]] = {}
    for attr in dir(torch.ops.aten):
        packet = getattr(torch.ops.aten, attr, None)
        if not isinstance(packet, torch._ops.OpOverloadPacket):
            continue
        for overload in packet.overloads():
            op = getattr(packet, overload)
            if torch.Tag.core in op.tags:
                found.setdefault(op_name(op), []).append(op)
    return found


def test_torch_still_has_a_core_op_set() -> None:
    assert len(core_ops()) > 150  # about 160 in torch 2.x; a collapse would make the next test vacuous


def test_every_core_op_is_costed() -> None:
    missing = [
        name
        for name, overloads in sorted(core_ops().items())
        if lookup(name) is False and not is_zero_cost(name) and not any(is_view(op) for op in overloads)
    ]
    assert missing == [], f"core ops with no formula, view or zero-cost entry: {missing}"


def test_registered_names_are_real_ops() -> None:
    for name in list(FORMULAS) + list(ZERO_COST):
        namespace, op = name.split(".", 1)
        if namespace == "aten":
            assert isinstance(getattr(torch.ops.aten, op, None), torch._ops.OpOverloadPacket), name


def test_no_op_is_both_costed_and_declared_free() -> None:
    assert sorted(set(FORMULAS) & set(ZERO_COST)) == []


def test_committed_cost_and_convention_pages_are_current() -> None:
    import runpy
    from pathlib import Path

    script = runpy.run_path(str(Path(__file__).resolve().parent.parent / "scripts" / "gen_cost_table.py"))
    assert script["main"](["--check"]) == 0, (
        "docs/costs.md or docs/conventions.md is out of date: run .venv/bin/python scripts/gen_cost_table.py"
    )
