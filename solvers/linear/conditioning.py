"""``||A^{-1}||_2``, the norm of a sparse system's solution operator, by one sparse LU and ARPACK.

What it tells: for Helmholtz at fixed points per wavelength, ``||A^{-1}||_2`` grows like ``k`` in a
non-trapping medium (every ray leaves the domain) and faster where the medium traps waves (Betcke,
Chandler-Wilde, Graham, Langdon & Lindner 2011; Marchand, Galkowski, Spence & Spence 2022); iterative
solvers need more iterations as it grows, whatever their preconditioner. ``hybrid bench helmholtz-norm``
reports it per medium and size (``hybrid.bench.helmholtz_norm``).

Written here because scipy has no norm estimate of an inverse for complex sparse matrices
(``scipy.sparse.linalg.onenormest`` estimates the 1-norm of an operator it can apply and its adjoint; the
2-norm is what the spectral arguments use): the largest singular value of ``A^{-1}`` comes from
``scipy.sparse.linalg.svds`` (ARPACK) on an operator that applies ``A^{-1}`` and ``A^{-H}`` with the same
SuperLU factors.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla


def inverse_norm(A, tol: float = 1e-4, seed: int = 0) -> float:
    """``||A^{-1}||_2 = 1 / sigma_min(A)`` for a square sparse (or dense) ``A``, to a relative ``tol``.
    A singular ``A`` raises ``ValueError`` naming it."""
    A = sp.csc_matrix(A)
    if A.shape[0] != A.shape[1] or A.shape[0] == 0:
        raise ValueError(f"inverse_norm: A must be square and non-empty, got shape {A.shape}")
    if not np.all(np.isfinite(A.data)):
        raise ValueError("inverse_norm: A has non-finite entries (NaN or inf)")
    dtype = np.result_type(A.dtype, np.float64)
    try:
        lu = spla.splu(A.astype(dtype), permc_spec="MMD_AT_PLUS_A")
    except RuntimeError as e:  # "Factor is exactly singular"
        raise ValueError(f"inverse_norm: A is singular ({e})") from None
    if A.shape[0] == 1:
        return float(1.0 / abs(A[0, 0]))
    op = spla.LinearOperator(A.shape, matvec=lu.solve, rmatvec=lambda y: lu.solve(y, trans="H"), dtype=dtype)
    v0 = np.random.default_rng(seed).standard_normal(A.shape[0]).astype(dtype)
    s = spla.svds(op, k=1, tol=tol, v0=v0, solver="arpack", return_singular_vectors=False)
    return float(s[0])
