"""Linear elasticity ``-div(sigma(u)) = f`` with ``sigma = 2 mu eps(u) + lambda tr(eps(u)) I``."""

from __future__ import annotations

import ufl

from .base import Problem


class Elasticity(Problem):
    """Small-strain isotropic linear elasticity on vector Lagrange P1/P2.

    Parameters
    ----------
    E, nu : Young's modulus (positive) and Poisson ratio (in (-1, 0.5)).
    body_force : vector ``f`` (sequence of gdim numbers, callable, UFL), default zero.
    bcs : ``Dirichlet(name, (ux, uy[, uz]))`` displacement, ``Neumann(name, traction)`` with
        ``sigma . n = traction``, ``Robin(name, k, g)`` elastic support ``sigma . n + k (u - g) = 0``.
        ``None`` clamps every named boundary.
    """

    name = "elasticity"

    def __init__(self, mesh, E=1.0, nu=0.3, body_force=None, bcs=None, degree: int = 1):
        self.value_shape = (mesh.gdim,)
        if bcs is None:
            from ..bcs import Dirichlet

            bcs = [Dirichlet(name, [0.0] * mesh.gdim) for name in mesh.boundaries]
        super().__init__(mesh, bcs, degree)
        if not (-1.0 < float(nu) < 0.5):
            raise ValueError(f"Poisson ratio nu must lie in (-1, 0.5), got {nu!r}")
        self.E = self.coefficient(E, "E", positive=True)
        self.nu = float(nu)
        self.mu = self.E / (2 * (1 + self.nu))
        self.lmbda = self.E * self.nu / ((1 + self.nu) * (1 - 2 * self.nu))
        self.f = self.data([0.0] * mesh.gdim if body_force is None else body_force, "body_force",
                           shape=self.value_shape)

    def sigma(self, u):
        eps = ufl.sym(ufl.grad(u))
        return 2 * self.mu * eps + self.lmbda * ufl.tr(eps) * ufl.Identity(len(u))

    def forms(self, u, v):
        return ufl.inner(self.sigma(u), ufl.grad(v)) * ufl.dx, ufl.inner(self.f, v) * ufl.dx
