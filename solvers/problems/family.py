"""``DarcyFamily``: the matrices ``A(a)`` of one Darcy problem for many coefficients, each in one sparse
product (solver-in-the-loop sweeps, time-dependent coefficients, inversion).

For P1 elements and a P1 (nodal) coefficient ``a`` the stiffness matrix is linear in ``a`` and its CSR
values are ``B @ a`` with ``B`` computed once (:class:`solvers.data.p1.P1Assembler`); the right-hand side
with Dirichlet lifting is ``F - A_full(a) g`` on free rows and ``g`` on constrained ones. The result
equals ``Darcy(mesh, a, f, bcs).assemble()`` to round-off (a test checks it) at a fraction of its cost:
no form, no dolfinx assembly, the same CSR pattern every time (so a cached AMG hierarchy can be
refreshed in place). Serial, 2-D triangles, P1, Neumann/Dirichlet conditions (a Robin term depends on
no coefficient and is kept as assembled).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from meshes import GridView
from ..system import LinearSystem
from .poisson import Darcy


class DarcyFamily:
    """``-div(a grad u) = f`` with fixed mesh, source and boundary conditions; ``a`` varies.

    Parameters
    ----------
    mesh : meshes.Mesh (serial, triangles)
    f, bcs : as for :class:`solvers.Darcy` (``bcs=None``: ``u = 0`` on every named boundary)

    Examples
    --------
    >>> import numpy as np, meshes
    >>> from solvers import Darcy, DarcyFamily
    >>> mesh = meshes.unit_square(8)
    >>> fam = DarcyFamily(mesh)
    >>> a = 1.0 + np.random.default_rng(0).random(fam.ndofs)
    >>> ref = Darcy(mesh, a=a).assemble()
    >>> s = fam.system(a)
    >>> bool(abs(s.A - ref.A).max() < 1e-12 and np.abs(s.b - ref.b).max() < 1e-12)
    True
    """

    def __init__(self, mesh, f=1.0, bcs=None):
        from ..data.p1 import P1Assembler

        if mesh.comm.size > 1:
            raise ValueError("DarcyFamily is serial; under MPI assemble Darcy(mesh, a) per coefficient")
        if mesh.mesh.topology.cell_name() != "triangle":
            raise ValueError(f"DarcyFamily needs a triangle mesh, this one has {mesh.mesh.topology.cell_name()} cells")
        self.mesh = mesh
        unit = Darcy(mesh, a=1.0, f=f, bcs=bcs)
        self.template = unit.assemble()
        self.asm = P1Assembler.from_system(self.template)
        self.B = self.asm.stiffness_operator()
        # the a-independent part of the matrix (Robin terms), on the pattern
        unit_values = self.B @ np.ones(self.ndofs)
        A_full_unit = self._assemble_full(unit)
        self.extra = A_full_unit.data - unit_values
        self.extra[np.abs(self.extra) < 1e-13 * np.abs(unit_values).max()] = 0.0
        g = np.zeros(self.ndofs)
        c = self.template.constrained
        g[c] = self.template.b[c]
        self.g = g
        self.free = np.ones(self.ndofs, dtype=bool)
        self.free[c] = False
        self.F = self.template.b + self.free * (A_full_unit @ g)  # load vector before lifting
        self._view = None

    def _assemble_full(self, problem) -> sp.csr_matrix:
        """``A`` without Dirichlet elimination, on the template's (sorted) pattern."""
        import dolfinx.fem as fem

        a_form = fem.form(problem.full_forms()[0])
        A = fem.assemble_matrix(a_form).to_scipy().tocsr().copy()
        A.sort_indices()
        if not (np.array_equal(A.indptr, self.asm.indptr) and np.array_equal(A.indices, self.asm.indices)):
            raise ValueError("DarcyFamily: dolfinx's sparsity pattern differs from the template's")
        return A

    @property
    def ndofs(self) -> int:
        return self.asm.n

    def nodal(self, a) -> np.ndarray:
        """A coefficient as nodal values: an array of length ``ndofs``, an ``(n+1, n+1)`` grid on a
        structured mesh, a number, or a callable ``x -> values`` (``x`` of shape ``(2, ndofs)``)."""
        if callable(a):
            xy = self.template.space.tabulate_dof_coordinates()[:, :2].T
            a = np.asarray(a(xy), dtype=float)
            if a.shape != (self.ndofs,):
                raise ValueError(f"coefficient 'a': the callable returned shape {a.shape}, expected ({self.ndofs},)")
        a = np.asarray(a, dtype=float)
        if a.ndim == 0:
            a = np.full(self.ndofs, float(a))
        elif a.ndim == 2:
            if self._view is None:
                self._view = GridView(self.mesh)
            if a.shape != self._view.shape:
                raise ValueError(f"coefficient 'a' has grid shape {a.shape}; this mesh needs {self._view.shape}")
            a = self._view.to_dofs(a)
        if a.shape != (self.ndofs,):
            raise ValueError(f"coefficient 'a' has {a.shape[0]} nodal values, the P1 space has {self.ndofs}")
        bad = ~np.isfinite(a)
        if bad.any():
            raise ValueError(f"coefficient 'a' has non-finite values at entries {np.flatnonzero(bad)[:5].tolist()}")
        if not a.min() > 0:
            raise ValueError(f"coefficient 'a' must be positive everywhere, its minimum is {a.min():g}")
        return a

    def matrix(self, a) -> sp.csr_matrix:
        """``A(a)`` with Dirichlet rows and columns eliminated (identity on constrained dofs)."""
        return self.asm.matrix(self.B @ self.nodal(a) + self.extra)

    def system(self, a) -> LinearSystem:
        """The whole ``LinearSystem`` for coefficient ``a`` (lifted right-hand side included)."""
        a = self.nodal(a)
        values = self.B @ a + self.extra
        b = self.F.copy()
        if np.any(self.g):
            b -= self.free * (self.asm.matrix(values, eliminate=False) @ self.g)
            b[~self.free] = self.g[~self.free]
        t = self.template
        return LinearSystem(self.asm.matrix(values), b, t.space, t.constrained, t.mesh, None, t.bcs, "darcy")
