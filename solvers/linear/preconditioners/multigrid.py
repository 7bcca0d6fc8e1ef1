"""Multigrid preconditioners: algebraic (pyamg) and geometric (structured grids).

``AMG`` applies pyamg's own compiled cycle and exposes its levels as a :class:`Hierarchy` so learned
smoothers or coarse corrections can be put into the cycle later. ``GeometricMG`` builds bilinear
prolongation on a structured grid (through :class:`meshes.GridView`'s permutation) with Galerkin
coarse operators and runs :func:`vcycle`.
"""

from __future__ import annotations

import numpy as np
import pyamg
import scipy.sparse as sp

from ..hierarchy import GaussSeidel, Hierarchy, Level, galerkin_hierarchy
from .base import Preconditioner

_AMG_KINDS = {"sa": pyamg.smoothed_aggregation_solver, "rs": pyamg.ruge_stuben_solver}


_SYMMETRIC_GS = ("gauss_seidel", {"sweep": "symmetric", "iterations": 1})


class AMG(Preconditioner):
    """pyamg algebraic multigrid, one ``cycle`` per application.

    Parameters
    ----------
    kind : ``"sa"`` (smoothed aggregation) or ``"rs"`` (Ruge-Stuben classical AMG).
    cycle : ``"V"``, ``"W"``, ``"F"`` or ``"AMLI"``.
    smoother : pyamg smoother spec used before and after coarse correction; the default symmetric
        Gauss-Seidel is pyamg's default and keeps the V-cycle SPD for CG.
    options : keyword arguments passed to pyamg's solver constructor (``strength``, ``max_coarse``, ...).

    Examples
    --------
    >>> import pyamg
    >>> A = pyamg.gallery.poisson((64, 64), format="csr")
    >>> pc = AMG("rs").setup(A)
    >>> len(pc.hierarchy.levels) > 2
    True
    """

    def __init__(self, kind: str = "sa", cycle: str = "V", smoother=_SYMMETRIC_GS, **options):
        if kind not in _AMG_KINDS:
            raise ValueError(f"AMG: unknown kind {kind!r}; use 'sa' or 'rs'")
        self.kind, self.cycle, self.smoother, self.options = kind, cycle, smoother, options

    def setup(self, A):
        super().setup(A)
        self.ml = _AMG_KINDS[self.kind](sp.csr_matrix(A), presmoother=self.smoother,
                                        postsmoother=self.smoother, **self.options)
        self._op = self.ml.aspreconditioner(cycle=self.cycle)
        return self

    def apply(self, r):
        return self._op.matvec(r)

    @property
    def hierarchy(self) -> Hierarchy:
        """pyamg's levels as a :class:`Hierarchy` (same A, P, R and smoothers; V-cycle only).

        Only Gauss-Seidel smoother specs have an equivalent here; others raise ``ValueError``.
        """
        name, kw = (self.smoother, {}) if isinstance(self.smoother, str) else self.smoother
        if name != "gauss_seidel":
            raise ValueError(f"AMG.hierarchy: no equivalent for pyamg smoother {name!r}")
        gs = GaussSeidel(kw.get("sweep", "forward"), kw.get("iterations", 1))
        levels = self.ml.levels
        out = [Level(lvl.A, lvl.P, lvl.R, gs, gs) for lvl in levels[:-1]]
        out.append(Level(levels[-1].A))
        return Hierarchy(out)

    def __repr__(self):
        return f"AMG(kind={self.kind!r}, cycle={self.cycle!r})" + (f"\n{self.ml}" if hasattr(self, "ml") else "")


def _interp_1d(n_coarse_cells: int) -> sp.csr_matrix:
    """Linear interpolation from ``n+1`` coarse nodes to ``2n+1`` fine nodes."""
    nc, nf = n_coarse_cells + 1, 2 * n_coarse_cells + 1
    rows, cols, vals = [], [], []
    for i in range(nf):
        if i % 2 == 0:
            rows.append(i); cols.append(i // 2); vals.append(1.0)
        else:
            rows += [i, i]; cols += [i // 2, i // 2 + 1]; vals += [0.5, 0.5]
    return sp.csr_matrix((vals, (rows, cols)), shape=(nf, nc))


class GeometricMG(Preconditioner):
    """Geometric multigrid for P1/Q1 on a structured ``(ny+1) x (nx+1)`` node grid.

    Parameters
    ----------
    grid : meshes.GridView, or a shape ``(ny+1, nx+1)`` when the matrix is already in grid order.
    coarsest : stop coarsening when a side has at most this many cells (or an odd number of cells).
    smoother : pre-smoother ``(A, x, b) -> x`` with an ``adjoint()`` used as post-smoother (default
        forward/backward Gauss-Seidel: a symmetric V-cycle, usable with CG).
    """

    def __init__(self, grid, coarsest: int = 2, smoother=None):
        self.grid = grid
        self.coarsest = int(coarsest)
        self.smoother = smoother if smoother is not None else GaussSeidel("forward")

    def prolongations(self) -> list[sp.csr_matrix]:
        shape = self.grid if isinstance(self.grid, tuple) else self.grid.shape
        ny, nx = shape[0] - 1, shape[1] - 1
        Ps = []
        while nx % 2 == 0 and ny % 2 == 0 and min(nx, ny) // 2 >= self.coarsest:
            Ps.append(sp.kron(_interp_1d(ny // 2), _interp_1d(nx // 2), format="csr"))
            nx, ny = nx // 2, ny // 2
        if not Ps:
            raise ValueError(f"GeometricMG: a {shape[1] - 1} x {shape[0] - 1} grid cannot be coarsened "
                             "(needs an even number of cells per side)")
        if not isinstance(self.grid, tuple):  # first prolongation: grid order -> dof order rows
            Ps[0] = Ps[0][self.grid._grid_of_dof]
        return Ps

    def setup(self, A):
        super().setup(A)
        shape = self.grid if isinstance(self.grid, tuple) else self.grid.shape
        if A.shape[0] != shape[0] * shape[1]:
            raise ValueError(f"GeometricMG: matrix has {A.shape[0]} rows, the grid {shape} has "
                             f"{shape[0] * shape[1]} nodes")
        self.hierarchy = galerkin_hierarchy(sp.csr_matrix(A), self.prolongations(), self.smoother)
        return self

    def apply(self, r):
        return self.hierarchy.vcycle(np.asarray(r))
