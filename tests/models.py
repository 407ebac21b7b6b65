"""Tiny models shared by the tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch import nn

T = TypeVar("T")


def seeded(build: Callable[[], T], seed: int = 0) -> T:
    """`build()` with torch's RNG seeded, the caller's RNG state left as it was: models built at import time (the
    guides' examples of a parametrize list or a module constant) get the same weights on every run."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return build()


@torch.library.custom_op("flopwise_tests::never_costed", mutates_args=())
def never_costed(x: torch.Tensor) -> torch.Tensor:
    """An op that has no formula and no decomposition, and never will: it is the tests' own."""
    return x.clone()


@never_costed.register_fake
def _(x: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(x)


class Uncosted(nn.Module):
    """A forward whose one op has no known cost: its count is incomplete, whatever formulas flopwise gains."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = never_costed(x)
        return out


class ConvBNNet(nn.Module):
    """Conv → BatchNorm → ReLU → Dropout → Linear: has running statistics and uses the RNG in train mode."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(8 * 8 * 8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop(torch.relu(self.bn(self.conv(x))))
        return self.fc(x.flatten(1))


class Raises(nn.Module):
    """A forward that fails inside a submodule, after BatchNorm has already run."""

    def __init__(self) -> None:
        super().__init__()
        self.net = ConvBNNet()
        self.head = nn.Linear(5, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.net(x))  # net returns 4 features, head expects 5


class MatmulInForward(nn.Module):
    """Matmuls written inside forward (`@`, torch.matmul, einsum) that module hooks never see."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(6, 5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = x @ self.weight  # (B, 4, 6) @ (6, 5)
        b = torch.matmul(a, a.transpose(-1, -2))  # (B, 4, 5) @ (B, 5, 4)
        return torch.einsum("bij,bjk->bik", b, a)  # (B, 4, 4) @ (B, 4, 5)


class SharedLinear(nn.Module):
    """One Linear used twice under two names: its parameters count once, its MACs twice."""

    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Linear(8, 8)
        self.second = self.first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.second(self.first(x))


def every_figure(r: Any) -> tuple[Any, ...]:
    """Everything a Report says, to compare two counts record by record (replays, folds on and off)."""
    return r.to_dict(), r.calls, r.peak_activation_bytes, r.param_bytes, r.warnings


def small_vit(layers: int, batch: int) -> tuple[nn.Module, Any]:
    """transformers' ViT, 32×32 images in 8×8 patches, width 64: with its inputs (replay and fold tests)."""
    import transformers

    config = transformers.ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=64,
        num_hidden_layers=layers,
        num_attention_heads=4,
        intermediate_size=128,
    )
    return transformers.ViTModel(config).eval(), {"pixel_values": torch.randn(batch, 3, 32, 32)}


def small_resnet50(batch: int) -> tuple[nn.Module, Any]:
    """torchvision's ResNet-50 on 64×64 images: with its inputs (replay and fold tests)."""
    import torchvision

    return torchvision.models.resnet50().eval(), torch.randn(batch, 3, 64, 64)
