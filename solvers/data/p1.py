"""Matrices of P1 triangles as *linear functions of a nodal coefficient*, for fast data generation.

For P1 elements and a P1 coefficient ``a``, the stiffness matrix is exactly
``A(a) = sum_c mean_c(a) K_c`` (the integrand of ``a grad(phi_i) . grad(phi_j)`` is linear), so its CSR
values are one sparse product ``values = B @ a`` with ``B`` precomputed once. The same holds for the
mass matrix with a P1 weight (quadratic integrand: exact with the edge-midpoint rule), used by
Helmholtz with a variable wave speed. Dirichlet rows and columns are eliminated by the
masks of :func:`solvers.dirichlet.entry_masks`, as ``solvers.problems`` does (identity on constrained dofs), so the result equals dolfinx's assembly to
round-off (a test checks it). dolfinx does not offer this factorization of the assembly, hence the
hand-written element matrices.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from ..dirichlet import entry_masks


class P1Assembler:
    """Coefficient-linear assembly on a P1 triangle mesh with a fixed CSR pattern.

    Parameters
    ----------
    coords : (ndofs, 2) dof coordinates
    cells : (ncells, 3) dof indices of each triangle
    pattern : scipy CSR matrix whose sparsity pattern the output uses (dolfinx's, for identical layout)
    constrained : dofs with Dirichlet conditions (rows and columns eliminated, identity diagonal)
    """

    def __init__(self, coords: np.ndarray, cells: np.ndarray, pattern: sp.csr_matrix, constrained: np.ndarray):
        self.n = coords.shape[0]
        self.cells = np.asarray(cells, dtype=np.int64)
        p = pattern.tocsr().copy()
        p.sort_indices()
        self.indptr, self.indices = p.indptr.copy(), p.indices.copy()
        self.nnz = len(self.indices)
        xy = coords[self.cells]  # (nc, 3, 2)
        d1, d2 = xy[:, 1] - xy[:, 0], xy[:, 2] - xy[:, 0]
        det = d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0]
        self.area = 0.5 * np.abs(det)
        # gradients of the barycentric functions: rows of inv(J)^T applied to reference gradients
        ref = np.array([[-1.0, -1.0], [1.0, 0.0], [0.0, 1.0]])
        Jinv = np.empty((len(det), 2, 2))
        Jinv[:, 0, 0], Jinv[:, 0, 1] = d2[:, 1] / det, -d2[:, 0] / det
        Jinv[:, 1, 0], Jinv[:, 1, 1] = -d1[:, 1] / det, d1[:, 0] / det
        grads = np.einsum("ij,cjk->cik", ref, Jinv)  # (nc, 3, 2)
        self.K = self.area[:, None, None] * np.einsum("cik,cjk->cij", grads, grads)
        self.pos = self._positions()
        self.constrained = np.unique(np.asarray(constrained, dtype=np.int64))
        self.masks = entry_masks(sp.csr_matrix((np.zeros(self.nnz), self.indices, self.indptr),
                                               shape=(self.n, self.n)), self.constrained)

    @classmethod
    def from_system(cls, system) -> "P1Assembler":
        """The assembler on an assembled P1 ``LinearSystem``'s dofs, pattern and Dirichlet dofs (serial)."""
        V = system.space
        return cls(V.tabulate_dof_coordinates()[:, :2], V.dofmap.list, system.A, system.constrained)

    def _positions(self) -> np.ndarray:
        """CSR position of local entry (i, j) of every cell, shape (ncells, 3, 3)."""
        r = np.repeat(self.cells[:, :, None], 3, axis=2).ravel().astype(np.int64)
        c = np.repeat(self.cells[:, None, :], 3, axis=1).ravel().astype(np.int64)
        rows = np.repeat(np.arange(self.n, dtype=np.int64), np.diff(self.indptr))
        keys = rows * self.n + self.indices  # sorted: rows ascending, sorted columns within rows
        want = r * self.n + c
        pos = np.searchsorted(keys, want)
        if np.any(pos >= len(keys)) or np.any(keys[np.minimum(pos, len(keys) - 1)] != want):
            raise ValueError("the sparsity pattern does not contain every element entry")
        return pos.reshape(-1, 3, 3)

    def _operator(self, local: np.ndarray) -> sp.csr_matrix:
        """Sparse ``B`` (nnz x ndofs) with ``values = B @ a`` for local tensors ``local[c, i, j, v]``:
        the contribution of vertex ``v``'s coefficient value to entry ``(i, j)`` of cell ``c``."""
        nc = len(self.cells)
        rows = np.repeat(self.pos.reshape(nc, 9), 3, axis=1).ravel()
        cols = np.repeat(self.cells[:, None, :], 9, axis=1).reshape(nc, 27).ravel()
        B = sp.csr_matrix((local.reshape(nc, 27).ravel(), (rows, cols)), shape=(self.nnz, self.n))
        B.sum_duplicates()
        return B

    def stiffness_operator(self) -> sp.csr_matrix:
        """``B`` with ``values(a) = B @ a`` for ``int a grad(u) . grad(v)`` (P1 ``a``: exact, the
        integrand is linear, so each cell sees the mean of its three vertex values)."""
        return self._operator(np.repeat(self.K[:, :, :, None], 3, axis=3) / 3.0)

    def mass_operator(self) -> sp.csr_matrix:
        """``B`` with ``values(w) = B @ w`` for ``int w u v`` (P1 ``w``), exact by
        ``int_T l1^a l2^b l3^c = 2 |T| a! b! c! / (a + b + c + 2)!``."""
        t = np.zeros((3, 3, 3))
        for i, j, v in np.ndindex(3, 3, 3):
            m = np.bincount([i, j, v], minlength=3)
            t[i, j, v] = 2.0 * np.prod([math.factorial(k) for k in m]) / math.factorial(5)
        return self._operator(self.area[:, None, None, None] * t[None])

    def matrix(self, values: np.ndarray, eliminate: bool = True) -> sp.csr_matrix:
        """CSR matrix from values on the pattern, with Dirichlet rows/columns eliminated."""
        v = self.masks.eliminate_values(values) if eliminate else np.array(values, copy=True)
        return sp.csr_matrix((v, self.indices, self.indptr), shape=(self.n, self.n))
