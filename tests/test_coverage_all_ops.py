"""Every operator overload that can reach flopwise's dispatch mode has been triaged.

Enumerated from torch itself: every overload the dispatcher knows in the namespaces `aten`, `quantized`,
`_c10d_functional` and `prims` (and `c10d`, `c10d_functional`), and the TorchScript-only overloads that
`torch.ops.aten` resolves too (`aten::Int.Tensor`, list and dict ops). Each falls in exactly one category, decided
in the order capture decides (see `CountingMode._plan_for` and `_decompose`):

- formula: a registered formula (`registry.lookup`; in-place and out= overloads share their op's formula);
- view: a view or metadata query (`registry.is_view`): no arithmetic, no bytes;
- zero-cost: declared with `zero_cost(reason, ...)`: no arithmetic, bytes still counted;
- composite: has a CompositeImplicitAutograd kernel. Such an op decomposes above the Python dispatch key, so it
  never reaches the mode; if it ever does, capture runs `func.decompose`, the same kernel, and counts its parts;
- decomposition: torch's Core ATen decomposition table has an entry that capture runs under the mode
  (`core_aten_decompositions()`); its parts are aten ops, themselves covered by this test;
- uncostable: triaged and listed with its reason in `flopwise.formulas.catalog.UNCOSTABLE`; when it runs it is
  reported in `report.unsupported` (tested below), never counted as a silent zero;
- not dispatched: a TorchScript-only overload with no dispatcher entry: no tensor op ever runs it through a mode;
"""

from __future__ import annotations

from collections import Counter
from functools import cache

import pytest
import torch
import torch._inductor.inductor_prims  # noqa: F401 - registers inductor's prims, as any test importing inductor does
import torch.distributed._functional_collectives  # noqa: F401 - registers the _c10d_functional ops
from torch._decomp import core_aten_decompositions

import flopwise
from flopwise.formulas.catalog import UNCOSTABLE
from flopwise.formulas.registry import FORMULAS, ZERO_COST, functional_name, is_view, is_zero_cost, lookup, op_name

# the four, and the process-group collectives DDP and FSDP run (c10d) with their older functional names
NAMESPACES = ("aten", "quantized", "_c10d_functional", "prims", "c10d", "c10d_functional")


def _dispatched(op: torch._ops.OpOverload) -> bool:
    try:
        torch._C._dispatch_find_schema_or_throw(op._schema.name, op._schema.overload_name)
    except RuntimeError:
        return False
    return True


@cache
def all_overloads() -> dict[str, torch._ops.OpOverload]:
    """{"ns::name.overload": overload} for every overload of NAMESPACES."""
    found: dict[str, torch._ops.OpOverload] = {}
    for qualified in torch._C._dispatch_get_all_op_names():
        namespace, rest = qualified.split("::")
        if namespace in NAMESPACES:
            name, _, overload = rest.partition(".")
            found[qualified] = getattr(getattr(getattr(torch.ops, namespace), name), overload or "default")
    for schema in torch._C._jit_get_all_schemas():  # also the TorchScript-only overloads (aten::Int.Tensor, …)
        namespace, name = schema.name.split("::")
        if namespace in NAMESPACES:
            qualified = f"{schema.name}.{schema.overload_name}" if schema.overload_name else schema.name
            packet = getattr(getattr(torch.ops, namespace), name)
            found.setdefault(qualified, getattr(packet, schema.overload_name or "default"))
    return found


def test_the_enumeration_holds_every_overload_torch_ops_aten_resolves() -> None:
    """torch.ops.aten.X resolves any aten schema the dispatcher or TorchScript knows, loaded or not yet."""
    known = {f"{s.name}.{s.overload_name}".removesuffix(".") for s in torch._C._jit_get_all_schemas()}
    known |= set(torch._C._dispatch_get_all_op_names())
    aten = {q for q in known if q.startswith("aten::")}
    assert aten <= set(all_overloads())
    loaded = {
        f"{getattr(torch.ops.aten, a)._qualified_op_name}.{o}".removesuffix(".default")
        for a in dir(torch.ops.aten)
        if isinstance(getattr(torch.ops.aten, a, None), torch._ops.OpOverloadPacket)
        for o in getattr(torch.ops.aten, a).overloads()
    }
    assert loaded <= set(all_overloads())  # every packet torch.ops.aten has built so far, each overload


def category(op: torch._ops.OpOverload) -> str:
    """How a count treats `op` — the order of `CountingMode._plan_for`, then `_decompose`."""
    name = op_name(op)
    if lookup(name) is not False:
        return "formula"
    if is_view(op):
        return "view"
    if is_zero_cost(name):
        return "zero-cost"
    if not _dispatched(op):
        return "not dispatched"
    if op.has_kernel_for_dispatch_key(torch._C.DispatchKey.CompositeImplicitAutograd):
        return "composite"
    if op in core_aten_decompositions():
        return "decomposition"
    if name in UNCOSTABLE or functional_name(name) in UNCOSTABLE:
        return "uncostable"
    return "missing"


@cache
def census() -> dict[str, list[str]]:
    by_category: dict[str, list[str]] = {}
    for qualified, op in sorted(all_overloads().items()):
        by_category.setdefault(category(op), []).append(qualified)
    return by_category


def summary() -> str:
    """One line per category and namespace: `pytest -s` prints it (and the test keeps the counts)."""
    counts = Counter((cat, q.split("::")[0]) for cat, names in census().items() for q in names)
    lines = [f"{cat:>15} {ns:<17} {n:5}" for (cat, ns), n in sorted(counts.items())]
    return "\n".join(lines + [f"{'total':>15} {'':<17} {sum(counts.values()):5}"])


def test_the_enumeration_sees_every_namespace() -> None:
    namespaces = Counter(q.split("::")[0] for q in all_overloads())
    assert namespaces["aten"] > 3000 and namespaces["quantized"] > 150  # about 3,100 and 170 in torch 2.14
    assert namespaces["prims"] > 100 and namespaces["_c10d_functional"] > 10
    assert namespaces["c10d"] > 10 and namespaces["c10d_functional"] > 10


def test_every_overload_is_triaged() -> None:
    print("\n" + summary())
    missing = census().get("missing", [])
    assert missing == [], (
        f"{len(missing)} overloads with no formula, view, zero-cost, decomposition or uncostable entry: {missing}"
    )


def test_every_category_is_used() -> None:
    """A category that empties (torch renames its tags, a table moves) would make the triage vacuous."""
    assert {"formula", "view", "zero-cost", "composite", "decomposition", "uncostable"} <= set(census())


def test_uncostable_entries_are_real_and_not_costed_elsewhere() -> None:
    costed = set(FORMULAS) | set(ZERO_COST)
    for name, reason in UNCOSTABLE.items():
        namespace, op = name.split(".", 1)
        packet = getattr(getattr(torch.ops, namespace), op.removesuffix("_"), None) or getattr(
            getattr(torch.ops, namespace), op, None
        )
        assert isinstance(packet, torch._ops.OpOverloadPacket), name
        assert name not in costed, f"{name} is both costed and listed as uncostable"
        assert len(reason) > 20, f"{name}: give the reason it cannot be costed"


def test_an_uncostable_op_is_reported_never_silent() -> None:
    a = torch.randn(3, 3)
    with flopwise.counting() as c:
        torch.linalg.matrix_exp(a)
    assert "aten.linalg_matrix_exp" in UNCOSTABLE
    assert "aten.linalg_matrix_exp" in c.report.unsupported


@pytest.mark.parametrize("mode", ["real", "fake", "meta"])
def test_an_op_in_the_decomposition_category_is_counted_through_its_decomposition(mode: str) -> None:
    """log_sigmoid_forward has no formula; torch's Core ATen table decomposes it (xLSTM runs it)."""
    assert torch.ops.aten.log_sigmoid_forward.default in core_aten_decompositions()
    r = flopwise.count(LogSigmoid(), torch.randn(3, 4), mode=mode)
    assert r.unsupported == {}
    assert r.flops == 3 * 4 * 6  # per element: minimum(0, x), abs, neg, exp, log1p, subtract


class LogSigmoid(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.logsigmoid(x)


def test_composite_ops_that_reach_the_mode_in_inference_mode_count_as_with_autograd() -> None:
    """Under inference_mode the autograd keys are off and CompositeImplicitAutograd ops reach the mode itself
    (`aten.reshape`, `aten.bilinear`): capture decomposes them, and the count is what the decomposed run gives."""
    a, b, w = torch.randn(4, 8), torch.randn(4, 8), torch.randn(3, 8, 8)
    for inference in (False, True):
        with torch.inference_mode(inference), flopwise.counting() as c:
            torch.nn.functional.bilinear(a, b, w)
            torch.linalg.multi_dot([a, torch.randn(8, 5), torch.randn(5, 8)])
        assert c.report.unsupported == {}
        # bilinear: N·out·in1·in2 = 4·3·8·8; multi_dot: (4×8)(8×5) then (4×5)(5×8) = 4·8·5 + 4·5·8
        assert c.report.macs == 4 * 3 * 8 * 8 + 4 * 8 * 5 + 4 * 5 * 8
        assert ("aten.reshape" in c.report.by_operator()) == inference  # a composite op seen by the mode
