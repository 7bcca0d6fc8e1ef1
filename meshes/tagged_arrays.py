"""A mesh as plain arrays (points, cells, facets, tag values, names) in gmsh/VTK vertex order, and back: the
common form of ``.msh`` writing and ``.vtu`` reading and writing (serial)."""

from __future__ import annotations

import contextlib
from typing import NamedTuple

import numpy as np

from . import _mpi
import dolfinx.mesh as dmesh

from .gmsh_model import add_discrete, session, to_mesh
from .mesh import Mesh

#: dolfinx vertex order -> gmsh/VTK order (first-order cells)
TO_VTK = {"triangle": [0, 1, 2], "quadrilateral": [0, 1, 3, 2], "tetrahedron": [0, 1, 2, 3],
          "hexahedron": [0, 1, 3, 2, 4, 5, 7, 6]}
MESHIO_CELL = {"triangle": "triangle", "quadrilateral": "quad", "tetrahedron": "tetra", "hexahedron": "hexahedron"}
MESHIO_FACET = {"triangle": "line", "quadrilateral": "line", "tetrahedron": "triangle", "hexahedron": "quad"}
#: cell tag value given to untagged cells (gmsh and dolfinx need every cell in a physical group)
UNTAGGED = 0


class TaggedArrays(NamedTuple):
    points: np.ndarray          # (npoints, gdim)
    cell_name: str              # dolfinx cell name
    cells: np.ndarray           # (ncells, nverts), gmsh/VTK order
    cell_values: np.ndarray     # (ncells,)
    facets: np.ndarray          # (nfacets, nverts) of the tagged facets
    facet_values: np.ndarray    # (nfacets,)
    boundaries: dict
    domains: dict


def to_arrays(mesh: Mesh) -> TaggedArrays:
    msh, tdim = mesh.mesh, mesh.tdim
    if mesh.comm.size > 1:
        raise ValueError("this format is written serially; use .xdmf under MPI")
    name = msh.topology.cell_name()
    cells = msh.geometry.dofmaps[0][:, TO_VTK[name]]
    cell_values = np.full(len(cells), UNTAGGED, dtype=np.int64)
    if mesh.cell_tags is not None:
        cell_values[mesh.cell_tags.indices] = mesh.cell_tags.values
    facets = np.empty((0, 2 if tdim == 2 else 3), dtype=np.int64)
    facet_values = np.empty(0, dtype=np.int64)
    if mesh.facet_tags is not None and len(mesh.facet_tags.indices):
        msh.topology.create_connectivity(tdim - 1, tdim)
        msh.topology.create_connectivity(tdim - 1, 0)
        facets = dmesh.entities_to_geometry(msh, tdim - 1, mesh.facet_tags.indices)
        if name == "hexahedron":
            facets = facets[:, [0, 1, 3, 2]]
        facet_values = np.asarray(mesh.facet_tags.values, dtype=np.int64)
    return TaggedArrays(msh.geometry.x[:, :mesh.gdim], name, cells, cell_values, facets, facet_values,
                        dict(mesh.boundaries), dict(mesh.domains))


def names_by_tag(arrays: TaggedArrays, tdim: int) -> dict[tuple[int, int], str]:
    names = {(tdim - 1, v): k for k, v in arrays.boundaries.items()}
    names.update({(tdim, v): k for k, v in arrays.domains.items()})
    return names


def from_arrays(arrays: TaggedArrays | None, comm, where: str) -> Mesh:
    """Collective: ``arrays`` on rank 0 (``None`` elsewhere) -> a distributed Mesh with tags and names. Names
    come from ``arrays.boundaries/domains``; tag values without a name keep their number as the name."""
    comm = comm or _mpi.COMM_WORLD
    gdim = comm.bcast(arrays.points.shape[1] if comm.rank == 0 else None, root=0)
    with (session(where) if comm.rank == 0 else contextlib.nullcontext()) as gmsh:
        if comm.rank == 0:
            tdim = 2 if arrays.cell_name in ("triangle", "quadrilateral") else 3
            add_discrete(gmsh, arrays.points, arrays.cell_name, arrays.cells, arrays.cell_values, arrays.facets,
                         arrays.facet_values, names_by_tag(arrays, tdim))
        return to_mesh(gmsh, comm, gdim, where=where)
