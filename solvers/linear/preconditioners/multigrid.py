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
from ..problem import canonical_csr
from .base import Preconditioner, param

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

    Traits: ``linear`` always (a fixed number of stationary sweeps and a direct/pseudo-inverse coarse
    solve). ``symmetric`` holds when the V/W/F-cycle's post-smoother is the adjoint of its pre-smoother
    (pyamg's own test, ``ml.symmetric_smoothing``: symmetric Gauss-Seidel, or forward/backward pairs,
    Jacobi, ...) and restriction is ``P^T`` (Ruge-Stuben always; smoothed aggregation unless
    ``symmetry="nonsymmetric"``); then ``I - M A = E^* E_c E`` is ``A``-self-adjoint with ``A``-norm
    below 1, so ``M`` is SPD for SPD ``A``. The default smoother (symmetric Gauss-Seidel before and
    after) satisfies it; ``smoother=("gauss_seidel", {"sweep": "forward"})`` (forward both times) or
    ``cycle="AMLI"`` does not, and CG then refuses the preconditioner.

    ``refresh(A_new)`` keeps pyamg's prolongations and restrictions (the expensive, structural part:
    strength of connection, C/F splitting or aggregation, interpolation weights) and recomputes the
    Galerkin coarse operators ``A_{l+1} = R_l A_l P_l``, the smoothers and the coarse solver: the
    LinearSolve.jl ``reuse_precs`` idea for a sequence of matrices with one sparsity pattern.

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

    def setup(self, A, p=None):
        super().setup(A, p)
        self.ml = _AMG_KINDS[self.kind](sp.csr_matrix(A), presmoother=self.smoother,
                                        postsmoother=self.smoother, **self.options)
        self._op = self.ml.aspreconditioner(cycle=self.cycle)
        return self

    @property
    def symmetric(self) -> bool:
        if self.cycle not in ("V", "W", "F") or self.options.get("symmetry", "hermitian") == "nonsymmetric":
            return False
        ml = self.__dict__.get("ml")
        if ml is not None:
            return bool(getattr(ml, "symmetric_smoothing", False))
        name, kw = (self.smoother, {}) if isinstance(self.smoother, str) else self.smoother
        return name in ("jacobi", "richardson") or (name == "gauss_seidel" and kw.get("sweep") == "symmetric")

    def refresh(self, A, p=None):
        """Keep ``P``/``R`` of every level, recompute ``A_{l+1} = R_l A_l P_l``, smoothers, coarse solver.

        Falls back to :meth:`setup` before the first setup or when the size changed."""
        ml = self.__dict__.get("ml")
        if ml is None or A.shape != ml.levels[0].A.shape:
            return self.setup(A, p if p is not None else self.p)
        self.A = A
        if p is not None:
            self.p = p
        self._galerkin(A)
        self._refresh_smoothers()
        return self._finish_refresh()

    def _refresh_smoothers(self) -> None:
        """pyamg's smoothers precompute from the level matrices: rebuild them (subclasses with their own
        smoothers override this)."""
        from pyamg.relaxation.smoothing import change_smoothers

        change_smoothers(self.ml, self.smoother, self.smoother)

    def _galerkin(self, A) -> None:
        """New matrices on every level of the existing hierarchy: ``A`` on top, ``R A P`` below."""
        Al = canonical_csr(A)  # not sorted in place: the caller's arrays stay as they are
        for lvl in self.ml.levels[:-1]:
            lvl.A = Al
            Al = sp.csr_matrix(lvl.R @ Al @ lvl.P)
            Al.sort_indices()
        self.ml.levels[-1].A = Al

    def _finish_refresh(self):
        """A new coarse solver for the new coarsest matrix and the cycle operator."""
        from pyamg.multilevel import coarse_grid_solver

        self.ml.coarse_solver = coarse_grid_solver(self.options.get("coarse_solver", "pinv"))
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


def linear_interpolation_1d(n_coarse_cells: int) -> sp.csr_matrix:
    """Linear interpolation from ``n+1`` coarse nodes to ``2n+1`` fine nodes."""
    nc, nf = n_coarse_cells + 1, 2 * n_coarse_cells + 1
    rows, cols, vals = [], [], []
    for i in range(nf):
        if i % 2 == 0:
            rows.append(i); cols.append(i // 2); vals.append(1.0)
        else:
            rows += [i, i]; cols += [i // 2, i // 2 + 1]; vals += [0.5, 0.5]
    return sp.csr_matrix((vals, (rows, cols)), shape=(nf, nc))


def check_grid_order(A, grid, who: str, block_rows: int = 2**18) -> None:
    """``ValueError`` when ``grid`` is a shape tuple (the dofs are then taken to be in grid order) and ``A``
    couples nodes that are not neighbours on it: a P1/Q1 row's columns are within ``nx + 2`` of its own
    index in grid order. A permuted system with a tuple grid otherwise ran to ``MaxIters`` at 40x the
    iterations (a user trial). Nothing is checked for a ``GridView`` (it carries the dof order)."""
    if not isinstance(grid, tuple):
        return
    A = sp.csr_matrix(A)
    reach = int(grid[1]) + 1
    for r0 in range(0, A.shape[0], block_rows):  # by blocks: at n = 2048 a row index per entry is 240 MB
        blk = A[r0:r0 + block_rows]
        rows = np.repeat(np.arange(r0, r0 + blk.shape[0]), np.diff(blk.indptr))
        far = np.abs(blk.indices - rows) > reach
        if far.any():
            i = int(np.flatnonzero(far)[0])
            raise ValueError(f"{who}: row {rows[i]} couples column {blk.indices[i]}, not a neighbour on the "
                             f"{grid[0]} x {grid[1]} node grid: a grid given as a tuple means the dofs are in "
                             "grid order (row by row); pass the system's meshes.GridView for any other order")


class GeometricMG(Preconditioner):
    """Geometric multigrid for P1/Q1 on a structured ``(ny+1) x (nx+1)`` node grid.

    Parameters
    ----------
    grid : meshes.GridView, or a shape ``(ny+1, nx+1)`` when the matrix is already in grid order;
        ``None``: taken at setup from the problem parameters ``p`` (``PrecondParams(grid=...)``).
    coarsest : stop coarsening when a side has at most this many cells (or an odd number of cells).
    smoother : pre-smoother ``(A, x, b) -> x`` with an ``adjoint()`` used as post-smoother (default
        forward/backward Gauss-Seidel: a symmetric V-cycle, usable with CG).
    """

    def __init__(self, grid=None, coarsest: int = 2, smoother=None):
        self.grid = grid
        self.coarsest = int(coarsest)
        self.smoother = smoother if smoother is not None else GaussSeidel("forward")

    def prolongations(self) -> list[sp.csr_matrix]:
        shape = self.grid if isinstance(self.grid, tuple) else self.grid.shape
        ny, nx = shape[0] - 1, shape[1] - 1
        Ps = []
        while nx % 2 == 0 and ny % 2 == 0 and min(nx, ny) // 2 >= self.coarsest:
            Ps.append(sp.kron(linear_interpolation_1d(ny // 2), linear_interpolation_1d(nx // 2), format="csr"))
            nx, ny = nx // 2, ny // 2
        if not Ps:
            raise ValueError(f"GeometricMG: a {shape[1] - 1} x {shape[0] - 1} grid cannot be coarsened "
                             f"(needs an even number of cells per side, at least {2 * self.coarsest}: "
                             f"coarsest={self.coarsest})")
        if not isinstance(self.grid, tuple):  # first prolongation: grid order -> dof order rows
            Ps[0] = Ps[0][self.grid.grid_of_dof]
        return Ps

    @property
    def symmetric(self) -> bool:  # the post-smoother is the pre-smoother's adjoint when it has one
        return hasattr(self.smoother, "adjoint")

    def setup(self, A, p=None):
        super().setup(A, p)
        if self.grid is None:
            self.grid = param(p, "grid")
            if self.grid is None:
                raise ValueError("GeometricMG: no grid given, neither as GeometricMG(grid) nor as "
                                 "LinearProblem(..., p=PrecondParams(grid=...))")
        shape = self.grid if isinstance(self.grid, tuple) else self.grid.shape
        if A.shape[0] != shape[0] * shape[1]:
            raise ValueError(f"GeometricMG: matrix has {A.shape[0]} rows, the grid {shape} has "
                             f"{shape[0] * shape[1]} nodes")
        check_grid_order(A, self.grid, "GeometricMG")
        self.hierarchy = galerkin_hierarchy(sp.csr_matrix(A), self.prolongations(), self.smoother)
        return self

    def apply(self, r):
        return self.hierarchy.vcycle(np.asarray(r))
