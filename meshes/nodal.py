"""Values of a field at the mesh's geometry nodes (what VTU files and triangle plots hold)."""

from __future__ import annotations

import numpy as np

from . import _mpi  # noqa: F401
import dolfinx.fem as fem


def as_p1(u: fem.Function) -> fem.Function:
    """``u`` itself if it is (vector) P1, else its interpolation into (vector) P1 (files store nodal values)."""
    el = u.function_space.element.basix_element
    if el.degree == 1 and el.discontinuous is False:
        return u
    msh = u.function_space.mesh
    V1 = fem.functionspace(msh, ("Lagrange", 1, tuple(u.function_space.value_shape)))
    v = fem.Function(V1, name=u.name)
    v.interpolate(u)
    return v


def node_dofs(V: fem.FunctionSpace) -> np.ndarray:
    """For each local geometry node, the dof (block) of the P1 space ``V`` at that node: both are
    cell-local orderings of the vertices of a first-order mesh."""
    msh = V.mesh
    out = np.empty(msh.geometry.x.shape[0], dtype=np.int64)
    out[msh.geometry.dofmaps[0].ravel()] = V.dofmap.list.ravel()
    return out


def nodal_values(u: fem.Function) -> np.ndarray:
    """``u`` at the local geometry nodes: shape ``(nnodes,)`` for scalars, ``(nnodes, bs)`` for vectors.

    >>> import meshes
    >>> m = meshes.unit_square(2)
    >>> u = fem.Function(fem.functionspace(m.mesh, ("Lagrange", 2)))
    >>> u.interpolate(lambda x: x[0] ** 2)
    >>> bool(np.allclose(nodal_values(u), m.mesh.geometry.x[:, 0] ** 2))
    True
    """
    v = as_p1(u)
    bs = v.function_space.dofmap.index_map_bs
    vals = v.x.array.reshape(-1, bs)[node_dofs(v.function_space)]
    return vals[:, 0] if bs == 1 else vals
