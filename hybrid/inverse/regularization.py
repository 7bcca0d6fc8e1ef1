"""Regularization functionals of a nodal (P1) parameter ``m`` (the log-coefficient), as torch functions.

- ``L2``: ``1/2 ||m - m_ref||_{L2}^2 = 1/2 (m - m_ref)^T M (m - m_ref)`` (P1 mass matrix, exact);
- ``H1``: ``1/2 |m|_{H1}^2 = 1/2 m^T K m`` (P1 stiffness matrix, the seminorm: constants are free);
- ``TV``: smoothed total variation ``sum_T |T| sqrt(|grad m|_T^2 + eps^2)`` (P1 gradients are constant
  per triangle, so the integral is exact).

The matrices come from :class:`solvers.data.p1.P1Assembler` (``mass_operator``/``stiffness_operator`` at
unit weight, no Dirichlet elimination: the parameter is free on the boundary). The per-cell gradient matrix
of TV is written here (P1Assembler keeps only the element stiffness matrices); torch's autograd
differentiates all three.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch


def _unit_matrix(asm, operator) -> sp.csr_matrix:
    return asm.matrix(operator @ np.ones(asm.n), eliminate=False)


class Quadratic:
    """``1/2 (m - m_ref)^T Q (m - m_ref)``."""

    def __init__(self, Q: sp.csr_matrix, m_ref=None):
        self.Q = sp.csr_matrix(Q)
        self.m_ref = None if m_ref is None else torch.as_tensor(np.asarray(m_ref, dtype=float))

    def __call__(self, m: torch.Tensor) -> torch.Tensor:
        from .differentiable import sparse_apply

        d = m if self.m_ref is None else m - self.m_ref.to(m)
        return 0.5 * (d * sparse_apply(self.Q, d, self.Q)).sum()  # Q is symmetric


class L2(Quadratic):
    name = "l2"

    def __init__(self, solver, m_ref=None):
        asm = solver.family.asm
        super().__init__(_unit_matrix(asm, asm.mass_operator()), m_ref)


class H1(Quadratic):
    name = "h1"

    def __init__(self, solver, m_ref=None):
        asm = solver.family.asm
        super().__init__(_unit_matrix(asm, asm.stiffness_operator()), None)  # the seminorm ignores m_ref


class TV:
    """Smoothed total variation; ``eps`` sets where it turns from |grad m| into a quadratic."""

    name = "tv"

    def __init__(self, solver, m_ref=None, eps: float = 1e-2):
        if not eps > 0:
            raise ValueError(f"TV smoothing eps must be positive, got {eps}")
        self.eps = eps
        self.area = torch.as_tensor(solver.family.asm.area)
        self.G = gradient_matrix(solver.coordinates, solver.family.asm.cells)

    def __call__(self, m: torch.Tensor) -> torch.Tensor:
        from .differentiable import sparse_apply

        g = sparse_apply(self.G, m).reshape(-1, 2)
        return (self.area.to(m) * torch.sqrt((g ** 2).sum(dim=1) + self.eps ** 2)).sum()


def gradient_matrix(coords: np.ndarray, cells: np.ndarray) -> sp.csr_matrix:
    """``(2 ncells, ndofs)``: rows ``2c, 2c+1`` give ``grad m`` on triangle ``c`` of a P1 field ``m``."""
    xy = coords[cells]
    d1, d2 = xy[:, 1] - xy[:, 0], xy[:, 2] - xy[:, 0]
    det = d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0]
    # gradients of the barycentric functions l1, l2 (l0 = 1 - l1 - l2)
    g1 = np.column_stack([d2[:, 1], -d2[:, 0]]) / det[:, None]
    g2 = np.column_stack([-d1[:, 1], d1[:, 0]]) / det[:, None]
    grads = np.stack([-(g1 + g2), g1, g2], axis=1)  # (nc, 3 vertices, 2)
    nc = len(cells)
    rows = (2 * np.arange(nc)[:, None, None] + np.arange(2)[None, None, :]).repeat(3, axis=1)
    cols = np.repeat(cells[:, :, None], 2, axis=2)
    return sp.csr_matrix((grads.ravel(), (rows.ravel(), cols.ravel())), shape=(2 * nc, len(coords)))


class NoRegularization:
    name = "none"

    def __init__(self, solver=None, m_ref=None):
        pass

    def __call__(self, m: torch.Tensor) -> torch.Tensor:
        return m.sum() * 0.0


#: ``reg`` name -> class(solver, m_ref)
REGULARIZERS = {"none": NoRegularization, "l2": L2, "h1": H1, "tv": TV}


def make_regularizer(name: str, solver, m_ref=None, **options):
    """The regularizer ``name`` for the mesh of ``solver`` (a :class:`DarcySolver`)."""
    if name not in REGULARIZERS:
        raise ValueError(f"unknown regularization {name!r}; use one of: {', '.join(REGULARIZERS)}")
    return REGULARIZERS[name](solver, m_ref, **options)
