"""Flexible GMRES(m) with its vectors on a torch device.

Why written: neither torch nor CuPy has a flexible GMRES (CuPy's ``gmres`` takes a fixed linear
preconditioner; the learned Helmholtz correction is nonlinear). This is the algorithm of
:func:`solvers.linear.krylov.gmres.gmres` with ``flexible=True``: right preconditioning, classical
Gram-Schmidt with a DGKS second pass, the same Givens step (:func:`~solvers.linear.krylov.gmres.givens_step`,
shared: the small Hessenberg matrix lives on the host), and the true residual recomputed at the end of
every restart cycle: ``converged`` means the true residual met the tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from solvers.linear.krylov.gmres import _DGKS, givens_step


@dataclass
class FGMRESResult:
    x: torch.Tensor
    converged: bool
    iterations: int
    residuals: list = field(default_factory=list)  # per iteration; the true one at each cycle's end
    message: str = ""


def _norm(v: torch.Tensor) -> float:
    return float(torch.linalg.vector_norm(v))


def fgmres(A, M, b: torch.Tensor, rtol: float = 1e-8, restart: int = 30, maxiter: int = 1000,
           x0: torch.Tensor | None = None) -> FGMRESResult:
    """Solve ``A x = b`` with the right preconditioner ``M`` (any map; may change between calls).

    ``A`` and ``M`` act on tensors of ``b``'s shape (a node grid); ``maxiter`` counts inner iterations
    over all cycles. Stops when the true residual ``||b - A x||`` is at most ``rtol ||b||``."""
    shape, N = b.shape, b.numel()
    x = torch.zeros_like(b) if x0 is None else x0.clone()
    r = b - A @ x if x0 is not None else b.clone()
    beta, bnorm = _norm(r), _norm(b)
    target = rtol * bnorm
    residuals = [beta]
    if beta <= target:
        return FGMRESResult(x, True, 0, residuals)
    m, k = max(1, int(restart)), 0
    V = torch.empty((m + 1, N), dtype=b.dtype, device=b.device)
    Z = torch.empty((m, N), dtype=b.dtype, device=b.device)
    ctype = np.complex128 if b.is_complex() else np.float64
    while k < maxiter:
        H = np.zeros((m + 1, m), dtype=ctype)
        cs, sn, g = np.zeros(m, dtype=ctype), np.zeros(m, dtype=ctype), np.zeros(m + 1, dtype=ctype)
        g[0] = beta
        V[0] = (r / beta).reshape(-1)
        j_used, happy = 0, False
        for j in range(m):
            z = M(V[j].reshape(shape))
            Z[j] = z.reshape(-1)
            w = (A @ z).reshape(-1)
            Vj = V[: j + 1]
            w_norm = _norm(w)
            h = torch.conj(Vj @ torch.conj(w)).resolve_conj()
            w -= Vj.T @ h
            hn = _norm(w)
            if hn < _DGKS * w_norm:
                h2 = torch.conj(Vj @ torch.conj(w)).resolve_conj()
                w -= Vj.T @ h2
                h += h2
                hn = _norm(w)
            H[: j + 1, j] = h.cpu().numpy()
            H[j + 1, j] = hn
            if not np.all(np.isfinite(H[: j + 2, j])):
                return FGMRESResult(x, False, k, residuals, "FGMRES: non-finite values in the Arnoldi process "
                                    "(the matrix or the preconditioner produced inf/NaN)")
            happy = hn <= 1e-14 * np.abs(H[: j + 1, j]).max(initial=0.0)
            if not happy:
                V[j + 1] = w / hn
            if not givens_step(H, cs, sn, g, j):
                return FGMRESResult(x, False, k, residuals, "FGMRES: zero Hessenberg column")
            k += 1
            j_used = j + 1
            est = float(abs(g[j + 1]))
            residuals.append(est)
            if est <= target or happy or k >= maxiter:
                break
        y = np.linalg.solve(np.triu(H[:j_used, :j_used]), g[:j_used])
        x += (Z[:j_used].T @ torch.as_tensor(y, dtype=b.dtype, device=b.device)).reshape(shape)
        r = b - A @ x
        beta = _norm(r)
        residuals[-1] = beta  # the true residual replaces the estimate at the end of a cycle
        if not np.isfinite(beta):
            return FGMRESResult(x, False, k, residuals, "FGMRES: non-finite residual")
        if beta <= target:
            return FGMRESResult(x, True, k, residuals)
        if happy:
            return FGMRESResult(x, False, k, residuals, "FGMRES: the Arnoldi process found no new direction "
                                "before reaching the tolerance")
    return FGMRESResult(x, False, k, residuals, f"FGMRES: {maxiter} iterations without reaching "
                        f"{rtol:.1e} (true relative residual {beta / bnorm:.2e})")
