"""Shared pytest options and fixtures: `pytest --update-golden` rewrites tests/golden/* (never edit those by hand)."""

from __future__ import annotations

import os
import sys
from typing import Any

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden", action="store_true", default=False,
        help="rewrite tests/golden/* from the current output instead of comparing against it",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture(autouse=True, scope="session")
def calibration_cache_of_the_session(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Measured peaks are cached in a folder of the test session (console scripts inherit it), never the user's."""
    os.environ["FLOPWISE_CACHE_DIR"] = str(tmp_path_factory.mktemp("flopwise-cache"))


@pytest.fixture
def replicas(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The Replicas object (flopwise.shortcuts.replay) of each shape-only count made in the test, newest last."""
    from flopwise.shortcuts import replay

    made: list[replay.Replicas] = []

    class Watched(replay.Replicas):
        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            made.append(self)

    monkeypatch.setattr(sys.modules["flopwise.count"], "Replicas", Watched)
    return made
