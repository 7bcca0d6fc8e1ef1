"""Observation operators ``d = H u`` for inverse problems: all nodes, or sensor points (P1 interpolation).

Each is linear in the state and holds ``H`` as a scipy CSR matrix (``matrix``, shape ``(size, ndofs)``);
``obs(u)`` applies it to a numpy array or (differentiably) to a torch tensor of shape ``(ndofs,)`` or
``(batch, ndofs)``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


class Observation:
    """``u -> H u`` with a fixed sparse ``H``."""

    name = "linear"

    def __init__(self, matrix: sp.csr_matrix):
        self.matrix = sp.csr_matrix(matrix)
        self._T = self.matrix.T.tocsr()

    @property
    def size(self) -> int:
        return self.matrix.shape[0]

    def __call__(self, u):
        if isinstance(u, np.ndarray):
            return (self.matrix @ u.T).T
        from .differentiable import sparse_apply

        return sparse_apply(self.matrix, u, self._T)

    def check(self, data) -> np.ndarray:
        """``data`` as a float array of this operator's size; wrong shape or non-finite -> ``ValueError``."""
        d = np.asarray(data, dtype=float)
        if d.shape != (self.size,):
            raise ValueError(f"observations have shape {d.shape}; the {self.name} observation operator "
                             f"gives ({self.size},)")
        bad = ~np.isfinite(d)
        if bad.any():
            raise ValueError(f"observations have non-finite values (NaN or inf) at entries "
                             f"{np.flatnonzero(bad)[:5].tolist()}")
        return d


class AllNodes(Observation):
    """Every nodal value (full-field data)."""

    name = "all-nodes"

    def __init__(self, ndofs: int):
        super().__init__(sp.identity(ndofs, format="csr"))


class Sensors(Observation):
    """Values of the P1 solution at points: row ``k`` of ``H`` holds the barycentric coordinates of point
    ``k`` in the triangle containing it (found with dolfinx's bounding-box tree). A point outside the mesh
    raises ``ValueError`` naming it.

    Parameters
    ----------
    solver : DarcySolver (or anything with ``family`` and ``coordinates``)
    points : ``(K, 2)`` coordinates
    """

    name = "sensors"

    def __init__(self, solver, points):
        self.points = _check_points(points)
        super().__init__(p1_interpolation_matrix(solver.family.mesh.mesh, solver.family.asm.cells,
                                                 solver.coordinates, self.points))


def _check_points(points) -> np.ndarray:
    p = np.asarray(points, dtype=float)
    if p.ndim != 2 or p.shape[1] != 2 or len(p) == 0:
        raise ValueError(f"sensor points must have shape (K, 2) with K >= 1, got {p.shape}")
    bad = ~np.isfinite(p).all(axis=1)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise ValueError(f"sensor {k} has non-finite coordinates {p[k].tolist()}")
    return p


def p1_interpolation_matrix(mesh, cells: np.ndarray, coords: np.ndarray, points: np.ndarray) -> sp.csr_matrix:
    """``(K, ndofs)`` matrix evaluating a P1 field at ``points``; ``cells[c]`` are the dofs of cell ``c``
    (the dofmap, in dolfinx's cell numbering) and ``coords`` the dof coordinates."""
    import dolfinx.geometry as geometry

    pts = np.zeros((len(points), 3))
    pts[:, :2] = points
    tree = geometry.bb_tree(mesh, mesh.topology.dim)
    colliding = geometry.compute_colliding_cells(mesh, geometry.compute_collisions_points(tree, pts), pts)
    rows, cols, vals = [], [], []
    for k in range(len(points)):
        found = colliding.links(k)
        if len(found) == 0:
            raise ValueError(f"sensor {k} at ({points[k, 0]:g}, {points[k, 1]:g}) is outside the mesh")
        dofs = cells[found[0]]
        x = coords[dofs]  # (3, 2)
        T = np.column_stack([x[1] - x[0], x[2] - x[0]])
        l12 = np.linalg.solve(T, points[k] - x[0])
        lam = np.clip(np.array([1.0 - l12.sum(), l12[0], l12[1]]), 0.0, 1.0)
        rows += [k] * 3
        cols += dofs.tolist()
        vals += (lam / lam.sum()).tolist()
    M = sp.csr_matrix((vals, (rows, cols)), shape=(len(points), len(coords)))
    M.sum_duplicates()
    return M


def halton_points(k: int, seed: int = 0, margin: float = 0.05) -> np.ndarray:
    """``k`` quasi-uniform points in ``[margin, 1 - margin]^2`` (scrambled Halton, reproducible by seed)."""
    from scipy.stats import qmc

    if k < 1:
        raise ValueError(f"the number of sensors must be positive, got {k}")
    return margin + (1 - 2 * margin) * qmc.Halton(d=2, scramble=True, seed=seed).random(k)
