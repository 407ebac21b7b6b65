"""Dense linear algebra: factorizations, solves, inverses, eigen- and singular-value decompositions.

Convention: the leading-order floating-point operation counts of LAPACK Working Note 41 (the `dopla` counts)
and Golub & Van Loan, *Matrix Computations* (4th ed.), for real matrices; lower-order terms (O(n²)) are
dropped. They are FLOPs of kind "linalg" (adds and multiplies together, as the textbooks count them), not
MACs: a factorization is not one of the contractions a MAC convention counts. B is the batch (the product
of the leading dimensions); an m×n matrix has L = max(m, n) and S = min(m, n); a solve has R right-hand-side
columns over the whole batch (R = elements of the solution / N). The eigenvalue and singular-value counts are
Golub & Van Loan's estimates for the QR iterations (about two steps per eigenvalue): an iterative method's
true count depends on the data.
"""

from __future__ import annotations

from math import prod
from typing import Any

from torch import ops

from ..core.cost import Flops, Term, Work
from .registry import TensorSpec, formula
from .shapes import first

aten = ops.aten

_NOTE = "leading-order LAPACK/Golub–Van Loan count, real arithmetic"


def _work(expr: str, **sizes: int) -> Work:
    return Work(flops=(Flops("linalg", Term(expr, **sizes)),), note=_NOTE)


def _matrix(a: TensorSpec) -> tuple[int, int, int]:
    """(batch, rows, columns) of a (batch of) matrices."""
    return prod(int(d) for d in a.shape[:-2]), int(a.shape[-2]), int(a.shape[-1])


def _solution_columns(x: TensorSpec, n: int) -> int:
    """R: right-hand-side columns of a solve over the whole batch (the solution's elements / N)."""
    return int(x.numel()) // max(n, 1)


@formula(aten.linalg_cholesky_ex, aten.linalg_ldl_factor_ex)
def cholesky(result: tuple[TensorSpec, ...], a: TensorSpec, *args: Any, **kwargs: Any) -> Work:
    """Cholesky A = LLᵀ, or LDLᵀ (Bunch–Kaufman) at the same cost: N³/3 per matrix."""
    b, _, n = _matrix(a)
    return _work("B·N·N·N/3", B=b, N=n)


@formula(aten.linalg_lu_factor_ex, aten.linalg_lu)
def lu_factor(result: tuple[TensorSpec, ...], a: TensorSpec, *args: Any, **kwargs: Any) -> Work:
    """LU with partial pivoting of an m×n matrix: L·S² − S³/3 (2N³/3 when square)."""
    b, m, n = _matrix(a)
    return _work("B·(L·S·S − S·S·S/3)", B=b, L=max(m, n), S=min(m, n))


@formula(aten._linalg_det, aten._linalg_slogdet)
def determinant(result: tuple[TensorSpec, ...], a: TensorSpec, *args: Any, **kwargs: Any) -> Work:
    """An LU factorization, 2N³/3 (the product of the N pivots is lower order)."""
    b, _, n = _matrix(a)
    return _work("B·2·N·N·N/3", B=b, N=n)


@formula(aten.linalg_inv_ex)
def inverse(result: tuple[TensorSpec, ...], a: TensorSpec, *args: Any, **kwargs: Any) -> Work:
    """LU (2N³/3) and inversion from it (4N³/3): 2N³."""
    b, _, n = _matrix(a)
    return _work("B·2·N·N·N", B=b, N=n)


@formula(aten.cholesky_inverse)
def cholesky_inverse(result: TensorSpec, l_factor: TensorSpec, *args: bool, **kwargs: Any) -> Work:
    """Inverse from a Cholesky factor (LAPACK potri): 2N³/3."""
    b, _, n = _matrix(l_factor)
    return _work("B·2·N·N·N/3", B=b, N=n)


@formula(aten.linalg_solve_triangular)
def solve_triangular(result: TensorSpec, a: TensorSpec, rhs: TensorSpec, *args: Any, **kwargs: Any) -> Work:
    """Triangular solve: N² per right-hand-side column (N²·K per matrix)."""
    n = int(a.shape[-1])
    return _work("N·N·R", N=n, R=_solution_columns(first(result), n))


@formula(aten.triangular_solve)
def triangular_solve(
    result: tuple[TensorSpec, ...], rhs: TensorSpec, a: TensorSpec, *args: bool, **kwargs: Any
) -> Work:
    """Triangular solve (legacy argument order: b, A): N² per right-hand-side column."""
    n = int(a.shape[-1])
    return _work("N·N·R", N=n, R=_solution_columns(first(result), n))


@formula(aten.linalg_lu_solve, aten.linalg_ldl_solve)
def factored_solve(
    result: TensorSpec, factors: TensorSpec, pivots: TensorSpec, rhs: TensorSpec, *args: Any, **kwargs: Any
) -> Work:
    """Two triangular solves with a given factorization: 2·N² per right-hand-side column."""
    n = int(factors.shape[-1])
    return _work("2·N·N·R", N=n, R=_solution_columns(first(result), n))


@formula(aten.cholesky_solve, aten._cholesky_solve_helper)
def cholesky_solve(result: TensorSpec, rhs: TensorSpec, l_factor: TensorSpec, *args: bool, **kwargs: Any) -> Work:
    """Two triangular solves with the Cholesky factor: 2·N² per right-hand-side column."""
    n = int(l_factor.shape[-1])
    return _work("2·N·N·R", N=n, R=_solution_columns(first(result), n))


@formula(aten._linalg_solve_ex)
def solve(result: tuple[TensorSpec, ...], a: TensorSpec, rhs: TensorSpec, *args: Any, **kwargs: Any) -> Work:
    """LU of A (2N³/3) and two triangular solves (2·N² per right-hand-side column)."""
    b, _, n = _matrix(a)
    return _work("B·2·N·N·N/3 + 2·N·N·R", B=b, N=n, R=_solution_columns(first(result), n))


def _householder(b: int, m: int, n: int, k: int) -> Term:
    """Forming an m×n Q from k reflectors (LAPACK orgqr): 4mnk − 2(m + n)k² + 4k³/3."""
    return Term("B·(4·M·N·K − 2·(M + N)·K·K + 4·K·K·K/3)", B=b, M=m, N=n, K=k)


@formula(aten.geqrf)
def geqrf(result: tuple[TensorSpec, ...], a: TensorSpec, *args: Any, **kwargs: Any) -> Work:
    """Householder QR, R and the reflectors: 2·L·S² − 2·S³/3."""
    b, m, n = _matrix(a)
    return _work("B·(2·L·S·S − 2·S·S·S/3)", B=b, L=max(m, n), S=min(m, n))


@formula(aten.linalg_householder_product)
def householder_product(result: TensorSpec, a: TensorSpec, tau: TensorSpec, *args: Any, **kwargs: Any) -> Work:
    """Q from k Householder reflectors (orgqr): 4mnk − 2(m + n)k² + 4k³/3."""
    b, m, n = _matrix(a)
    term = _householder(b, m, n, int(tau.shape[-1]))
    return Work(flops=(Flops("linalg", term),), note=_NOTE)


@formula(aten.ormqr)
def ormqr(
    result: TensorSpec, a: TensorSpec, tau: TensorSpec, c: TensorSpec, left: bool = True, *args: bool, **kwargs: Any
) -> Work:
    """Apply k reflectors to an m×n C (ormqr): 4mnk − 2nk² from the left, 4mnk − 2mk² from the right."""
    b, m, n = _matrix(c)
    k = int(tau.shape[-1])
    expr = "B·(4·M·N·K − 2·N·K·K)" if left else "B·(4·M·N·K − 2·M·K·K)"
    return _work(expr, B=b, M=m, N=n, K=k)


@formula(aten.linalg_qr)
def qr(result: tuple[TensorSpec, ...], a: TensorSpec, mode: str = "reduced", *args: Any, **kwargs: Any) -> Work:
    """Householder QR (2·L·S² − 2·S³/3) and, unless mode="r", Q formed from the S reflectors (orgqr: m×S when
    reduced, m×m when complete)."""
    b, m, n = _matrix(a)
    r = Term("B·(2·L·S·S − 2·S·S·S/3)", B=b, L=max(m, n), S=min(m, n))
    flops = [Flops("linalg", r)]
    if mode != "r":
        k = min(m, n)
        flops.append(Flops("linalg", _householder(b, m, m if mode == "complete" else k, k)))
    return Work(flops=tuple(flops), note=_NOTE + f"; mode={mode}")


@formula(aten._linalg_eigh)
def eigh(
    result: tuple[TensorSpec, ...], a: TensorSpec, uplo: str = "L", compute_v: bool = True, *args: Any, **kwargs: Any
) -> Work:
    """Symmetric eigendecomposition: 9N³ with eigenvectors, 4N³/3 for eigenvalues only (Golub–Van Loan)."""
    b, _, n = _matrix(a)
    return _work("B·9·N·N·N" if compute_v else "B·4·N·N·N/3", B=b, N=n)


@formula(aten.linalg_eig)
def eig(result: tuple[TensorSpec, ...], a: TensorSpec, *args: Any, **kwargs: Any) -> Work:
    """General eigendecomposition (Hessenberg QR): 25N³ with eigenvectors (Golub–Van Loan)."""
    b, _, n = _matrix(a)
    return _work("B·25·N·N·N", B=b, N=n)


@formula(aten._linalg_eigvals, aten.linalg_eigvals)
def eigvals(result: TensorSpec, a: TensorSpec, *args: Any, **kwargs: Any) -> Work:
    """General eigenvalues only (Hessenberg QR): 10N³ (Golub–Van Loan)."""
    b, _, n = _matrix(a)
    return _work("B·10·N·N·N", B=b, N=n)


def _svd_term(b: int, m: int, n: int, full_matrices: bool, compute_uv: bool) -> Term:
    sizes = dict(B=b, L=max(m, n), S=min(m, n))
    if not compute_uv:
        return Term("B·(4·L·S·S − 4·S·S·S/3)", **sizes)
    if full_matrices:
        return Term("B·(4·L·L·S + 8·L·S·S + 9·S·S·S)", **sizes)
    return Term("B·(14·L·S·S + 8·S·S·S)", **sizes)


@formula(aten._linalg_svd)
def svd(
    result: tuple[TensorSpec, ...],
    a: TensorSpec,
    full_matrices: bool = False,
    compute_uv: bool = True,
    *args: Any,
    **kwargs: Any,
) -> Work:
    """Golub–Reinsch SVD: Σ only 4·L·S² − 4·S³/3; thin U, Σ, V 14·L·S² + 8·S³; full U 4·L²·S + 8·L·S² + 9·S³."""
    b, m, n = _matrix(a)
    return Work(flops=(Flops("linalg", _svd_term(b, m, n, bool(full_matrices), bool(compute_uv))),), note=_NOTE)


@formula(aten.linalg_pinv)
def pinv(result: TensorSpec, a: TensorSpec, *args: Any, hermitian: bool = False, **kwargs: Any) -> Work:
    """A thin SVD (eigh when hermitian: 9N³) and V·Σ⁺·Uᴴ, an N×S by S×M product (2·M·N·S)."""
    b, m, n = _matrix(a)
    if hermitian:
        return _work("B·9·N·N·N + B·2·N·N·N", B=b, N=n)
    product = Term("B·2·M·N·S", B=b, M=m, N=n, S=min(m, n))
    flops = (Flops("linalg", _svd_term(b, m, n, False, True)), Flops("linalg", product))
    return Work(flops=flops, note=_NOTE)
