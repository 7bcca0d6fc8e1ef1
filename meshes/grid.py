"""``GridView``: the exact correspondence between P1 nodal values on a structured mesh and a 2D array."""

from __future__ import annotations

import copy

import numpy as np

from . import _mpi  # noqa: F401
import dolfinx.fem as fem

from .mesh import Mesh


class GridView:
    """Permutation between the dofs of a P1 (or Q1) space on a structured 2D mesh and an array.

    The array has shape ``(ny + 1, nx + 1)``; row ``j`` holds the nodes with ``y = y0 + j*hy`` (row 0
    at the bottom, ``origin="lower"`` when plotted), column ``i`` those with ``x = x0 + i*hx``. Both
    directions are index permutations, so a round trip is exact to the bit. Serial meshes only (on a
    distributed mesh each rank would see a piece of the grid).

    Parameters
    ----------
    space : dolfinx.fem.FunctionSpace or Mesh
        A scalar P1 space on a mesh made by ``unit_square``/``rectangle``; given a ``Mesh``, its P1
        space is created.

    Examples
    --------
    >>> import meshes, numpy as np
    >>> g = meshes.GridView(meshes.unit_square(4))
    >>> g.shape
    (5, 5)
    >>> a = np.arange(25.0).reshape(5, 5)
    >>> bool(np.array_equal(g.to_grid(g.to_dofs(a)), a))
    True
    """

    def __init__(self, space):
        if isinstance(space, Mesh):
            space = fem.functionspace(space.mesh, ("Lagrange", 1))
        self.space = space
        msh = space.mesh
        if msh.comm.size > 1:
            raise ValueError("GridView needs a serial mesh (comm size 1), got a mesh on "
                             f"{msh.comm.size} processes")
        if msh.geometry.dim != 2 or msh.topology.dim != 2:
            raise ValueError("GridView works on 2D meshes only")
        if space.dofmap.index_map_bs != 1 or space.element.basix_element.degree != 1:
            raise ValueError("GridView needs a scalar degree-1 Lagrange space")
        xy = space.tabulate_dof_coordinates()[:, :2]
        nd = space.dofmap.index_map.size_local + space.dofmap.index_map.num_ghosts
        xy = xy[:nd]
        xs, ys = np.unique(np.round(xy[:, 0], 12)), np.unique(np.round(xy[:, 1], 12))
        nx, ny = len(xs) - 1, len(ys) - 1
        if nx < 1 or ny < 1 or (nx + 1) * (ny + 1) != nd:
            raise ValueError(f"the mesh is not a structured grid: {nd} nodes do not form a tensor grid "
                             f"of {len(xs)} x {len(ys)} coordinates")
        hx, hy = (xs[-1] - xs[0]) / nx, (ys[-1] - ys[0]) / ny
        i = np.rint((xy[:, 0] - xs[0]) / hx).astype(np.int64)
        j = np.rint((xy[:, 1] - ys[0]) / hy).astype(np.int64)
        if (np.abs(xs[0] + i * hx - xy[:, 0]).max() > 1e-9 * max(1.0, abs(xs[-1]))
                or np.abs(ys[0] + j * hy - xy[:, 1]).max() > 1e-9 * max(1.0, abs(ys[-1]))):
            raise ValueError("the mesh nodes are not equally spaced: no exact grid view exists")
        flat = j * (nx + 1) + i
        if not np.array_equal(np.sort(flat), np.arange(nd)):
            raise ValueError("the mesh nodes do not map one-to-one onto a grid")
        self.shape = (ny + 1, nx + 1)
        self.origin = (float(xs[0]) + 0.0, float(ys[0]) + 0.0)
        self.spacing = (float(hx), float(hy))
        self.grid_of_dof = flat
        self._dof_of_grid = np.empty(nd, dtype=np.int64)
        self._dof_of_grid[flat] = np.arange(nd)

    grid_of_dof: np.ndarray
    """Flat grid index of each dof, shape ``(ndofs,)``: ``grid.ravel()[grid_of_dof]`` are the nodal values
    (dof order) of a grid array, and ``values[dof_of_grid]`` the inverse. Stored in datasets
    (``mesh/grid_of_dof``) and used by grid-based preconditioners to map dofs to pixels."""

    @property
    def dof_of_grid(self) -> np.ndarray:
        """Dof of each flat grid index (the inverse permutation of :attr:`grid_of_dof`)."""
        return self._dof_of_grid

    def __repr__(self) -> str:
        return f"GridView(shape={self.shape}, origin={self.origin}, spacing={self.spacing})"

    def to_grid(self, values) -> np.ndarray:
        """Nodal values (array of length ndofs, or a dolfinx Function) -> array ``(..., ny+1, nx+1)``.

        Leading batch dimensions are allowed: ``values`` of shape ``(B, ndofs)`` give ``(B, ny+1, nx+1)``.
        """
        if isinstance(values, fem.Function):
            values = values.x.array
        values = np.asarray(values)
        if values.shape[-1] != len(self._dof_of_grid):
            raise ValueError(f"expected {len(self._dof_of_grid)} nodal values, got shape {values.shape}")
        return values[..., self._dof_of_grid].reshape(*values.shape[:-1], *self.shape)

    def to_dofs(self, array) -> np.ndarray:
        """Array ``(..., ny+1, nx+1)`` -> nodal values in dof order ``(..., ndofs)``."""
        array = np.asarray(array)
        if array.shape[-2:] != self.shape:
            raise ValueError(f"grid array has shape {array.shape}; this mesh needs (..., {self.shape[0]}, "
                             f"{self.shape[1]}) nodal values")
        flat = array.reshape(*array.shape[:-2], -1)
        return flat[..., self.grid_of_dof]

    def detached(self) -> "GridView":
        """The same permutation without a reference to the space (and so to the mesh): what a solver that
        only maps dofs to pixels keeps, so that the mesh can be freed after assembly."""
        view = copy.copy(self)
        view.space = None
        return view

    def function(self, array, name: str = "f") -> fem.Function:
        """A dolfinx Function on the view's space holding the grid ``array``."""
        if self.space is None:
            raise ValueError("this GridView was detached from its space (GridView.detached()): it maps arrays "
                             "but makes no Functions")
        u = fem.Function(self.space, name=name)
        u.x.array[:] = self.to_dofs(array)
        return u

    def coordinates(self) -> tuple[np.ndarray, np.ndarray]:
        """Meshgrid ``(X, Y)`` of the node coordinates, each of shape ``(ny+1, nx+1)``."""
        x = self.origin[0] + self.spacing[0] * np.arange(self.shape[1])
        y = self.origin[1] + self.spacing[1] * np.arange(self.shape[0])
        return np.meshgrid(x, y)
