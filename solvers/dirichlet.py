"""Dirichlet conditions in the assembled system: the one place where rows and columns are eliminated.

Every assembly path uses these functions: the PDE problems (``solvers.problems``: dolfinx assembles without
conditions, then :func:`eliminate`; Helmholtz with complex values), the coefficient-linear assembly of the data
generators (``solvers.data.p1`` applies :func:`entry_masks` to each new set of values) and the generators'
right-hand sides (:func:`lift`). The result equals dolfinx's own ``assemble_matrix(a, bcs=...)`` with
``apply_lifting`` + ``set_bc`` (a test checks it): constrained rows *and* columns zeroed, 1 on their diagonal
(so a symmetric PDE keeps a symmetric matrix), the sparsity pattern kept (zeros stay stored entries), and
``b`` lifted: ``b - A g`` on free rows, the boundary values ``g`` on constrained rows.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp


class EntryMasks(NamedTuple):
    """Per stored CSR entry: in a constrained row, in a constrained column; and the positions of the
    constrained diagonal entries."""

    row: np.ndarray
    col: np.ndarray
    diagonal: np.ndarray

    def eliminate_values(self, values: np.ndarray) -> np.ndarray:
        """CSR values with constrained rows and columns zeroed and 1 on their diagonal (a new array)."""
        v = np.array(values, copy=True)
        v[self.row | self.col] = 0.0
        v[self.diagonal] = 1.0
        return v


def entry_masks(A: sp.csr_matrix, dofs) -> EntryMasks:
    """:class:`EntryMasks` of ``A``'s pattern for the constrained ``dofs`` (local indices; ``A`` may hold the
    owned rows of a distributed matrix, columns in local numbering including ghosts)."""
    nrows, ncols = A.shape
    dofs = np.asarray(dofs, dtype=np.int64)
    in_rows = np.zeros(nrows, dtype=bool)
    in_rows[dofs[dofs < nrows]] = True
    in_cols = np.zeros(ncols, dtype=bool)
    in_cols[dofs] = True
    rows = np.repeat(np.arange(nrows), np.diff(A.indptr))
    row, col = in_rows[rows], in_cols[A.indices]
    return EntryMasks(row, col, np.flatnonzero(row & (rows == A.indices)))


def lift(A_full, b: np.ndarray, dofs, values) -> np.ndarray:
    """The right-hand side for ``u = values`` on ``dofs``: ``b - A_full g`` with ``g`` the boundary values
    (zero elsewhere), then ``values`` on the constrained rows. ``values`` has one entry per dof, or is a
    full-length (local) vector ``g`` itself; ``b`` may be a matrix of several right-hand sides."""
    dofs = np.asarray(dofs, dtype=np.int64)
    n_rows, n_cols = A_full.shape
    values = np.asarray(values)
    if values.shape[0] == n_cols and len(dofs) != n_cols:
        g = values
    else:
        g = np.zeros((n_cols,) + values.shape[1:], dtype=np.result_type(values.dtype, np.float64))
        g[dofs] = values
    if np.ndim(b) == 2 and g.ndim == 1:  # one value per dof for every right-hand side
        g = g[:, None]
    out = b - A_full @ g if len(dofs) else np.array(b, copy=True)
    owned = dofs[dofs < n_rows]
    out[owned] = g[owned]
    return out


def check_dofs(dofs, n: int) -> np.ndarray:
    """``dofs`` as int64 indices, refused unless they are integers in ``[0, n)``: a negative one wrapped
    around to the last rows, a float one was truncated, one past the end was a bare IndexError."""
    dofs = np.asarray(dofs)
    if dofs.size == 0:
        return dofs.astype(np.int64).reshape(-1)
    if not np.issubdtype(dofs.dtype, np.integer):
        raise ValueError(f"dofs must be integers, got {dofs.dtype}")
    dofs = dofs.astype(np.int64).reshape(-1)
    bad = dofs[(dofs < 0) | (dofs >= n)]
    if bad.size:
        raise ValueError(f"dofs must be indices in [0, {n}), got {bad[0]}")
    return dofs


def eliminate(A_full: sp.csr_matrix, dofs, b: np.ndarray | None = None, values=0.0, copy: bool = True):
    """``(A, b)`` with ``u = values`` on ``dofs`` eliminated symmetrically (see the module docstring).

    ``A_full`` is the matrix assembled without conditions (scipy CSR, real or complex); ``b`` (optional) its
    right-hand side; ``values`` a number, one value per dof, or a full-length vector of boundary values.
    Returns ``b=None`` when no ``b`` was given. ``copy=False``: ``A_full`` (CSR) may be changed and returned,
    for a caller whose matrix is its own temporary (a copy of a 4.2M-unknown complex matrix is 0.6 GB)."""
    A = sp.csr_matrix(A_full, copy=copy)
    A.sum_duplicates()  # sorts too; a constrained diagonal stored twice would become 2
    dofs = check_dofs(dofs, A.shape[1])
    if len(dofs) == 0:  # nothing to eliminate (absorbing or natural conditions only)
        return A, (None if b is None else np.array(b, copy=True))
    if not np.all(np.isfinite(values)):
        raise ValueError("eliminate: Dirichlet values must be finite (got NaN or inf)")
    A.data = entry_masks(A, dofs).eliminate_values(A.data)
    if b is None:
        return A, None
    vals = np.broadcast_to(values, dofs.shape) if np.ndim(values) == 0 else values
    return A, lift(A_full, b, dofs, vals)
