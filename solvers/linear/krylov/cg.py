"""Preconditioned conjugate gradients (Hestenes & Stiefel 1952; Saad, *Iterative Methods*, Alg. 9.1).

Written here rather than taken from scipy/pyamg because neither reports a *breakdown*: on a matrix or
preconditioner that is not symmetric positive definite they keep iterating and may return a wrong
answer with a success flag. This CG checks symmetry at setup and the curvature ``p^T A p > 0`` and
``r^T M r > 0`` at every step, and stops with ``Breakdown`` when either fails.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp

from ..algorithm import History, Preconditioned, RunResult, Tolerances
from ..problem import canonical_csr
from ..solution import ReturnCode


def asymmetry(A) -> float:
    """``max |A - A^H| / max |A|`` for an explicit matrix (0 for operators that cannot be checked)."""
    if sp.issparse(A):
        A = canonical_csr(A)  # scipy's abs() sums duplicates in place: not on the caller's arrays
    if sp.issparse(A) or isinstance(A, np.ndarray):
        scale = abs(A).max()
        return float(abs(A - A.conj().T).max() / scale) if scale > 0 else 0.0
    return 0.0


def conjugate_gradient(A, b, x0, M, tol: Tolerances, callback=None, flexible: bool = False) -> RunResult:
    """CG (or flexible CG) iteration; ``M(r) -> z`` applies the preconditioner."""
    x = np.array(x0, dtype=np.result_type(A.dtype, b.dtype), copy=True)
    r = b - A @ x
    hist = History(np.linalg.norm(r), tol.target(np.linalg.norm(b)), callback)
    if hist.norms[0] <= hist.target:
        return RunResult(x, ReturnCode.Success, 0, hist.norms)
    z = M(r)
    rz = np.vdot(r, z).real
    if not rz > 0:
        return RunResult(x, ReturnCode.Breakdown, 0, hist.norms,
                         f"preconditioner is not positive definite (r^T M r = {rz:.3e})")
    p = z.copy()
    for k in range(1, tol.maxiter + 1):
        Ap = A @ p
        pAp = np.vdot(p, Ap).real
        if not pAp > 0:
            return RunResult(x, ReturnCode.Breakdown, k - 1, hist.norms,
                             f"A is not positive definite (p^T A p = {pAp:.3e} at iteration {k})")
        alpha = rz / pAp
        x += alpha * p
        r_old = r.copy() if flexible else None
        r -= alpha * Ap
        stop = hist.done(k, x, np.linalg.norm(r))
        if stop is not None:
            return RunResult(x, stop, k, hist.norms)
        z = M(r)
        rz_new = np.vdot(r, z).real
        if not rz_new > 0:
            return RunResult(x, ReturnCode.Breakdown, k, hist.norms,
                             f"preconditioner is not positive definite (r^T M r = {rz_new:.3e})")
        # flexible CG (Notay 2000): Polak-Ribiere beta keeps local orthogonality when M varies
        beta = (np.vdot(z, r - r_old).real if flexible else rz_new) / rz
        rz = rz_new
        p = z + beta * p
    return RunResult(x, ReturnCode.MaxIters, tol.maxiter, hist.norms)


class SymmetricState(NamedTuple):
    """Setup of a method for symmetric matrices: the preconditioner and ``A``'s measured asymmetry."""

    precond: Any
    asymmetry: float


@dataclass(frozen=True)
class SymmetricKrylov(Preconditioned):
    """Base of CG and MINRES: a matrix with ``max|A - A^H| > symmetry_tol * max|A|`` (measured once at setup)
    makes the solve return ``Breakdown`` without iterating; otherwise :meth:`iterate` runs."""

    check_symmetry: bool = True
    symmetry_tol: float = 1e-10
    needs_linear = True
    needs_symmetric = True

    def _state(self, pc, A):
        return SymmetricState(pc, asymmetry(A) if self.check_symmetry else 0.0)

    def precond_of(self, state):
        return state.precond

    def run(self, state, A, b, x0, tol, callback):
        if state.asymmetry > self.symmetry_tol:
            return RunResult(x0, ReturnCode.Breakdown, 0, [float(np.linalg.norm(b - A @ x0))],
                             f"{type(self).__name__} needs a symmetric matrix: max|A - A^T| / max|A| = "
                             f"{state.asymmetry:.3e}")
        return self.iterate(state.precond, A, b, x0, tol, callback)

    @abc.abstractmethod
    def iterate(self, pc, A, b, x0, tol, callback) -> RunResult:
        """The iteration itself (CG, MINRES), on a matrix already checked to be symmetric."""


@dataclass(frozen=True)
class CG(SymmetricKrylov):
    """Preconditioned CG for symmetric (Hermitian) positive definite ``A`` and a fixed SPD preconditioner.

    ``check_symmetry``: at setup, a matrix with ``max|A - A^H| > symmetry_tol * max|A|`` makes the
    solve return ``Breakdown`` without iterating.
    """

    def iterate(self, pc, A, b, x0, tol, callback):
        return conjugate_gradient(A, b, x0, pc, tol, callback, flexible=self._flexible)

    _flexible = False


@dataclass(frozen=True)
class FlexibleCG(CG):
    """Flexible CG (Notay 2000): tolerates a preconditioner that varies between iterations
    (nonlinear, learned, safeguarded; it still needs ``r^T z > 0`` at every step)."""

    _flexible = True
    needs_linear = False
    needs_symmetric = False
