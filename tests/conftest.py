"""Shared pytest options, hooks and fixtures: `pytest --update-golden` rewrites tests/golden/* (never edit those by
hand); every test, and every test module's import, starts from torch's RNG seeded with 0, so that each model a test
builds has the same weights on every run (an unseeded init put one exact 0.0 among a golden table's 262k weights
in about 1.6 % of runs)."""

from __future__ import annotations

import os
import sys
from typing import Any

import pytest
import torch

SEED = 0


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite tests/golden/* from the current output instead of comparing against it",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "smoke: checks only that a model runs through a count completely (no unsupported op), not its figures",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_collectstart(collector: pytest.Collector) -> None:
    """Models built when a test module is imported (parametrize lists, module constants) get seeded weights."""
    if isinstance(collector, pytest.Module):
        torch.manual_seed(SEED)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Seeded before any fixture of the test is set up, module- and session-scoped ones included: a model built
    by a fixture or by the test itself gets the same weights on every run, whichever tests ran before."""
    torch.manual_seed(SEED)


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

    monkeypatch.setattr(sys.modules["flopwise.counter"], "Replicas", Watched)
    return made
