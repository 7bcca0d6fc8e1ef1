"""The complex shifted-Laplacian preconditioner for Helmholtz (Erlangga, Oosterlee & Vuik 2006).

For ``A = K - k2M - i k B`` (stiffness, ``k(x)^2``-weighted mass, absorbing boundary), the preconditioner
is one multigrid cycle for the damped operator ``A_beta = K - (1 + i beta) k2M - i k B = A - i beta k2M``:
the damping makes multigrid with point smoothers work, and ``A_beta^{-1} A`` has its spectrum in a disc
that Krylov methods handle in ``O(k)`` iterations at fixed points per wavelength.

The sign of the shift follows the absorbing term: with ``-i k B`` (outgoing waves for ``exp(-i w t)``)
the damping is ``-i beta k2M``. The opposite sign (``+i beta``, a common transcription of the paper's
``(1 - 0.5 i)`` for the other time convention) gives a preconditioner that needs ``O(k^2)`` iterations
here: FGMRES with an exact solve of the wrongly shifted operator took 222 iterations at n = 128 against
67 with the sign below (10 points per wavelength, k = 80).

Multigrid: ``"geometric"`` (bilinear prolongation on the structured grid, Galerkin coarse operators,
damped Jacobi, the literature's choice) or ``"sa"`` (pyamg smoothed aggregation on the complex shifted
matrix, for unstructured meshes) or ``"exact"`` (the shifted operator inverted by sparse LU: not a
practical preconditioner, its cost is a direct solve's, but the bound no cycle can beat, which tells a
hard medium from a weak cycle). Written here because neither pyamg nor PETSc (real-only in this
install) offers a shifted-Laplacian preconditioner; the cycle itself reuses :mod:`..hierarchy` and pyamg.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..hierarchy import CYCLES, DampedJacobi, galerkin_hierarchy
from .base import Preconditioner, check_vector, param
from .multigrid import GeometricMG, check_grid_order

_MULTIGRID = ("geometric", "sa", "exact")
#: default ``coarse_kh``: the coarsest grid keeps about 2.4 points per wavelength (see ShiftedLaplacian)
COARSE_KH = 2.6


class ShiftedLaplacian(Preconditioner):
    """One multigrid cycle of the complex shifted Laplacian ``A - i shift k2M`` per application.

    Parameters
    ----------
    shift : the damping ``beta`` (0.5 in the literature: larger is easier for multigrid and worse as
        a preconditioner).
    multigrid : ``"geometric"`` (needs the grid: ``PrecondParams(grid=...)``, which a Helmholtz system on
        ``meshes.unit_square``/``rectangle`` provides), ``"sa"`` (pyamg smoothed aggregation) or ``"exact"``
        (sparse LU of the shifted operator: the ideal shifted-Laplacian preconditioner, a reference).
    cycle : ``"V"``, ``"W"`` or ``"F"``.
    omega, sweeps : damped-Jacobi weight and sweeps before and after the coarse correction.
    coarse_kh : (geometric) stop coarsening before a grid would have ``k h`` above this (2.6: about 2.4
        points per wavelength); that grid is solved by sparse LU. Coarser grids under-resolve the shifted
        operator and damped Jacobi cannot fix it: at n = 128 (k = 80) the V-cycle down to 9 x 9 nodes
        needed 115 FGMRES iterations, down to 33 x 33 (k h = 2.5) 66, and the exact shifted-Laplacian
        inverse 67. ``None``: coarsen down to ``coarsest`` cells.
    coarsest : (geometric) never coarsen below this many cells per side.
    cycles : cycles per application, each on the residual the previous ones left (a stationary
        iteration: 2 is the classical counterpart of the learned correction's two cycles, see
        :mod:`hybrid.precond.helmholtz`).

    ``setup(A, p)`` reads ``k2M`` from ``p.operators`` (``LinearSystem.aux`` of :class:`solvers.Helmholtz`).
    Traits: linear (a fixed cycle), not symmetric (complex, non-Hermitian): use GMRES or FGMRES.
    """

    symmetric = False

    def __init__(self, shift: float = 0.5, multigrid: str = "geometric", cycle: str = "V", omega: float = 0.8,
                 sweeps: int = 1, coarse_kh: float | None = COARSE_KH, coarsest: int = 8, cycles: int = 1):
        if not (np.isfinite(shift) and shift > 0):
            raise ValueError(f"ShiftedLaplacian: shift must be a positive number, got {shift!r}")
        if multigrid not in _MULTIGRID:
            raise ValueError(f"ShiftedLaplacian: multigrid must be one of {_MULTIGRID}, got {multigrid!r}")
        if cycle not in CYCLES:
            raise ValueError(f"ShiftedLaplacian: unknown cycle {cycle!r}; use one of {', '.join(CYCLES)}")
        if not (0 < omega <= 1):
            raise ValueError(f"ShiftedLaplacian: Jacobi weight omega must be in (0, 1], got {omega!r}")
        if int(cycles) != cycles or cycles < 1:
            raise ValueError(f"ShiftedLaplacian: cycles must be a positive integer, got {cycles!r}")
        self.shift, self.multigrid, self.cycle, self.cycles = float(shift), multigrid, cycle, int(cycles)
        self.omega, self.sweeps, self.coarsest = float(omega), int(sweeps), int(coarsest)
        self.coarse_kh = None if coarse_kh is None else float(coarse_kh)

    def shifted(self, A, p):
        """``A - i shift k2M``."""
        ops = param(p, "operators", {}) or {}
        k2M = ops.get("k2M") if hasattr(ops, "get") else None
        if k2M is None:
            raise ValueError("ShiftedLaplacian needs the k^2-weighted mass matrix: pass "
                             "LinearProblem.from_system(helmholtz_system) or PrecondParams(operators={'k2M': ...})")
        if k2M.shape != A.shape:
            raise ValueError(f"ShiftedLaplacian: k2M has shape {k2M.shape}, A has {A.shape}")
        self.k2M = k2M
        return sp.csr_matrix(A - 1j * self.shift * k2M)

    def setup(self, A, p=None):
        super().setup(A, p)
        As = self.shifted(A, p)
        smoother = DampedJacobi(self.omega, self.sweeps)
        if self.multigrid == "geometric":
            grid = param(p, "grid")
            if grid is None:
                raise ValueError("ShiftedLaplacian(multigrid='geometric') needs a structured grid of P1 dofs "
                                 "(PrecondParams(grid=meshes.GridView(...)): a degree-1 system on meshes.unit_square "
                                 "has one); on an unstructured mesh or at a higher degree use multigrid='sa' "
                                 "(the method cslp-sa+fgmres)")
            check_grid_order(A, grid, "ShiftedLaplacian")
            Ps = GeometricMG(grid, coarsest=self.coarsest).prolongations()
            if self.coarse_kh is not None:
                Ps = Ps[: coarsenings(self.k2M, self.coarse_kh, len(Ps))]
            self.hierarchy = galerkin_hierarchy(As, Ps, smoother)
            self._apply = lambda r: self.hierarchy.cycle(r, self.cycle)
        elif self.multigrid == "exact":
            import scipy.sparse.linalg as spla

            self._apply = spla.splu(As.tocsc()).solve
        else:
            import pyamg

            spec = ("jacobi", {"omega": self.omega, "iterations": self.sweeps})
            self.ml = pyamg.smoothed_aggregation_solver(As, symmetry="symmetric", presmoother=spec,
                                                        postsmoother=spec, max_coarse=500)
            op = self.ml.aspreconditioner(cycle=self.cycle)
            self._apply = op.matvec
        return self

    def apply(self, r):
        r = np.asarray(check_vector(r, self.A.shape[0], "ShiftedLaplacian"), dtype=np.complex128)
        z = self._apply(r)
        for _ in range(self.cycles - 1):
            z += self._apply(r - self.A @ z)
        return z

    def __repr__(self):
        return (f"ShiftedLaplacian(shift={self.shift}, multigrid={self.multigrid!r}, cycle={self.cycle!r}, "
                f"omega={self.omega}, sweeps={self.sweeps}, coarse_kh={self.coarse_kh}, coarsest={self.coarsest}, "
                f"cycles={self.cycles})")


def nodal_kh(k2M) -> np.ndarray:
    """``k(x) h`` at every dof from a P1 ``k^2``-weighted mass matrix on a uniform right-diagonal triangle
    grid, whose interior diagonal is ``k^2 h^2 / 2`` (boundary rows hold a smaller patch and read low; an
    estimate on other meshes)."""
    return np.sqrt(2.0 * np.maximum(np.asarray(k2M.diagonal()).real, 0.0))


def fine_kh(k2M) -> float:
    """``max k h`` over the grid (99th percentile of :func:`nodal_kh`, ignoring constrained rows)."""
    kh = nodal_kh(k2M)
    kh = kh[kh > 0]
    return float(np.percentile(kh, 99)) if len(kh) else 0.0


def coarsenings(k2M, coarse_kh: float, available: int) -> int:
    """How many times the grid may be halved before ``k h`` exceeds ``coarse_kh`` (at least 1, at most
    ``available``): the depth of :class:`ShiftedLaplacian`'s geometric hierarchy."""
    kh = fine_kh(k2M)
    return min(available, max(1, int(np.floor(np.log2(coarse_kh / kh))))) if kh > 0 else available
