"""Helmholtz ``-Laplace(u) - (k / c(x))^2 u = f`` with absorbing (impedance) boundaries.

PETSc here is real-only, so the complex matrix ``A = K - k^2 M - i k B`` is combined in scipy from
three real forms: stiffness ``K``, mass ``M`` and boundary mass ``B`` on the absorbing boundaries.
Dirichlet conditions are eliminated by :func:`solvers.dirichlet.eliminate` (symmetric elimination,
identity rows), which handles complex boundary values.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import scipy.sparse as sp

import dolfinx.fem as fem
import ufl

from ..bcs import Dirichlet, Neumann, Robin
from ..dirichlet import eliminate
from ..system import LinearSystem
from .base import Problem
from .helmholtz_grid import PPW, wavenumber  # noqa: F401  (numpy-only home, re-exported)


class Helmholtz(Problem):
    """Helmholtz problem; indefinite for ``k^2`` above the first Dirichlet eigenvalue.

    Parameters
    ----------
    k : wavenumber (positive number); with a wave speed ``c``, the angular frequency ``omega`` and the
        local wavenumber is ``k / c(x)``.
    speed : wave speed ``c(x) > 0`` (number, callable ``x -> array``, P1 Function or UFL expression);
        default 1 (a homogeneous medium).
    f : real source term.
    absorbing : boundary names carrying the first-order absorbing (Sommerfeld / impedance) condition
        ``du/dn - i (k / c) u = 0`` (outgoing waves for the ``exp(-i w t)`` convention).
    bcs : Dirichlet (complex values allowed: numbers or callables ``x -> complex array``) and
        Neumann (``du/dn = g``, real) conditions. ``None``: ``u = 0`` on every named boundary that is
        not absorbing.

    Examples
    --------
    A plane wave ``exp(i k x)`` enters at ``left`` and leaves through ``right``:

    >>> import meshes, solvers, numpy as np
    >>> m = meshes.unit_square(32)
    >>> sys = solvers.Helmholtz(m, k=5.0, absorbing=["right"], bcs=[solvers.Dirichlet("left", 1.0)]).assemble()
    >>> sys.A.dtype
    dtype('complex128')
    """

    name = "helmholtz"

    def __init__(self, mesh, k: float, f=0.0, absorbing: Sequence[str] = (), bcs=None, degree: int = 1,
                 speed=1.0):
        absorbing = [absorbing] if isinstance(absorbing, str) else list(absorbing or ())
        for name in absorbing:
            mesh.tag(name)
        twice = sorted({n for n in absorbing if absorbing.count(n) > 1})
        if twice:  # its boundary term would be added once per listing
            raise ValueError(f"absorbing boundary {twice[0]!r} is listed twice")
        if bcs is None:
            bcs = [Dirichlet(n, 0.0) for n in mesh.boundaries if n not in absorbing]
        super().__init__(mesh, bcs, degree)
        if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, float, np.integer, np.floating)):
            raise ValueError(f"wavenumber k must be a real number, got {k!r}")
        if not np.isfinite(k) or k <= 0:
            raise ValueError(f"wavenumber k must be a positive finite number, got {k!r}")
        for bc in self.bcs:
            if isinstance(bc, Robin):
                raise ValueError("Helmholtz: use absorbing=[...] for impedance conditions, not Robin")
            if bc.boundary in absorbing:
                raise ValueError(f"boundary {bc.boundary!r} is absorbing and also has {bc!r}")
        self.k = float(k)
        self.absorbing = absorbing
        self.f = self.data(f, "f")
        self.speed = self.coefficient(speed, "wave speed", positive=True)

    def forms(self, u, v):
        return ufl.inner(ufl.grad(u), ufl.grad(v)) * ufl.dx, self.f * v * ufl.dx

    def _dirichlet_values(self):
        """(dofs, complex values) of the Dirichlet conditions; Lagrange dofs are point values."""
        V, fdim = self.space, self.mesh.tdim - 1
        self.mesh.mesh.topology.create_connectivity(fdim, self.mesh.tdim)
        X = V.tabulate_dof_coordinates().T
        dofs_all, vals_all = [], []
        for bc in self.bcs:
            if not isinstance(bc, Dirichlet):
                continue
            dofs = fem.locate_dofs_topological(V, fdim, self.mesh.facets(bc.boundary))
            val = bc.value
            vals = np.asarray(val(X[:, dofs]) if callable(val) else np.full(len(dofs), val), dtype=np.complex128)
            if vals.shape != (len(dofs),):
                raise ValueError(f"Dirichlet value on {bc.boundary!r}: callable returned shape {vals.shape}, "
                                 f"expected ({len(dofs)},)")
            if not np.all(np.isfinite(vals)):
                raise ValueError(f"Dirichlet value on {bc.boundary!r} has non-finite values")
            dofs_all.append(dofs)
            vals_all.append(vals)
        if not dofs_all:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.complex128)
        return np.concatenate(dofs_all).astype(np.int64), np.concatenate(vals_all)

    def assemble(self) -> LinearSystem:
        if self.mesh.comm.size > 1:
            raise ValueError("Helmholtz assembles a complex scipy matrix: run it serially")
        V = self.space
        u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
        K_ufl, L = self.forms(u, v)
        for bc in self.bcs:
            if isinstance(bc, Neumann):
                g = self.data(bc.flux, f"Neumann flux on {bc.boundary!r}")
                L = L + g * v * self.mesh.ds(self.mesh.tag(bc.boundary))

        def mat(form):
            m = fem.assemble_matrix(fem.form(form))
            m.scatter_reverse()
            return m.to_scipy().tocsr()

        kx = self.k / self.speed  # local wavenumber
        K, k2M = mat(K_ufl), mat(kx**2 * u * v * ufl.dx)
        B = None
        if self.absorbing:
            ds = self.mesh.ds
            bform = sum((kx * u * v * ds(self.mesh.tag(n)) for n in self.absorbing[1:]),
                        kx * u * v * ds(self.mesh.tag(self.absorbing[0])))
            B = mat(bform)
        A = complex_combination(K, k2M, B)
        del K, B
        bv = fem.assemble_vector(fem.form(L))
        b = bv.array.astype(np.complex128)
        dofs, vals = self._dirichlet_values()
        A, b = eliminate(A, dofs, b, vals, copy=False)  # A is this method's own
        constrained = np.unique(dofs)
        aux = {"k2M": _zero_rows_cols(k2M, constrained)}
        grid = _grid_view(self.mesh, V)
        if grid is not None:
            aux["grid"] = grid
        return LinearSystem(A, b, V, constrained, self.mesh, None, [], self.name, aux=aux)


def complex_combination(K: sp.csr_matrix, M: sp.csr_matrix, B: sp.csr_matrix | None = None) -> sp.csr_matrix:
    """``K - M - i B`` as one complex CSR matrix, computed into one array where it can be.

    ``K`` and ``M`` are cell integrals on one space, so DOLFINx gives them the same sparsity pattern: the
    entries ``K - M`` go straight into the complex result, and the boundary term ``B`` (whose entries couple
    boundary dofs that share a cell, so lie in that pattern) is subtracted in place. scipy's arithmetic
    (``K.astype(complex) - M - 1j * B``) holds two or three complex copies at once: at n = 2048 (4.2M
    unknowns, 29M entries) each is 0.6 GB, and with the Dirichlet elimination's copy they made the assembly's
    peak. Patterns that differ (other forms, another assembler) fall back to that arithmetic."""
    same = (K.shape == M.shape and np.array_equal(K.indptr, M.indptr) and np.array_equal(K.indices, M.indices))
    if not same:
        A = K.astype(np.complex128) - M
        return (A - 1j * B).tocsr() if B is not None else A.tocsr()
    data = np.empty(len(K.data), dtype=np.complex128)
    np.subtract(K.data, M.data, out=data.real)
    data.imag = 0.0
    A = sp.csr_matrix((data, K.indices.copy(), K.indptr.copy()), shape=K.shape)
    if B is None or B.nnz == 0:
        return A
    A.sort_indices()  # in place, where a row is not sorted (DOLFINx sorts them)
    B = B.tocoo()
    # A's entries in B's rows (O(n) of them), keyed row-major like B's: sorted, so searchsorted finds B's
    rows = np.unique(B.row)
    counts = np.diff(A.indptr)[rows]
    idx = np.repeat(A.indptr[rows] - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
    keys = np.repeat(rows.astype(np.int64), counts) * A.shape[1] + A.indices[idx]
    want = B.row.astype(np.int64) * A.shape[1] + B.col
    at = np.minimum(np.searchsorted(keys, want), len(keys) - 1)
    if len(keys) == 0 or not np.array_equal(keys[at], want):  # an entry outside K's pattern
        return (A - 1j * B.tocsr()).tocsr()
    np.subtract.at(A.data.imag, idx[at], B.data)  # repeated (row, col) pairs, if any, add up
    return A


def _zero_rows_cols(M, dofs):
    """``M`` with the rows and columns of ``dofs`` zeroed (the eliminated Dirichlet dofs)."""
    if len(dofs) == 0:
        return M.tocsr()
    keep = np.ones(M.shape[0])
    keep[dofs] = 0.0
    D = sp.diags(keep)
    return (D @ M @ D).tocsr()


def _grid_view(mesh, V):
    """The mesh's (cached) :class:`meshes.GridView` when it is a structured 2D grid and ``V`` is P1, else
    ``None`` (P1 spaces on one mesh share the dof numbering the view maps)."""
    if mesh.mesh.geometry.dim != 2 or V.element.basix_element.degree != 1 or mesh.comm.size > 1:
        return None
    try:
        return mesh.grid_view()
    except ValueError:
        return None


def grid_helmholtz(c_grid: np.ndarray, k: float, source=(0.5, 0.5), width: float | None = None) -> LinearSystem:
    """The Helmholtz system on the unit square whose node grid carries the wave speed ``c_grid``
    (``(n+1) x (n+1)``, row ``j`` at ``y = j / n``): absorbing on all sides, a normalized Gaussian point
    source at ``source`` of width ``2 h`` by default."""
    import meshes

    c_grid = np.asarray(c_grid, dtype=float)
    if c_grid.ndim != 2 or c_grid.shape[0] != c_grid.shape[1] or c_grid.shape[0] < 3:
        raise ValueError(f"wave speed grid must be square (n+1, n+1) with n >= 2, got shape {c_grid.shape}")
    n = c_grid.shape[0] - 1
    mesh = meshes.unit_square(n)
    w = width or 2.0 / n
    x0, y0 = source
    f = lambda x: np.exp(-((x[0] - x0) ** 2 + (x[1] - y0) ** 2) / (2 * w**2)) / (2 * np.pi * w**2)  # noqa: E731
    return Helmholtz(mesh, k=k, f=f, absorbing=list(mesh.boundaries), speed=c_grid).assemble()
