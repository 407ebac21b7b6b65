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
    """A 128×256 weight at about 6 % density, uneven by row: row i keeps its first i mod 32 columns (rows 0, 32, 64
    and 96 are empty), with values in [0.5, 1.5), none zero. nnz = 4·(0 + 1 + … + 31) = 4·496 = 1,984."""
    g = torch.Generator().manual_seed(0)
    rows, cols = torch.arange(M).unsqueeze(1), torch.arange(K).unsqueeze(0)
    return (torch.rand(M, K, generator=g) + 0.5) * (cols < rows % 32)


NNZ = 4 * (31 * 32 // 2)  # 128 rows = 4 cycles of rows keeping 0, 1, …, 31 values: 1,984


def _sparse(layout: str, w: torch.Tensor) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "sparse CSR support is in beta"
        return {"coo": w.to_sparse, "csr": w.to_sparse_csr, "csc": w.to_sparse_csc}[layout]()


def _count(fn: Callable[[], object]) -> flopwise.Report:
    with flopwise.counting() as c:
        fn()
    return c.report


def test_nnz_of_the_fixture_is_its_hand_count() -> None:
    w = _weight()
    assert NNZ == 1984
    assert int((w != 0).sum()) == NNZ
    assert [int((w[i] != 0).sum()) for i in (0, 1, 31, 32, 33, 127)] == [0, 1, 31, 0, 1, 31]  # i mod 32 per row


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
    assert r.macs == nnz * N == NNZ * 32 == 63_488  # nnz·N, not M·K·N = 1,048,576


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
    nnz = NNZ  # 1,984, by hand (see _weight)
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
    assert nnz_tril == 128 * 129 // 2  # 1 + 2 + … + 128 = 8,256
    assert c.report.macs == (NNZ + nnz_tril) * N


def test_sparse_bmm() -> None:
    w = torch.stack([_weight(), _weight()])
    nnz = int((w != 0).sum())
    r = _count(lambda: torch.bmm(w.to_sparse(), torch.rand(2, K, N)))
    assert r.macs == nnz * N == 2 * NNZ * 32  # two weights of 1,984 non-zeros each: 126,976
