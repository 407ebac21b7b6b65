"""The guides' three worked examples: the CLI's embedded default and the first acceptance test.

Each entry gives the model, its example inputs, and the figures the guide derives by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


class SimpleLinearModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(10, 20, bias=False)
        self.fc2 = nn.Linear(20, 15, bias=False)
        self.fc3 = nn.Linear(15, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.fc1(x))
        x = self.fc2(x)
        F.relu(x)  # the guide's result is discarded; the op still runs and is counted
        out: torch.Tensor = self.fc3(x)
        return out


class SimpleConv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, kernel_size=3, stride=1, padding=1)
        self.conv2 = nn.Conv2d(16, 32, kernel_size=3, stride=1, padding=1)
        self.fc = nn.Linear(32 * 28 * 28, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        out: torch.Tensor = self.fc(x.view(x.shape[0], -1))
        return out


class SimpleAttentionBlock(nn.Module):
    def __init__(self, embed_size: int = 256, heads: int = 8) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, embed_size // heads
        self.values = nn.Linear(embed_size, embed_size, bias=False)
        self.keys = nn.Linear(embed_size, embed_size, bias=False)
        self.queries = nn.Linear(embed_size, embed_size, bias=False)
        self.fc_out = nn.Linear(embed_size, embed_size)

    def forward(
        self, values: torch.Tensor, keys: torch.Tensor, queries: torch.Tensor, mask: torch.Tensor | None
    ) -> torch.Tensor:
        n, length = queries.shape[0], queries.shape[1]
        v = self.values(values).reshape(n, self.heads, length, self.head_dim)
        k = self.keys(keys).reshape(n, self.heads, length, self.head_dim)
        q = self.queries(queries).reshape(n, self.heads, length, self.head_dim)
        energy = torch.matmul(q, k.transpose(-2, -1))
        if mask is not None:
            energy = energy.masked_fill(mask == 0, float("-1e20"))
        attention = torch.softmax(energy, dim=3)
        out = torch.matmul(attention, v).reshape(n, length, self.heads * self.head_dim)
        result: torch.Tensor = self.fc_out(out)
        return result


@dataclass(frozen=True)
class GuideExample:
    name: str
    model: nn.Module
    inputs: Any
    macs: int  # the guide's total
    layers: dict[str, int]  # the guide's per-layer MACs


def guide_examples() -> list[GuideExample]:
    """Fresh instances of the guides' three models with their inputs and the guides' hand counts."""
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(1, 10, 256, generator=generator)
    return [
        GuideExample(
            "SimpleLinearModel",
            SimpleLinearModel(),
            torch.randn(1, 10, generator=generator),
            515,
            {"fc1": 10 * 20, "fc2": 20 * 15, "fc3": 15 * 1},
        ),
        GuideExample(
            "SimpleConv",
            SimpleConv(),
            torch.rand(1, 1, 28, 28, generator=generator),
            3_976_448,
            {"conv1": 28 * 28 * 3 * 3 * 1 * 16, "conv2": 28 * 28 * 3 * 3 * 16 * 32, "fc": 32 * 28 * 28 * 10},
        ),
        GuideExample(
            "SimpleAttentionBlock",
            SimpleAttentionBlock(256, 8),
            (a, a.clone(), a.clone(), None),
            2_672_640,
            {"values": 10 * 256 * 256, "keys": 10 * 256 * 256, "queries": 10 * 256 * 256, "fc_out": 10 * 256 * 256},
        ),
    ]
