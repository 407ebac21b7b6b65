"""Sparse operands (COO, CSR, CSC, BSR) in contractions: MACs from the values stored, bytes from what is stored."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F

import flopwise

M, K, N = 128, 256, 32


def _weight() -> torch.Tensor:
    """A 128×256 weight at about 5 % density (a fixed seed; nnz is read back, then used by hand)."""
    g = torch.Generator().manual_seed(0)
    w = torch.rand(M, K, generator=g)
    return w * (torch.rand(M, K, generator=g) < 0.05)


def _sparse(layout: str, w: torch.Tensor) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "sparse CSR support is in beta"
        return {"coo": w.to_sparse, "csr": w.to_sparse_csr, "csc": w.to_sparse_csc}[layout]()


def _count(fn: Callable[[], object]) -> flopwise.Report:
    with flopwise.counting() as c:
        fn()
    return c.report


def test_nnz_of_the_fixture_is_what_the_issue_measured() -> None:
    assert int((_weight() != 0).sum()) == 1638


@pytest.mark.parametrize("layout", ["coo", "csr", "csc"])
@pytest.mark.parametrize("call", ["mm", "matmul_operator", "sparse_mm", "addmm", "linear"])
def test_sparse_weight_costs_nnz_times_n(layout: str, call: str) -> None:
    w = _weight()
    nnz = int((w != 0).sum())
    ws, x = _sparse(layout, w), torch.rand(K, N)
    run = {
        "mm": lambda: torch.mm(ws, x),
        "matmul_operator": lambda: ws @ x,
        "sparse_mm": lambda: torch.sparse.mm(ws, x),
        "addmm": lambda: torch.addmm(torch.zeros(M, N), ws, x),
        "linear": lambda: F.linear(x.T, ws),  # x.T (32×256) · wsᵀ: the sparse operand on the right
    }[call]
    r = _count(run)
    assert r.complete, r.unsupported
    assert r.macs == nnz * N == 1638 * 32 == 52_416  # nnz·N, not M·K·N = 1,048,576


def test_block_sparse_counts_whole_blocks() -> None:
    # 16 blocks of 8×8 kept out of 16·32 = 512: a BSR weight stores 16·64 = 1,024 values
    w = torch.zeros(M, K)
    for i in range(16):
        w[8 * i : 8 * i + 8, 16 * i : 16 * i + 8] = 1.0
    ws = w.to_sparse_bsr((8, 8))
    r = _count(lambda: torch.mm(ws, torch.rand(K, N)))
    assert r.macs == 16 * 8 * 8 * N  # blocks·bh·bw·N


def test_sparse_bytes_are_what_is_stored() -> None:
    w = _weight()
    nnz = int((w != 0).sum())
    ws, x = w.to_sparse(), torch.rand(K, N)  # COO: values (nnz float32) and indices (2×nnz int64)
    r = _count(lambda: torch.mm(ws, x))
    assert r.bytes_read == nnz * 4 + 2 * nnz * 8 + K * N * 4
    assert r.bytes_written == M * N * 4
    csr = _sparse("csr", w)  # CSR: values, column indices (nnz int64 each) and M+1 row pointers
    r = _count(lambda: torch.mm(csr, x))
    assert r.bytes_read == nnz * 4 + nnz * 8 + (M + 1) * 8 + K * N * 4


def test_two_sparse_matrices_of_one_shape_are_not_confused() -> None:
    # identical shapes, different nnz: the cost cache must not hand the first one's count to the second
    w = _weight()
    dense_half = torch.ones(M, K).tril()
    with flopwise.counting() as c:
        torch.mm(w.to_sparse(), torch.rand(K, N))
        torch.mm(dense_half.to_sparse(), torch.rand(K, N))
    nnz_tril = sum(min(i + 1, K) for i in range(M))  # row i keeps i+1 values
    assert c.report.macs == (1638 + nnz_tril) * N


def test_sparse_bmm() -> None:
    w = torch.stack([_weight(), _weight()])
    nnz = int((w != 0).sum())
    r = _count(lambda: torch.bmm(w.to_sparse(), torch.rand(2, K, N)))
    assert r.macs == nnz * N == 2 * 1638 * 32
