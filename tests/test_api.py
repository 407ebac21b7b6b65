"""The public surface: a small __all__, every name importable, the entry points of DESIGN.md callable."""

from __future__ import annotations

import flopwise


def test_public_names() -> None:
    assert sorted(flopwise.__all__) == sorted(
        [
            "CONVENTIONS",
            "Convention",
            "Cost",
            "Flops",
            "ModuleRow",
            "Monitor",
            "Report",
            "Term",
            "Work",
            "count",
            "count_generate",
            "counting",
            "explain",
            "formula",
            "measure",
            "zero_cost",
        ]
    )
    for name in flopwise.__all__:
        assert getattr(flopwise, name) is not None
    assert callable(flopwise.count) and callable(flopwise.explain) and callable(flopwise.measure)
    assert callable(flopwise.count_generate)


def test_the_measure_package_stays_reachable() -> None:
    from flopwise.hardware import DEVICES, roofline_plot

    assert DEVICES and callable(roofline_plot)


def test_typed_package() -> None:
    from importlib.resources import files

    assert files("flopwise").joinpath("py.typed").is_file()
