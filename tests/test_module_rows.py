"""Module rows follow the user's model (issue 28): a function a library wraps as a module built per call (transformers
turns `apply_rotary_pos_emb` into one when the `kernels` package is installed) adds no row `Func`, `Func#2`…; its work
is its caller's, exactly as when the function is called plainly."""

from __future__ import annotations

import torch
from torch import nn

import flopwise


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    turned = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + turned * sin


class Func(nn.Module):
    """A function as a module, with no parameters: what a kernel hub makes of a plain function."""

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        return rotate(x, cos, sin)


class Layer(nn.Module):
    def __init__(self, width: int, wrapped: bool) -> None:
        super().__init__()
        self.q, self.k = nn.Linear(width, width), nn.Linear(width, width)
        self.wrapped = wrapped

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        apply = Func() if self.wrapped else rotate  # built afresh at every call, as the hub does
        q, k = apply(self.q(x), cos, sin), apply(self.k(x), cos, sin)
        return torch.softmax(q @ k.transpose(-1, -2), dim=-1) @ x


class Model(nn.Module):
    def __init__(self, wrapped: bool, width: int = 8, depth: int = 3) -> None:
        super().__init__()
        self.layers = nn.ModuleList(Layer(width, wrapped) for _ in range(depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        angles = torch.arange(x.shape[1], dtype=x.dtype)[:, None] * torch.ones(x.shape[-1])
        for layer in self.layers:
            x = layer(x, angles.cos(), angles.sin())
        return x


def rows(report: flopwise.Report) -> dict[str, tuple[int, int, int, int]]:
    return {r.name: (r.macs, r.flops, r.bytes_read, r.bytes_written) for r in report.by_module(depth=None)}


def test_a_function_wrapped_as_a_module_per_call_folds_into_its_caller() -> None:
    x = torch.rand(2, 5, 8)
    wrapped, plain = Model(wrapped=True), Model(wrapped=False)
    plain.load_state_dict(wrapped.state_dict())
    for mode in ("real", "fake"):
        got, expected = flopwise.count(wrapped, x, mode=mode), flopwise.count(plain, x, mode=mode)
        assert set(rows(got)) == {name for name, _ in wrapped.named_modules()}  # no Func, Func#2, …
        assert rows(got) == rows(expected) and got.flops == expected.flops


def test_under_counting_too_the_wrapped_function_is_its_callers() -> None:
    x = torch.rand(1, 4, 8)
    wrapped = Model(wrapped=True)
    with flopwise.counting() as session:
        wrapped(x)
    names = set(rows(session.report))
    assert not any(name.split(".")[-1].startswith("Func") for name in names), names
    assert "Model.layers.0" in names  # the model itself, not passed to counting(), is named by its class
