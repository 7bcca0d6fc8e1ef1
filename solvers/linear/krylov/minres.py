"""Preconditioned MINRES (Paige & Saunders 1975) for symmetric, possibly indefinite ``A``.

The recurrence follows Paige & Saunders' (and scipy's) formulation. It is written here because
scipy's ``minres`` stops on ``||r|| / (||A|| ||x|| + ||b||)`` and cannot be told to stop on
``||r|| / ||b||``; this version also carries ``A w`` along the search directions so the recursive
*unpreconditioned* residual ``r = b - A x`` is available at each step for the shared stopping test.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..algorithm import History, RunResult, Tolerances
from ..solution import ReturnCode
from .cg import SymmetricKrylov


def minres(A, b, x0, M, tol: Tolerances, callback=None) -> RunResult:
    x = np.array(x0, dtype=np.result_type(A.dtype, b.dtype, np.float64), copy=True)
    r = b - A @ x
    hist = History(np.linalg.norm(r), tol.target(np.linalg.norm(b)), callback)
    if hist.norms[0] <= hist.target:
        return RunResult(x, ReturnCode.Success, 0, hist.norms)
    r1 = r.copy()
    y = M(r1)
    beta1 = np.vdot(r1, y).real
    if not beta1 > 0:
        return RunResult(x, ReturnCode.Breakdown, 0, hist.norms,
                         f"preconditioner is not positive definite (r^T M r = {beta1:.3e})")
    beta = np.sqrt(beta1)
    oldb, dbar, epsln, phibar, cs, sn = 0.0, 0.0, 0.0, beta, -1.0, 0.0
    r2 = r1.copy()
    w = np.zeros_like(x); w2 = np.zeros_like(x)
    Aw = np.zeros_like(x); Aw2 = np.zeros_like(x)
    tiny = np.finfo(float).eps
    for k in range(1, tol.maxiter + 1):
        v = y / beta
        Av = A @ v
        y = Av.copy()
        if k >= 2:
            y -= (beta / oldb) * r1
        alfa = np.vdot(v, y).real
        y -= (alfa / beta) * r2
        r1, r2 = r2, y
        y = M(r2)
        oldb = beta
        beta2 = np.vdot(r2, y).real
        if beta2 < 0:
            return RunResult(x, ReturnCode.Breakdown, k - 1, hist.norms,
                             f"preconditioner is not positive definite (r^T M r = {beta2:.3e})")
        beta = np.sqrt(beta2)
        oldeps = epsln
        delta = cs * dbar + sn * alfa
        gbar = sn * dbar - cs * alfa
        epsln = sn * beta
        dbar = -cs * beta
        gamma = max(np.hypot(gbar, beta), tiny)
        cs, sn = gbar / gamma, beta / gamma
        phi = cs * phibar
        phibar = sn * phibar
        w1, w2 = w2, w
        w = (v - oldeps * w1 - delta * w2) / gamma
        Aw1, Aw2 = Aw2, Aw
        Aw = (Av - oldeps * Aw1 - delta * Aw2) / gamma
        x += phi * w
        r -= phi * Aw
        stop = hist.done(k, x, np.linalg.norm(r))
        if stop is not None:
            return RunResult(x, stop, k, hist.norms)
        if beta == 0:  # Lanczos terminated: x is the minimizer over the whole Krylov space
            return RunResult(x, ReturnCode.Breakdown, k, hist.norms,
                             "MINRES: Krylov space exhausted without reaching the tolerance (singular system?)")
    return RunResult(x, ReturnCode.MaxIters, tol.maxiter, hist.norms)


@dataclass(frozen=True)
class MINRES(SymmetricKrylov):
    """MINRES for symmetric (indefinite) ``A`` with a fixed SPD preconditioner.

    A non-symmetric matrix gives ``Breakdown`` at setup (as for :class:`CG`).
    """

    def iterate(self, pc, A, b, x0, tol, callback):
        return minres(A, b, x0, pc, tol, callback)
