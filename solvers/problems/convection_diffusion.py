"""Steady convection-diffusion ``-eps Laplace(u) + w . grad(u) + c u = f`` (non-symmetric)."""

from __future__ import annotations

import ufl

from .base import Problem


class ConvectionDiffusion(Problem):
    """Convection-diffusion with optional SUPG stabilization.

    Parameters
    ----------
    eps : diffusion (positive), velocity : vector ``w`` (constant sequence, callable, UFL),
    reaction : ``c >= 0``, f : source, supg : add streamline-upwind Petrov-Galerkin stabilization
    (Brooks & Hughes 1982) with ``tau = h / (2|w|) (coth(Pe) - 1/Pe)``, ``Pe = |w| h / (2 eps)``.
    Neumann/Robin fluxes refer to ``eps grad(u) . n``.
    """

    name = "convection-diffusion"

    def __init__(self, mesh, eps, velocity, f=0.0, reaction=0.0, bcs=None, degree: int = 1,
                 supg: bool = False):
        super().__init__(mesh, bcs, degree)
        gdim = mesh.gdim
        self.eps = self.coefficient(eps, "eps", positive=True)
        self.w = self.coefficient(velocity, "velocity", shape=(gdim,))
        self.c = self.coefficient(reaction, "reaction")
        self.f = self.data(f, "f")
        self.supg = bool(supg)

    def forms(self, u, v):
        eps, w, c, f = self.eps, self.w, self.c, self.f
        a = (eps * ufl.inner(ufl.grad(u), ufl.grad(v)) + ufl.inner(w, ufl.grad(u)) * v + c * u * v) * ufl.dx
        L = f * v * ufl.dx
        if self.supg:
            h = ufl.CellDiameter(self.mesh.mesh)
            wn = ufl.sqrt(ufl.inner(w, w)) + 1e-300
            pe = wn * h / (2 * eps)
            coth = (ufl.exp(2 * pe) + 1) / (ufl.exp(2 * pe) - 1)
            tau = h / (2 * wn) * (coth - 1 / pe)
            test = tau * ufl.inner(w, ufl.grad(v))
            residual_u = -eps * ufl.div(ufl.grad(u)) + ufl.inner(w, ufl.grad(u)) + c * u
            a = a + residual_u * test * ufl.dx
            L = L + f * test * ufl.dx
        return a, L
