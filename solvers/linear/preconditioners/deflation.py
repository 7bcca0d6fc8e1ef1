"""Two-level deflation around a preconditioner on a structured grid (Helmholtz: Dwarka & Vuik 2020).

The shifted-Laplacian preconditioner leaves a growing number of eigenvalues of ``A M^{-1}`` near zero as
``k`` grows at fixed points per wavelength, and the Krylov iterations grow linearly with ``k``
(:mod:`.shifted_laplacian`). Deflation removes them with a coarse space: with the prolongation ``Z`` from
the grid with half the cells per side and the Galerkin coarse operator ``E = Z^T A Z`` (transpose, not
conjugate transpose: a complex-symmetric ``A`` keeps a complex-symmetric ``E``), one application is the
A-DEF2 preconditioner of Tang, Nabben, Vuik & Erlangga (2009)::

    x = M r                          # the inner preconditioner (one shifted-Laplacian V-cycle)
    x = x + Z E^{-1} Z^T (r - A x)   # exact coarse correction on what it left

With bilinear ``Z`` the near-zero eigenvalues come back as ``k`` grows: the coarse operator's near kernel is
not aligned with the fine one (the phase error of interpolating a wave with 5 coarse points per
wavelength). Dwarka & Vuik ("Scalable convergence using two-level deflation preconditioning for the
Helmholtz equation", SIAM J. Sci. Comput. 42, 2020) fix the alignment with a higher-order interpolation:
the coarse value at a fine node that coincides with a coarse one is ``(u_{j-1} + 6 u_j + u_{j+1}) / 8``
and at a midpoint ``(u_j + u_{j+1}) / 2``, in each direction (the cubic B-spline subdivision rule). Measured
here (``hybrid bench helmholtz``: P1 on the unit square, 10 points per wavelength, absorbing boundaries,
FGMRES(30) to 1e-8; layered medium): 66 / 128 / 254 / 528 iterations at n = 128 / 256 / 512 / 1024 with the
V-cycle alone, 18 / 36 at n = 128 / 256 with bilinear deflation, **10** at every n with the higher-order one;
on the checkerboard, whose trapped rays make every cycle-only preconditioner slow (670 iterations at
n = 256), 38 / 210 with bilinear and 11-12 with higher-order deflation (``bench/results/helmholtz.json``,
``helmholtz-deflation-linear.json``, ``helmholtz-deflation.json``).

The price is the exact coarse solve: ``E`` has a quarter of the unknowns but a 25-point stencil (its
nested-dissection separators are as wide as the fine grid's), and its factorization costs about half of a
direct solve of ``A`` (MUMPS ``L D L^T`` by 2 x 2 blocks with BLR at 1e-5; n = 1024: 9.7 s against 20-22 s
for ``A``; n = 2048: 8.3 GB added against 15.3 GB, and a setup of 80 s against 197 s). ``E`` is summed over
row blocks of ``A`` (:func:`galerkin_rows`), so the product ``A Z`` (1.3 GB at n = 2048) is never whole. Measured
alternatives (one-off runs, numbers in issue 11's note): inexact coarse solves (3-6 FGMRES iterations on
``E`` preconditioned by its own shifted-Laplacian cycle, or by deflation one level further down) keep 10-18
iterations at n = 512 but let them grow at n = 1024 (27-33) and were slower overall; deflating straight to
the grid with a quarter of the cells per side (2.5 points per wavelength) needs 30 iterations at n = 512
on the layered medium and 191 on the checkerboard; dropping or lumping the outer ring of ``E`` to keep a
9-point stencil destroys the alignment (1768 iterations, or none converged, at n = 256).

Written here because pyamg has no deflation and PETSc's ``PCDEFLATION`` works on PETSc matrices, which are
real in this install (a complex system would go through its real equivalent, and the higher-order
coarse space would have to be built here anyway); the coarse factorization is the toolkit's
:class:`~solvers.linear.direct.Direct` through :class:`~.direct.DirectPreconditioner`: MUMPS ``L D L^T``
with block-low-rank compression by default (at n = 1024, before MUMPS analysed by blocks: 11.4 s instead of
19.0 s for the exact factors, the same iterations), exact MUMPS, or SuperLU (whose threshold pivoting took 53 s on the checkerboard's
coarse operator at n = 512, MUMPS 5 s).
"""

from __future__ import annotations

import copy

import numpy as np
import scipy.sparse as sp

from ..direct import Direct, blr
from ..problem import is_petsc
from .base import Preconditioner, check_vector, param, setup_precond
from .direct import DirectPreconditioner
from .multigrid import check_grid_order, linear_interpolation_1d
from .shifted_laplacian import ShiftedLaplacian

INTERPOLATIONS = ("cubic", "linear")
#: coarse solvers: MUMPS with block-low-rank compression at 1e-5 (the default), exact MUMPS, SuperLU
COARSE = {"mumps-blr": lambda: Direct("mumps", options=blr(1e-5)), "mumps": lambda: Direct("mumps"),
          "superlu": lambda: Direct("superlu")}


def interpolation_1d(n_coarse_cells: int, kind: str = "cubic") -> sp.csr_matrix:
    """Prolongation from ``n + 1`` coarse nodes to ``2 n + 1`` fine nodes on an interval.

    ``"linear"``: weights (1/2, 1, 1/2), the geometric multigrid's (:func:`.multigrid.linear_interpolation_1d`).
    ``"cubic"``: weights (1/8, 1/2, 3/4, 1/2, 1/8) (Dwarka & Vuik's higher-order deflation vectors); at the
    two ends the missing coarse node outside the interval is the linear extrapolation of the two inside it,
    which makes the end rows injections. Both reproduce linear functions exactly.
    """
    if kind not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {kind!r}")
    nc, nf = int(n_coarse_cells) + 1, 2 * int(n_coarse_cells) + 1
    if nc < 2:
        raise ValueError(f"interpolation_1d needs at least one coarse cell, got {n_coarse_cells!r}")
    if kind == "linear":
        return linear_interpolation_1d(nc - 1)
    rows, cols, vals = [], [], []
    for j in range(nc):
        for offset, w in {-2: 0.125, -1: 0.5, 0: 0.75, 1: 0.5, 2: 0.125}.items():
            i = 2 * j + offset
            if 0 <= i < nf:
                rows.append(i), cols.append(j), vals.append(w)
    P = sp.csr_matrix((vals, (rows, cols)), shape=(nf, nc)).tolil()
    # ghost nodes u_{-1} = 2 u_0 - u_1 (and at the far end): the end rows become injections
    for end, inner in ((0, 1), (nc - 1, nc - 2)):
        P[2 * end, end], P[2 * end, inner] = 1.0, 0.0
    P = P.tocsr()
    P.eliminate_zeros()
    return P


def deflation_space(shape, kind: str = "cubic", grid_of_dof=None) -> sp.csr_matrix:
    """``Z``: prolongation from the ``(ny/2 + 1) x (nx/2 + 1)`` node grid to the ``(ny + 1) x (nx + 1)`` one
    (rows in grid order, or in dof order when ``grid_of_dof`` is given)."""
    ny, nx = shape[0] - 1, shape[1] - 1
    if nx % 2 or ny % 2 or nx < 2 or ny < 2:
        raise ValueError(f"two-level deflation needs an even number of cells per side, got a {nx} x {ny} grid")
    Z = sp.kron(interpolation_1d(ny // 2, kind), interpolation_1d(nx // 2, kind), format="csr")
    return Z if grid_of_dof is None else Z[np.asarray(grid_of_dof)]


def galerkin_rows(A, Z, block_rows: int = 2**18) -> sp.csr_matrix:
    """``Z^T A Z`` summed over blocks of ``block_rows`` rows of ``A``: ``sum_b Z_b^T (A_b Z)``. The memory of
    the product ``A Z`` (at n = 2048, 4.2M rows with about 16 complex entries each: 1.3 GB) is never held
    at once, only a block of it and the coarse operator."""
    if isinstance(block_rows, bool) or not isinstance(block_rows, (int, np.integer)) or block_rows < 1:
        raise ValueError(f"galerkin_rows: block_rows must be a positive integer, got {block_rows!r}")
    A, Z = sp.csr_matrix(A), sp.csr_matrix(Z)
    E = None
    for r0 in range(0, A.shape[0], block_rows):
        Zb = Z[r0:r0 + block_rows]
        part = (Zb.T @ (A[r0:r0 + block_rows] @ Z)).tocsr()
        E = part if E is None else E + part
        del part, Zb
    return E.tocsr()


def grid_shape(grid) -> tuple[int, int]:
    """``(ny + 1, nx + 1)`` of a ``meshes.GridView`` or of a shape given as a tuple of two node counts."""
    shape = getattr(grid, "shape", grid)
    if not (isinstance(shape, tuple) and len(shape) == 2 and all(isinstance(v, (int, np.integer))
                                                                 and not isinstance(v, bool) and v >= 3 for v in shape)):
        raise ValueError(f"grid must be a meshes.GridView or a tuple (ny + 1, nx + 1) of two node counts >= 3, "
                         f"got {grid!r}")
    return int(shape[0]), int(shape[1])


class TwoLevelDeflation(Preconditioner):
    """A-DEF2 two-level deflation around ``inner``: ``x = M r``, then ``x += Z E^{-1} Z^T (r - A x)``.

    Parameters
    ----------
    inner : the preconditioner ``M`` (default :class:`ShiftedLaplacian()`, the Helmholtz setting; any
        preconditioner of the toolkit, learned ones included). It is set up with the same ``A`` and ``p``.
    interpolation : ``"cubic"`` (the default, Dwarka & Vuik's higher-order vectors: iterations independent
        of ``k``) or ``"linear"`` (bilinear: iterations grow with ``k``; for comparison).
    coarse : the coarse solve, ``"mumps-blr"`` (MUMPS ``L D L^T`` with block-low-rank compression at 1e-5:
        the same iterations as the exact solve, the factorization 1.7x faster at n = 1024), ``"mumps"``
        (exact) or ``"superlu"`` (exact).
    steps : deflated steps per application (``2``: ``x = D r``, then ``x += D (r - A x)``; the classical
        counterpart of a learned correction between two deflated steps, ``learned-def+fgmres``).

    Needs the structured grid, as the geometric shifted-Laplacian cycle (``PrecondParams(grid=...)``).
    Traits: linear when ``inner`` is, not symmetric. A coarse solve that fails or returns non-finite
    values is skipped (the step is the inner preconditioner's alone) and counted in ``stats``.
    """

    symmetric = False

    def __init__(self, inner: Preconditioner | None = None, interpolation: str = "cubic", coarse: str = "mumps-blr",
                 steps: int = 1):
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
            raise ValueError(f"TwoLevelDeflation: steps must be a positive integer, got {steps!r}")
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"TwoLevelDeflation: interpolation must be one of {INTERPOLATIONS}, "
                             f"got {interpolation!r}")
        if coarse not in COARSE:
            raise ValueError(f"TwoLevelDeflation: coarse must be one of {tuple(COARSE)}, got {coarse!r}")
        inner = inner if inner is not None else ShiftedLaplacian()
        if not (callable(getattr(inner, "setup", None)) and callable(getattr(inner, "apply", None))):
            raise ValueError(f"TwoLevelDeflation: inner must be a preconditioner (setup(A, p), apply(r)), "
                             f"got {inner!r}")
        self.inner, self.interpolation, self.coarse, self.steps = inner, interpolation, coarse, int(steps)

    @property
    def linear(self) -> bool:
        return bool(getattr(self.inner, "linear", True))

    def setup(self, A, p=None):
        super().setup(A, p)
        if is_petsc(A) or not sp.issparse(A):
            raise ValueError("TwoLevelDeflation needs a scipy sparse matrix (a structured-grid system, serial)")
        # the inner preconditioner first: its errors (a Helmholtz-only cycle without k2M) say more
        self.inner = setup_precond(copy.copy(self.inner), A, p)
        grid = param(p, "grid")
        if grid is None:
            raise ValueError("TwoLevelDeflation needs a structured grid (PrecondParams(grid=meshes.GridView(...)) "
                             "or a grid shape (ny + 1, nx + 1) when the dofs are in grid order: a degree-1 system "
                             "on meshes.unit_square has one); on an unstructured mesh or at a higher degree use "
                             "mumps-blr+fgmres or cslp-sa+fgmres")
        shape = grid_shape(grid)
        if A.shape[0] != shape[0] * shape[1]:
            raise ValueError(f"TwoLevelDeflation: matrix has {A.shape[0]} rows, the grid {shape} has "
                             f"{shape[0] * shape[1]} nodes")
        check_grid_order(A, grid, "TwoLevelDeflation")
        dtype = np.result_type(A.dtype, np.float64)
        self.Z = deflation_space(shape, self.interpolation,
                                 None if isinstance(grid, tuple) else grid.grid_of_dof).astype(dtype)
        E = galerkin_rows(A, self.Z)
        try:
            self._coarse = DirectPreconditioner(COARSE[self.coarse]()).setup(E)
        except ValueError as e:
            raise ValueError(f"TwoLevelDeflation: the coarse operator: {e}") from None
        self.stats.update({"setup_coarse_unknowns": int(E.shape[0]), "coarse_skipped": 0})
        return self

    def begin_solve(self) -> None:
        if hasattr(self.inner, "begin_solve"):
            self.inner.begin_solve()

    @property
    def stats(self) -> dict:
        s = super().stats
        inner = getattr(self.__dict__.get("inner"), "stats", None)
        if isinstance(inner, dict):  # the inner preconditioner's own counters (a network's calls and time)
            s.update({k: v for k, v in inner.items() if k not in ("name", "calls", "apply_s")})
        return s

    def apply(self, r):
        r = check_vector(r, self.A.shape[0], "TwoLevelDeflation")
        x = self._step(r)
        for _ in range(self.steps - 1):  # the same step on what the previous ones left
            x = _add(x, self._step(r - self.A @ x), r)
        return x

    def _step(self, r):
        x = self.inner(r)
        e = self._coarse.apply(self.Z.T @ (r - self.A @ x))  # Z.T: a CSC view, no copy
        if not np.all(np.isfinite(e)):
            self.stats["coarse_skipped"] += 1
            return x
        return _add(x, self.Z @ e, r)

    def __repr__(self):
        steps = f", steps={self.steps}" if self.steps != 1 else ""
        return (f"TwoLevelDeflation(inner={self.inner!r}, interpolation={self.interpolation!r}, "
                f"coarse={self.coarse!r}{steps})")


def _add(x, y, r):
    """``x + y``, in ``x``'s storage where its type holds the sum (a real ``x`` plus a complex ``y`` does not)
    and it is not the right-hand side ``r`` (an inner preconditioner may hand its input back)."""
    if x.flags.writeable and np.result_type(x, y) == x.dtype and not np.may_share_memory(x, r):
        x += y
        return x
    return x + y
