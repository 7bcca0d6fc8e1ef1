"""Poisson and Darcy: ``-div(a grad u) = f``."""

from __future__ import annotations

import ufl

from .base import Problem


class Darcy(Problem):
    """Darcy flow / variable-coefficient diffusion ``-div(a grad u) = f``.

    Parameters
    ----------
    mesh : meshes.Mesh
    a : number, callable, dolfinx Function, UFL expression, or ndarray
        Permeability; must be finite and positive. A ``(n+1, n+1)`` array is a nodal grid on a
        structured square mesh (see :class:`meshes.GridView`).
    f : source (same kinds of values), default 1.
    bcs : list of Dirichlet/Neumann/Robin; ``None`` means ``u = 0`` on every named boundary.
    degree : Lagrange degree (1 or 2 typically).

    Examples
    --------
    >>> import meshes, solvers
    >>> m = meshes.unit_square(16)
    >>> sys = solvers.Darcy(m, a=lambda x: 1 + x[0], bcs=[solvers.Dirichlet("left", 0.0),
    ...                     solvers.Neumann("right", 1.0)]).assemble()
    >>> sys.A.shape
    (289, 289)
    """

    name = "darcy"
    constants_in_kernel = True

    def __init__(self, mesh, a, f=1.0, bcs=None, degree: int = 1):
        super().__init__(mesh, bcs, degree)
        self.a = self.coefficient(a, "a", positive=True)
        self.f = self.data(f, "f")

    def forms(self, u, v):
        return ufl.inner(self.a * ufl.grad(u), ufl.grad(v)) * ufl.dx, ufl.inner(self.f, v) * ufl.dx


class Poisson(Darcy):
    """``-Laplace(u) = f`` (Darcy with ``a = 1``)."""

    name = "poisson"

    def __init__(self, mesh, f=1.0, bcs=None, degree: int = 1):
        super().__init__(mesh, 1.0, f, bcs, degree)
