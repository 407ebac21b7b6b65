"""Linear algebra: the leading-order LAPACK / Golub–Van Loan counts, by hand (see ops/linalg.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

import flopwise


def op_flops(op: str, fn: Callable[[], Any]) -> int:
    with flopwise.counting() as c:
        fn()
    ops = c.report.by_operator()
    assert op in ops, f"{op} did not run: {sorted(ops)}"
    return ops[op].flops


def spd(n: int, batch: tuple[int, ...] = ()) -> torch.Tensor:
    a = torch.randn(*batch, n, n, dtype=torch.float64)
    return a @ a.mT + n * torch.eye(n, dtype=torch.float64)


def test_cholesky_is_n_cubed_over_three() -> None:
    assert op_flops("aten.linalg_cholesky_ex", lambda: torch.linalg.cholesky(spd(6))) == 6**3 // 3  # 72
    assert op_flops("aten.linalg_cholesky_ex", lambda: torch.linalg.cholesky(spd(6, (3,)))) == 3 * 72  # batch 3


def test_lu_is_two_thirds_n_cubed_and_rectangular_l_s_squared() -> None:
    a = torch.randn(6, 6, dtype=torch.float64)
    assert op_flops("aten.linalg_lu_factor_ex", lambda: torch.linalg.lu_factor(a)) == 6 * 6 * 6 - 6**3 // 3  # 144
    tall = torch.randn(8, 4, dtype=torch.float64)
    assert op_flops("aten.linalg_lu", lambda: torch.linalg.lu(tall)) == 8 * 4 * 4 - 4**3 // 3  # m·n² − n³/3 = 107


def test_triangular_solve_is_n_squared_per_column() -> None:
    a = torch.randn(5, 5, dtype=torch.float64).triu() + 5 * torch.eye(5, dtype=torch.float64)
    b = torch.randn(2, 5, 3, dtype=torch.float64)  # a batch of 2, 3 right-hand sides each
    flops = op_flops("aten.linalg_solve_triangular", lambda: torch.linalg.solve_triangular(a, b, upper=True))
    assert flops == 5 * 5 * (2 * 3)  # N²·R, R = 6 columns over the batch


def test_solve_is_lu_plus_two_triangular_solves() -> None:
    a, b = spd(4), torch.randn(4, 2, dtype=torch.float64)
    assert op_flops("aten._linalg_solve_ex", lambda: torch.linalg.solve(a, b)) == 2 * 4**3 // 3 + 2 * 4 * 4 * 2  # 42+64


def test_cholesky_solve_and_inverse() -> None:
    l_factor, b = torch.linalg.cholesky(spd(4)), torch.randn(4, 3, dtype=torch.float64)
    assert op_flops("aten.cholesky_solve", lambda: torch.cholesky_solve(b, l_factor)) == 2 * 4 * 4 * 3  # 2·N²·K
    assert op_flops("aten.cholesky_inverse", lambda: torch.cholesky_inverse(l_factor)) == 2 * 4**3 // 3  # 42
    assert op_flops("aten.linalg_inv_ex", lambda: torch.linalg.inv(spd(4))) == 2 * 4**3  # LU + inversion: 2N³


def test_determinant_is_an_lu() -> None:
    assert op_flops("aten._linalg_det", lambda: torch.linalg.det(spd(6))) == 2 * 6**3 // 3  # 144


def test_qr_counts_r_and_the_formed_q() -> None:
    a = torch.randn(8, 4, dtype=torch.float64)
    r_only = 2 * 8 * 4 * 4 - 2 * 4**3 // 3  # 2mn² − 2n³/3 = 256 − 42 = 214
    assert op_flops("aten.linalg_qr", lambda: torch.linalg.qr(a, mode="r")) == r_only
    thin_q = 4 * 8 * 4 * 4 - 2 * (8 + 4) * 4 * 4 + 4 * 4**3 // 3  # orgqr m=8, n=k=4: 512 − 384 + 85 = 213
    assert op_flops("aten.linalg_qr", lambda: torch.linalg.qr(a)) == r_only + thin_q
    full_q = 4 * 8 * 8 * 4 - 2 * (8 + 8) * 4 * 4 + 4 * 4**3 // 3  # m×m Q from 4 reflectors: 1024 − 512 + 85
    assert op_flops("aten.linalg_qr", lambda: torch.linalg.qr(a, mode="complete")) == r_only + full_q


def test_symmetric_eigen_and_svd_follow_golub_van_loan() -> None:
    a = spd(5)
    assert op_flops("aten._linalg_eigh", lambda: torch.linalg.eigh(a)) == 9 * 5**3  # with eigenvectors
    # values only (eigvalsh asks for vectors too under a dispatch mode, in case a gradient is needed)
    values_only = op_flops("aten._linalg_eigh", lambda: torch.ops.aten._linalg_eigh(a, "L", False))
    assert values_only == 4 * 5**3 // 3  # 166
    m = torch.randn(6, 4, dtype=torch.float64)
    sigma_only = op_flops("aten._linalg_svd", lambda: torch.ops.aten._linalg_svd(m, False, False))  # as eigh
    assert sigma_only == 4 * 6 * 16 - 4 * 64 // 3  # 4·L·S² − 4·S³/3 = 384 − 85
    thin = 14 * 6 * 4 * 4 + 8 * 4**3  # 14·L·S² + 8·S³ = 1344 + 512
    assert op_flops("aten._linalg_svd", lambda: torch.linalg.svd(m, full_matrices=False)) == thin
    full = 4 * 6 * 6 * 4 + 8 * 6 * 4 * 4 + 9 * 4**3  # 4·L²·S + 8·L·S² + 9·S³ = 576 + 768 + 576
    assert op_flops("aten._linalg_svd", lambda: torch.linalg.svd(m)) == full


def test_general_eigen() -> None:
    a = torch.randn(4, 4, dtype=torch.float64)
    assert op_flops("aten.linalg_eig", lambda: torch.linalg.eig(a)) == 25 * 4**3  # with eigenvectors: 1,600


def test_pinv_is_a_thin_svd_and_a_product() -> None:
    m = torch.randn(6, 4, dtype=torch.float64)
    expected = (14 * 6 * 4 * 4 + 8 * 4**3) + 2 * 6 * 4 * 4  # thin SVD; V·Σ⁺·Uᵀ, 4×4 by 4×6: 2·M·N·S = 192
    assert op_flops("aten.linalg_pinv", lambda: torch.linalg.pinv(m)) == expected


def test_linalg_flops_are_not_macs() -> None:
    a = spd(6)
    with flopwise.counting() as c:
        torch.linalg.cholesky(a)
    assert c.report.macs == 0  # a factorization is FLOPs of kind "linalg", not a contraction's MACs
