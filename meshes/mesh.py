"""``Mesh``: an immutable value holding a dolfinx mesh, its tags and the names of its boundaries."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Callable, Mapping

import numpy as np

from . import _mpi  # noqa: F401
import dolfinx
import dolfinx.mesh as dmesh
import dolfinx.cpp.mesh as _cpp_mesh
import ufl

Predicate = Callable[[np.ndarray], np.ndarray]


def _frozen(d: Mapping[str, int] | None) -> Mapping[str, int]:
    return MappingProxyType({str(k): int(v) for k, v in (d or {}).items()})


@dataclass(frozen=True, eq=False)
class Mesh:
    """A dolfinx mesh with cell/facet tags and named boundaries.

    Parameters
    ----------
    mesh : dolfinx.mesh.Mesh
        The native mesh; it stays the source of truth (and may be distributed over MPI).
    facet_tags, cell_tags : dolfinx.mesh.MeshTags or None
        Facet markers (boundary pieces) and cell markers (subdomains).
    boundaries : mapping name -> facet tag value
        Boundary conditions refer to these names, e.g. ``Dirichlet("left", 0.0)``.
    domains : mapping name -> cell tag value
        Named subdomains (gmsh physical groups of cells), possibly empty.

    Examples
    --------
    >>> import meshes, numpy as np
    >>> m = meshes.unit_square(4).with_boundaries({"inlet": lambda x: np.isclose(x[0], 0) & (x[1] < 0.5)})
    >>> "inlet" in m.boundaries and "left" in m.boundaries
    True
    """

    mesh: dolfinx.mesh.Mesh
    facet_tags: dolfinx.mesh.MeshTags | None = None
    cell_tags: dolfinx.mesh.MeshTags | None = None
    boundaries: Mapping[str, int] = field(default_factory=dict)
    domains: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "boundaries", _frozen(self.boundaries))
        object.__setattr__(self, "domains", _frozen(self.domains))
        if self.boundaries and self.facet_tags is None:
            raise ValueError("named boundaries need facet_tags")

    # ---- basic facts -------------------------------------------------------------------------
    @property
    def comm(self):
        return self.mesh.comm

    @property
    def tdim(self) -> int:
        return self.mesh.topology.dim

    @property
    def gdim(self) -> int:
        return self.mesh.geometry.dim

    @property
    def num_cells(self) -> int:
        """Global number of cells."""
        return self.mesh.topology.index_map(self.tdim).size_global

    @property
    def num_vertices(self) -> int:
        """Global number of vertices."""
        return self.mesh.topology.index_map(0).size_global

    def hmax(self) -> float:
        """Largest cell diameter (global)."""
        ncells = self.mesh.topology.index_map(self.tdim).size_local
        h = _cpp_mesh.h(self.mesh._cpp_object, self.tdim, np.arange(ncells, dtype=np.int32))
        local = float(h.max()) if h.size else 0.0
        return self.comm.allreduce(local, op=_mpi.MPI.MAX)

    def __repr__(self) -> str:
        return (f"Mesh({self.mesh.topology.cell_name()}, cells={self.num_cells}, "
                f"vertices={self.num_vertices}, boundaries={dict(self.boundaries)})")

    # ---- boundaries --------------------------------------------------------------------------
    def grid_view(self):
        """This mesh's :class:`meshes.GridView` (P1 dofs <-> an ``(ny+1, nx+1)`` array), built once and
        cached: coefficients given as grid arrays, Helmholtz's geometric multigrid and the learned
        preconditioners all need it, and each construction sorts every node. ``ValueError`` when the mesh
        is not a structured 2D grid."""
        view = self.__dict__.get("_grid_view")
        if view is None:
            from .grid import GridView

            view = GridView(self)
            object.__setattr__(self, "_grid_view", view)
        return view

    def tag(self, name: str) -> int:
        """The facet tag value of boundary ``name``; unknown names raise ``ValueError``."""
        try:
            return self.boundaries[name]
        except KeyError:
            valid = ", ".join(sorted(self.boundaries)) or "(none)"
            raise ValueError(f"unknown boundary name {name!r}; this mesh has: {valid}") from None

    def facets(self, name: str) -> np.ndarray:
        """Local indices of the facets of boundary ``name``."""
        tag = self.tag(name)
        return self.facet_tags.find(tag)

    @property
    def ds(self) -> ufl.Measure:
        """Boundary measure with the facet tags attached: ``mesh.ds(mesh.tag("top"))``."""
        return ufl.Measure("ds", domain=self.mesh, subdomain_data=self.facet_tags)

    @property
    def dx(self) -> ufl.Measure:
        return ufl.Measure("dx", domain=self.mesh, subdomain_data=self.cell_tags)

    def with_boundaries(self, predicates: Mapping[str, Predicate]) -> "Mesh":
        """A copy with new named boundaries located geometrically.

        Each predicate takes coordinates ``x`` of shape ``(3, npoints)`` and returns a boolean
        array (the dolfinx ``locate_entities_boundary`` convention); a facet is selected when all its
        vertices satisfy it. A facet carries one tag: a new name takes its facets from the name that
        held them before, and a name left with no facet anywhere is dropped.
        """
        fdim = self.tdim - 1
        topo = self.mesh.topology
        topo.create_connectivity(fdim, self.tdim)
        nfacets = topo.index_map(fdim).size_local + topo.index_map(fdim).num_ghosts
        values = np.full(nfacets, -1, dtype=np.int32)
        if self.facet_tags is not None:
            values[self.facet_tags.indices] = self.facet_tags.values
        names = dict(self.boundaries)
        next_tag = max([0, *names.values(), *(int(v) for v in np.unique(values) if v >= 0)]) + 1
        for name, pred in predicates.items():
            if not callable(pred):
                raise TypeError(f"boundary {name!r}: predicate must be callable, got {type(pred).__name__}")
            facets = dmesh.locate_entities_boundary(self.mesh, fdim, pred)
            nglobal = self.comm.allreduce(len(facets))
            if nglobal == 0:
                raise ValueError(f"boundary {name!r}: the predicate selects no boundary facet")
            tag = names.get(name, next_tag)
            if tag == next_tag:
                next_tag += 1
            values[facets] = tag
            names[name] = tag
        present = set(int(v) for v in values if v >= 0)
        present = set().union(*self.comm.allgather(present))
        names = {k: v for k, v in names.items() if v in present}
        idx = np.flatnonzero(values >= 0).astype(np.int32)
        ft = dmesh.meshtags(self.mesh, fdim, idx, values[idx])
        ft.name = "facet_tags"
        return Mesh(self.mesh, ft, self.cell_tags, names, self.domains)
