"""Restarted GMRES and flexible GMRES with right preconditioning.

GMRES: Saad & Schultz 1986; FGMRES: Saad 1993 (*A flexible inner-outer preconditioned GMRES*).
Written here because pyamg's ``fgmres`` calls back and counts ``maxiter`` per restart cycle and
reports stagnation and breakdown with the same flag, and scipy's ``gmres`` is left preconditioned (its
residual is the preconditioned one) and has no flexible variant. Right preconditioning makes the
monitored residual the true one, so the stopping test means the same for every preconditioner.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..algorithm import DIVERGENCE_FACTOR, History, Preconditioned, RunResult, Tolerances
from ..solution import ReturnCode


#: storage precisions of FGMRES's preconditioned basis ``Z``
Z_PRECISIONS = ("double", "single")

#: refine the Gram-Schmidt step when it leaves less than this fraction of ``||w||`` (Daniel, Gragg,
#: Kaufman & Stewart 1976; 1/sqrt(2) as in PETSc's refine_ifneeded and Giraud et al. 2005)
_DGKS = 1.0 / np.sqrt(2.0)


def _inner(V, w):
    """``V^* w`` (inner products of the rows of ``V`` with ``w``) without copying ``V``."""
    if np.iscomplexobj(V):
        return np.conj(V @ np.conj(w))
    return V @ w


def givens_step(H, cs, sn, g, j: int) -> bool:
    """Bring column ``j`` of the Hessenberg matrix ``H`` to upper-triangular form: the previous rotations
    ``(cs, sn)[:j]``, then a new one that zeroes ``H[j+1, j]``, applied to the right-hand side ``g`` too
    (``|g[j+1]|`` is then the least-squares residual). ``False`` for a zero column (breakdown).
    Shared with the torch FGMRES of :mod:`hybrid.gpu.fgmres`, whose small matrices live on the host."""
    for i in range(j):  # apply previous rotations
        t = cs[i] * H[i, j] + sn[i] * H[i + 1, j]
        H[i + 1, j] = -np.conj(sn[i]) * H[i, j] + cs[i] * H[i + 1, j]
        H[i, j] = t
    a, c = H[j, j], H[j + 1, j]
    den = np.sqrt(abs(a) ** 2 + abs(c) ** 2)
    if den == 0:
        return False
    cs[j], sn[j] = (abs(a) / den, (a / abs(a)) * np.conj(c) / den) if a != 0 else (0.0, 1.0)
    H[j, j] = cs[j] * a + sn[j] * c
    H[j + 1, j] = 0.0
    g[j + 1] = -np.conj(sn[j]) * g[j]
    g[j] = cs[j] * g[j]
    return True


def gmres(A, b, x0, M, tol: Tolerances, restart: int, callback=None, flexible: bool = False,
          z_precision: str = "double") -> RunResult:
    """Right-preconditioned restarted (F)GMRES with Gram-Schmidt (CGS2) and Givens rotations.

    ``maxiter`` counts inner iterations (matrix-vector products), over all restart cycles.
    ``z_precision="single"`` (flexible only) stores the preconditioned vectors ``Z`` in single precision:
    half the memory of that basis. ``A`` is applied to the stored, rounded ``z``, so the Arnoldi relation
    ``A Z = V H`` and the least-squares residual stay exact in double precision; the rounding only perturbs
    the search directions, like any other change of a flexible preconditioner (``V`` stays double, as
    its orthogonality is what the method relies on).
    """
    if z_precision not in Z_PRECISIONS:
        raise ValueError(f"z_precision={z_precision!r}: expected one of {', '.join(Z_PRECISIONS)}")
    dtype = np.result_type(A.dtype, b.dtype, np.float64)
    zdtype = dtype
    if flexible and z_precision == "single":
        zdtype = np.dtype(np.complex64 if np.issubdtype(dtype, np.complexfloating) else np.float32)
    x = np.array(x0, dtype=dtype, copy=True)
    n = len(b)
    m = max(1, min(int(restart), n))
    r = b - A @ x
    beta = np.linalg.norm(r)
    hist = History(beta, tol.target(np.linalg.norm(b)), callback)
    if beta <= hist.target:
        return RunResult(x, ReturnCode.Success, 0, hist.norms)
    k = 0
    while k < tol.maxiter:
        V = np.zeros((m + 1, n), dtype=dtype)
        Z = np.zeros((m, n), dtype=zdtype) if flexible else None
        H = np.zeros((m + 1, m), dtype=dtype)
        cs, sn = np.zeros(m, dtype=dtype), np.zeros(m, dtype=dtype)
        g = np.zeros(m + 1, dtype=dtype)
        g[0] = beta
        V[0] = r / beta
        j_used = 0
        for j in range(m):
            z = M(V[j])
            if flexible:
                Z[j] = z
                if zdtype != dtype:
                    z = Z[j].astype(dtype)  # the rounded vector, so that A Z = V H holds exactly
            w = A @ z
            Vj = V[: j + 1]
            # classical Gram-Schmidt with a second pass only when the first cancelled most of w (DGKS,
            # ||w|| dropped below ||w_0|| / sqrt(2): as stable as CGS2, which PETSc offers as
            # -ksp_gmres_cgs_refinement_type refine_ifneeded). Each pass reads the whole basis twice and
            # the orthogonalization is memory-bound: always refining made it 60% of a Helmholtz solve at
            # n = 512 (cslp+fgmres, 252 iterations either way; 41% of the steps refined, 24 -> 19 s).
            # conj(Vj @ conj(w)) rather than Vj.conj() @ w, which copied the basis every iteration.
            w_norm = np.linalg.norm(w)
            h = _inner(Vj, w)
            w -= Vj.T @ h
            H[j + 1, j] = np.linalg.norm(w)
            if H[j + 1, j] < _DGKS * w_norm:
                h2 = _inner(Vj, w)
                w -= Vj.T @ h2
                h += h2
                H[j + 1, j] = np.linalg.norm(w)
            H[: j + 1, j] = h
            if not np.all(np.isfinite(H[: j + 2, j])):
                return RunResult(x, ReturnCode.Breakdown, k, hist.norms,
                                 "GMRES: non-finite values in the Arnoldi process (the matrix or the "
                                 "preconditioner produced inf/NaN)")
            happy = H[j + 1, j] <= 1e-14 * abs(H[: j + 1, j]).max(initial=0.0)
            if not happy:
                V[j + 1] = w / H[j + 1, j]
            if not givens_step(H, cs, sn, g, j):
                return RunResult(x, ReturnCode.Breakdown, k, hist.norms, "GMRES: zero Hessenberg column")
            k += 1
            j_used = j + 1
            est = abs(g[j + 1])
            hist.norms.append(float(est))
            if hist.callback is not None:
                hist.callback(k, None, float(est))
            if est <= hist.target or happy or k >= tol.maxiter:
                break
        y = np.linalg.solve(np.triu(H[:j_used, :j_used]), g[:j_used]) if j_used else np.zeros(0)
        if flexible and zdtype != dtype:
            for i in range(j_used):  # row by row: Z[:j].T @ y would upcast all of Z to a double copy
                x += Z[i].astype(dtype) * y[i]  # in double whatever numpy's scalar promotion rules
        elif flexible:
            x += Z[:j_used].T @ y
        else:
            x += M(V[:j_used].T @ y)
        r = b - A @ x
        beta = np.linalg.norm(r)
        hist.norms[-1] = float(beta)  # the true residual replaces the estimate at the end of a cycle
        if not np.isfinite(beta) or beta > DIVERGENCE_FACTOR * max(hist.norms[0], hist.target):
            return RunResult(x, ReturnCode.Diverged, k, hist.norms)
        if beta <= hist.target:
            return RunResult(x, ReturnCode.Success, k, hist.norms)
        if happy and beta > hist.target:
            # invariant subspace found but the residual is not small: singular/inconsistent system
            if abs(g[j_used]) > hist.target:
                return RunResult(x, ReturnCode.Breakdown, k, hist.norms,
                                 "GMRES: the Arnoldi process found no new direction (below round-off) before "
                                 "reaching the tolerance: singular or inconsistent system, or a preconditioned "
                                 "operator that is numerically singular")
    return RunResult(x, ReturnCode.MaxIters, k, hist.norms)


@dataclass(frozen=True)
class GMRES(Preconditioned):
    """Restarted GMRES(``restart``) with a fixed right preconditioner."""

    restart: int = 50

    def run(self, state, A, b, x0, tol, callback):
        return gmres(A, b, x0, state, tol, self.restart, callback, flexible=False)


@dataclass(frozen=True)
class FGMRES(Preconditioned):
    """Flexible GMRES(``restart``): the preconditioner may change every iteration (learned, inner solves).

    ``z_precision="single"`` stores the preconditioned basis in single precision (half its memory; the
    residual is still computed and monitored in double, see :func:`gmres`)."""

    restart: int = 50
    z_precision: str = "double"
    needs_linear = False

    def __post_init__(self):
        if self.z_precision not in Z_PRECISIONS:
            raise ValueError(f"FGMRES(z_precision={self.z_precision!r}): expected one of {', '.join(Z_PRECISIONS)}")

    def run(self, state, A, b, x0, tol, callback):
        return gmres(A, b, x0, state, tol, self.restart, callback, flexible=True, z_precision=self.z_precision)
