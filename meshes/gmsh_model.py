"""One quiet gmsh session and the step from a gmsh model to a :class:`Mesh` (shared by the domain generators,
``.msh`` reading and writing, and ``.vtu`` reading).

gmsh prints ``Info : ...`` lines unless told not to *after* ``initialize`` (``gmsh.initialize(["-v", "0"])``
does not do it: the first list entry is taken as the program name). :func:`session` silences it and leaves
an already running gmsh (a user's own model) as it found it. The model is built on rank 0 only and
dolfinx distributes the mesh (``dolfinx.io.gmsh.model_to_mesh``), as ``read_from_msh`` does, but without
that function's unsilenced ``gmsh.initialize()``.
"""

from __future__ import annotations

import contextlib

import numpy as np

from . import _mpi
from .mesh import Mesh

#: gmsh element type -> (dolfinx cell name, topological dimension) for the cells this toolkit supports
CELL_TYPES = {2: ("triangle", 2), 3: ("quadrilateral", 2), 4: ("tetrahedron", 3), 5: ("hexahedron", 3)}
#: gmsh element types of the facets of those cells, by dolfinx cell name
FACET_TYPES = {"triangle": 1, "quadrilateral": 1, "tetrahedron": 2, "hexahedron": 3}
GMSH_CELL = {name: t for t, (name, _) in CELL_TYPES.items()}


def gmsh_module():
    try:
        import gmsh
    except ImportError as e:  # pragma: no cover - gmsh is the `mesh` extra, installed by scripts/install.sh
        raise ImportError(f"gmsh is needed here ({e}); install the project's `mesh` extra: pip install gmsh") from None
    return gmsh


@contextlib.contextmanager
def session(name: str):
    """A fresh, silent gmsh model named ``name`` (gmsh initialized here if needed and finalized after)."""
    gmsh = gmsh_module()
    owner = not gmsh.isInitialized()
    if owner:
        gmsh.initialize(readConfigFiles=False)
    terminal = gmsh.option.getNumber("General.Terminal")
    verbosity = gmsh.option.getNumber("General.Verbosity")
    gmsh.option.setNumber("General.Terminal", 0)
    gmsh.option.setNumber("General.Verbosity", 0)
    previous = None if owner else gmsh.model.getCurrent()
    gmsh.model.add(name)
    try:
        yield gmsh
    finally:
        if owner:
            gmsh.finalize()
        else:
            gmsh.model.remove()
            if previous:
                gmsh.model.setCurrent(previous)
            gmsh.option.setNumber("General.Terminal", terminal)
            gmsh.option.setNumber("General.Verbosity", verbosity)


def to_mesh(gmsh, comm, gdim: int, rank: int = 0, where: str = "gmsh model") -> Mesh:
    """The current gmsh model (meaningful on ``rank`` only) as a distributed :class:`Mesh`: physical groups
    of dimension ``tdim - 1`` become ``boundaries``, those of dimension ``tdim`` become ``domains``.
    Collective: every rank of ``comm`` calls it."""
    from dolfinx.io import gmsh as dgmsh

    try:
        model = gmsh.model if gmsh is not None and comm.rank == rank else None
        data = dgmsh.model_to_mesh(model, comm, rank, gdim=gdim)
    except (RuntimeError, ValueError) as e:
        raise ValueError(f"{where}: dolfinx cannot make a mesh of it: {e}") from None
    tdim = data.mesh.topology.dim
    boundaries, domains = {}, {}
    for name, (dim, tag) in data.physical_groups.items():
        if not name and dim == tdim:  # an unnamed cell group (e.g. the untagged cells of a written mesh)
            continue
        name = name or str(tag)
        if dim == tdim - 1:
            boundaries[name] = int(tag)
        elif dim == tdim:
            domains[name] = int(tag)
    ft = data.facet_tags
    if ft is not None:
        ft.name = "facet_tags"
    if data.cell_tags is not None:
        data.cell_tags.name = "cell_tags"
    if boundaries and ft is None:
        raise ValueError(f"{where}: physical boundary groups {sorted(boundaries)} have no facet tags")
    return Mesh(data.mesh, ft, data.cell_tags, boundaries, domains)


def add_discrete(gmsh, points: np.ndarray, cell_name: str, cells: np.ndarray, cell_values: np.ndarray,
                 facets: np.ndarray, facet_values: np.ndarray, names: dict[tuple[int, int], str]) -> None:
    """Put a mesh given by arrays into the current gmsh model as discrete entities, one entity and one
    physical group per tag value (node ``i`` gets gmsh tag ``i + 1``, so dolfinx's input indices are the
    row numbers of ``points``). ``names`` maps ``(dimension, tag)`` to a physical name."""
    tdim = CELL_TYPES[GMSH_CELL[cell_name]][1]
    points = np.asarray(points, dtype=np.float64)
    xyz = np.zeros((len(points), 3))
    xyz[:, :points.shape[1]] = points
    node_entity = gmsh.model.addDiscreteEntity(0)
    gmsh.model.mesh.addNodes(0, node_entity, np.arange(1, len(points) + 1), xyz.ravel())
    next_element = 1
    for dim, etype, conn, values in ((tdim, GMSH_CELL[cell_name], cells, cell_values),
                                     (tdim - 1, FACET_TYPES[cell_name], facets, facet_values)):
        conn, values = np.asarray(conn, dtype=np.int64), np.asarray(values, dtype=np.int64)
        for value in np.unique(values):
            rows = conn[values == value]
            entity = gmsh.model.addDiscreteEntity(dim)
            gmsh.model.mesh.addElementsByType(entity, etype, np.arange(next_element, next_element + len(rows)),
                                              (rows + 1).ravel())
            next_element += len(rows)
            gmsh.model.addPhysicalGroup(dim, [entity], int(value), name=names.get((dim, int(value)), ""))
