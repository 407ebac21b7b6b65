"""A count sees only its own thread: module hooks are global, so another thread's modules reach them too."""

from __future__ import annotations

import threading

import torch
from torch import nn

import flopwise


class WaitsForTheOtherThread(nn.Module):
    """Returns only after the other thread has run a whole forward pass, so the two overlap for sure."""

    def __init__(self, ran: threading.Event | None) -> None:
        super().__init__()
        self.ran = ran

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.ran is not None:
            self.ran.clear()
            assert self.ran.wait(timeout=10)
        return x


def rows(report: flopwise.Report) -> list[tuple[str, str, int, int, int]]:
    return [(row.name, row.type, row.macs, row.flops, row.calls) for row in report.by_module()]


def test_another_thread_running_modules_does_not_reach_the_count() -> None:
    ran, stop = threading.Event(), threading.Event()
    waits = WaitsForTheOtherThread(None)
    counted = nn.Sequential(nn.Linear(8, 16), waits, nn.ReLU(), nn.Linear(16, 4))
    other = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.LazyLinear(2))
    other(torch.randn(1, 3, 6, 6))  # materialise the lazy layer before the race

    def loop() -> None:
        while not stop.is_set():
            other(torch.randn(1, 3, 6, 6))
            ran.set()

    x = torch.randn(2, 8)
    alone = flopwise.count(counted, x)
    waits.ran = ran
    worker = threading.Thread(target=loop)
    worker.start()
    try:
        beside = [flopwise.count(counted, x) for _ in range(3)]
    finally:
        stop.set()
        worker.join()
    for report in beside:
        assert rows(report) == rows(alone)
        assert report.macs == 2 * 8 * 16 + 2 * 16 * 4  # N·in·out per Linear
        assert report.calls == alone.calls
