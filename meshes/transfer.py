"""Sparse P1 transfer between an unstructured triangle mesh and a node grid, so grid operators act on mesh data.

``mesh_to_grid`` evaluates the P1 field at grid nodes (barycentric weights of the cell holding each node; nodes
outside the domain, in a hole or the L-shape's cut, get an empty row and ``inside = False``).
``grid_to_mesh`` evaluates the bilinear interpolant of grid values at the mesh's P1 dofs. Both are scipy CSR
matrices, exact for linear functions and second-order accurate for smooth ones. Grids are ``(ny, nx)`` arrays
of node values with row 0 at the bottom, as :class:`meshes.GridView`. Serial meshes only.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np
import scipy.sparse as sp

from . import _mpi  # noqa: F401
import dolfinx.fem as fem
import dolfinx
import dolfinx.geometry as dgeom

from .mesh import Mesh


class Grid(NamedTuple):
    """Node grid of ``shape = (ny, nx)`` over ``extent = (x0, x1, y0, y1)`` (row 0 at ``y0``)."""

    shape: tuple[int, int]
    extent: tuple[float, float, float, float]

    def points(self) -> np.ndarray:
        """Node coordinates, shape ``(ny * nx, 3)``, row-major (x fastest)."""
        (ny, nx), (x0, x1, y0, y1) = self.shape, self.extent
        X, Y = np.meshgrid(np.linspace(x0, x1, nx), np.linspace(y0, y1, ny))
        return np.column_stack([X.ravel(), Y.ravel(), np.zeros(X.size)])


class MeshToGrid(NamedTuple):
    """``matrix @ dof_values`` is the ``(ny * nx)`` grid (reshape to ``grid.shape``); ``inside`` marks nodes
    that lie in the mesh (the others are 0)."""

    matrix: sp.csr_matrix
    inside: np.ndarray
    grid: Grid


def _space(mesh_or_space) -> fem.FunctionSpace:
    if isinstance(mesh_or_space, Mesh):
        mesh_or_space = fem.functionspace(mesh_or_space.mesh, ("Lagrange", 1))
    V = mesh_or_space
    el = V.element.basix_element
    if el.degree != 1 or V.dofmap.index_map_bs != 1 or V.mesh.topology.cell_name() != "triangle":
        raise ValueError("transfer works on scalar P1 spaces of triangle meshes")
    if V.mesh.comm.size > 1:
        raise ValueError("mesh <-> grid transfer is serial (each rank would see part of the grid)")
    return V


def _grid(V, shape: Sequence[int], extent) -> Grid:
    ny, nx = (int(v) for v in shape)
    if ny < 2 or nx < 2:
        raise ValueError(f"grid shape must be at least (2, 2), got {tuple(shape)}")
    if extent is None:
        x = V.mesh.geometry.x
        extent = (x[:, 0].min(), x[:, 0].max(), x[:, 1].min(), x[:, 1].max())
    x0, x1, y0, y1 = (float(v) for v in extent)
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"grid extent must satisfy x1 > x0 and y1 > y0, got {extent}")
    return Grid((ny, nx), (x0, x1, y0, y1))


def mesh_to_grid(mesh_or_space, shape: Sequence[int], extent=None) -> MeshToGrid:
    """P1 values at the nodes of a ``shape = (ny, nx)`` grid over ``extent`` (default: the mesh's bounding box).

    >>> import meshes, numpy as np
    >>> m = meshes.l_shape(0.5)
    >>> t = mesh_to_grid(m, (5, 5))
    >>> V = dolfinx.fem.functionspace(m.mesh, ("Lagrange", 1))
    >>> u = dolfinx.fem.Function(V); u.interpolate(lambda x: 1 + x[0] - 2 * x[1])
    >>> p = t.grid.points()[t.inside]
    >>> bool(np.allclose((t.matrix @ u.x.array)[t.inside], 1 + p[:, 0] - 2 * p[:, 1]))
    True
    >>> int((~t.inside).sum())  # the open quarter [0, 1) x (-1, 0) cut out
    4
    """
    V = _space(mesh_or_space)
    grid = _grid(V, shape, extent)
    msh = V.mesh
    points = grid.points()
    tree = dgeom.bb_tree(msh, msh.topology.dim)
    cells = dgeom.compute_colliding_cells(msh, dgeom.compute_collisions_points(tree, points), points)
    offsets = cells.offsets
    has = np.diff(offsets) > 0
    rows = np.flatnonzero(has)
    first = cells.array[offsets[:-1][has]]
    nodes = msh.geometry.dofmaps[0][first]  # (n, 3) geometry nodes = P1 dofs, same cell-local order
    X = msh.geometry.x[nodes][:, :, :2]
    T = np.stack([X[:, 1] - X[:, 0], X[:, 2] - X[:, 0]], axis=-1)  # (n, 2, 2) columns: edges
    lam12 = np.linalg.solve(T, (points[rows, :2] - X[:, 0])[..., None])[..., 0]
    lam = np.column_stack([1 - lam12.sum(axis=1), lam12])
    lam = np.clip(lam, 0.0, 1.0)
    lam /= lam.sum(axis=1, keepdims=True)  # a node on an edge may be found from a neighbour: stay convex
    dofs = V.dofmap.list[first]
    ndofs = V.dofmap.index_map.size_local + V.dofmap.index_map.num_ghosts
    M = sp.csr_matrix((lam.ravel(), (np.repeat(rows, 3), dofs.ravel())), shape=(len(points), ndofs))
    return MeshToGrid(M, has, grid)


def grid_to_mesh(mesh_or_space, shape: Sequence[int], extent=None) -> sp.csr_matrix:
    """Bilinear interpolation of ``(ny, nx)`` grid node values (raveled) at the P1 dofs: a ``(ndofs, ny*nx)``
    CSR matrix. The grid must cover the mesh (default extent: its bounding box).

    >>> import meshes, numpy as np
    >>> m = meshes.disk(0.5)
    >>> G = grid_to_mesh(m, (9, 9), extent=(-1, 1, -1, 1))
    >>> X, Y = np.meshgrid(np.linspace(-1, 1, 9), np.linspace(-1, 1, 9))
    >>> V = dolfinx.fem.functionspace(m.mesh, ("Lagrange", 1))
    >>> xd = V.tabulate_dof_coordinates()
    >>> bool(np.allclose(G @ (X * Y).ravel(), xd[:, 0] * xd[:, 1]))  # bilinear functions are exact
    True
    """
    V = _space(mesh_or_space)
    grid = _grid(V, shape, extent)
    (ny, nx), (x0, x1, y0, y1) = grid.shape, grid.extent
    xd = V.tabulate_dof_coordinates()[:, :2]
    tol = 1e-10 * max(x1 - x0, y1 - y0)
    if (xd[:, 0] < x0 - tol).any() or (xd[:, 0] > x1 + tol).any() or (xd[:, 1] < y0 - tol).any() or \
            (xd[:, 1] > y1 + tol).any():
        raise ValueError(f"the grid extent {grid.extent} does not cover the mesh")
    s = np.clip((xd[:, 0] - x0) / (x1 - x0) * (nx - 1), 0, nx - 1)
    t = np.clip((xd[:, 1] - y0) / (y1 - y0) * (ny - 1), 0, ny - 1)
    i, j = np.minimum(s.astype(int), nx - 2), np.minimum(t.astype(int), ny - 2)
    fs, ft = s - i, t - j
    cols = np.column_stack([j * nx + i, j * nx + i + 1, (j + 1) * nx + i, (j + 1) * nx + i + 1])
    w = np.column_stack([(1 - fs) * (1 - ft), fs * (1 - ft), (1 - fs) * ft, fs * ft])
    rows = np.repeat(np.arange(len(xd)), 4)
    return sp.csr_matrix((w.ravel(), (rows, cols.ravel())), shape=(len(xd), ny * nx))
