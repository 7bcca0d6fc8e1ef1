"""The algebraic MgNO V-cycle as a learned preconditioner on any mesh: ``AlgebraicVCycle`` (linear,
``r -> z``) and ``AlgebraicVCyclePreconditioner`` (the preconditioner protocol; pyamg's hierarchy of the
system's own matrix is built at setup, so the same trained weights run on every matrix).

Trained on the energy norm of the error propagation ``||(I - B A) e||_A / ||e||_A``
(:func:`hybrid.training.energy.energy_loss`) over the matrices of a few coefficients. It is linear but not
symmetric, so it goes to ``FGMRES``/``FlexibleCG``, and it is meant to be wrapped in
:class:`hybrid.precond.Safeguarded` with a classical fallback: a step that does not contract is replaced.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from solvers.linear.preconditioners.base import Preconditioner
from ..operators.algebraic_mgconv import AlgebraicMgConv, AlgebraicMgConvConfig, amg_levels
from .neural import identity_rows


class AlgebraicVCycle(nn.Module):
    """``z = V(r) w``: an :class:`AlgebraicMgConv` with one input channel and a learned linear read-out; linear
    in ``r`` (``(batch, 1, n)`` -> ``(batch, 1, n)``)."""

    is_linear = True

    def __init__(self, A: sp.spmatrix, channels: int = 8, levels=((1, 1), (1, 1), (1, 1), (2, 0)),
                 stencils: int = 1, amg: str = "sa"):
        super().__init__()
        self.amg = amg
        self.mg = AlgebraicMgConv(amg_levels(A, amg, max_levels=len(levels)),
                                  AlgebraicMgConvConfig(1, channels, [list(l) for l in levels], stencils))
        self.head = nn.Parameter(torch.randn(channels) / channels)

    def set_matrix(self, A: sp.spmatrix) -> None:
        """Run on pyamg's hierarchy of ``A`` (same number of levels)."""
        self.mg.set_hierarchy(amg_levels(A, self.amg, max_levels=len(self.mg.counts)))

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bcn,c->bn", self.mg(r), self.head)[:, None]


class AlgebraicVCyclePreconditioner(Preconditioner):
    """``z = ||r|| V(r / ||r||)`` on the free dofs, ``r_i / A_ii`` on Dirichlet (identity) rows.

    >>> import pyamg, numpy as np
    >>> A = pyamg.gallery.poisson((12, 12), format="csr")
    >>> pc = AlgebraicVCyclePreconditioner(AlgebraicVCycle(A, channels=4)).setup(A)
    >>> pc.apply(np.ones(144)).shape
    (144,)
    """

    linear = True
    symmetric = False

    def __init__(self, vcycle: AlgebraicVCycle, device="cpu"):
        self.vcycle, self.device = vcycle, device

    def setup(self, A, p=None):
        super().setup(A, p)
        self.vcycle.set_matrix(A)
        self.vcycle.to(self.device).eval()
        self.constrained = identity_rows(A)
        self._dc = A.diagonal()[self.constrained]
        self.stats.setdefault("inference_s", 0.0)
        return self

    def apply(self, r):
        r = np.asarray(r, dtype=np.float64)
        rf = r.copy()
        rf[self.constrained] = 0.0
        s = np.linalg.norm(rf)
        z = np.zeros_like(r)
        if s > 0:
            t = time.perf_counter()
            with torch.inference_mode():
                x = torch.as_tensor(rf / s, dtype=torch.float32, device=self.device)[None, None]
                z = self.vcycle(x)[0, 0].to("cpu", torch.float64).numpy() * s
            self.stats["inference_s"] += time.perf_counter() - t
            z[self.constrained] = 0.0
        z[self.constrained] = r[self.constrained] / self._dc
        return z


def train_vcycle(vcycle: AlgebraicVCycle, matrices, steps: int = 200, batch: int = 16, lr: float = 3e-3,
                 seed: int = 0, log=None) -> list[float]:
    """Minimize the energy-norm error propagation over ``matrices`` (cycled, one per step; each gets its own
    hierarchy), on random errors: half white noise, half ``A^{-1}`` of white noise (smooth), zero on Dirichlet
    rows. Returns the loss per step."""
    from ..training.energy import energy_loss, sparse_csr

    rng = np.random.default_rng(seed)
    data = []
    for A in matrices:
        A = sp.csr_matrix(A)
        free = np.ones(A.shape[0])
        free[identity_rows(A)] = 0.0
        W = rng.standard_normal((A.shape[0], 4 * batch)) * free[:, None]
        S = sp.linalg.splu(A.tocsc()).solve(W[:, :2 * batch]) * free[:, None]
        E = np.concatenate([W[:, 2 * batch:], S], axis=1).T
        E /= np.linalg.norm(E, axis=1, keepdims=True)
        vcycle.set_matrix(A)
        data.append((sparse_csr(A), vcycle.mg.hierarchy_state(), torch.tensor(E, dtype=torch.float32),
                     torch.tensor(free, dtype=torch.float32)))
    At, hierarchy, E, free = data[0]  # start at the best scale: min_c ||e - c B A e||_A over the first errors
    vcycle.mg.load_hierarchy_state(hierarchy)
    with torch.no_grad():
        from ..training.energy import matvec

        X = E[:batch]
        Y = vcycle(matvec(At, X)[:, None])[:, 0] * free
        c = (Y * matvec(At, X)).sum() / (Y * matvec(At, Y)).sum().clamp_min(1e-30)
        vcycle.head.mul_(c)
    opt = torch.optim.Adam(vcycle.parameters(), lr=lr)
    losses = []
    for step in range(steps):
        At, hierarchy, E, free = data[step % len(data)]
        vcycle.mg.load_hierarchy_state(hierarchy)
        rows = torch.from_numpy(rng.choice(len(E), batch, replace=False))
        loss = energy_loss(lambda R: vcycle(R[:, None])[:, 0] * free, At, E[rows])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if log and step % 50 == 0:
            log(f"step {step}: energy loss {losses[-1]:.4f}")
    return losses
