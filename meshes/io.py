"""Mesh and field I/O: gmsh ``.msh`` in (physical groups become names), XDMF/VTU out.

Reading goes through dolfinx's own gmsh reader, so physical names survive and the mesh is
distributed over MPI like any dolfinx mesh. Writing uses dolfinx's ``XDMFFile`` (parallel, readable
by ParaView and by :func:`read`) and meshio for ``.vtu`` (serial). See STACK.md gotcha 7 for why
meshio's XDMF is not used: dolfinx cannot read its compressed output and meshio cannot read a
dolfinx XDMF holding tags.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from pathlib import Path
from typing import Mapping

import numpy as np

from . import _mpi
import dolfinx.fem as fem
import dolfinx.io as dio

from .gmsh_model import CELL_TYPES, add_discrete, session, to_mesh
from .mesh import Mesh
from .nodal import as_p1, nodal_values
from .tagged_arrays import MESHIO_CELL, MESHIO_FACET, TaggedArrays, from_arrays, names_by_tag, to_arrays


def _check_msh(gmsh, path: Path) -> int:
    """Merge the gmsh file ``path`` into the current (silent) gmsh model and check it before dolfinx reads it
    collectively; return its geometric dimension: 3 unless every node has z == 0 (then 2).

    ``ValueError`` naming the file for what would otherwise exit the process (meshio calls ``sys.exit``
    on unreadable files), be parsed as a gmsh script, or be read silently as something else: a file that
    is not a ``.msh``, is truncated, holds no mesh or no physical groups, whose cells (dimension 2 or 3)
    are in no physical group (dolfinx would then make a mesh of the boundary lines), or whose cells are of
    a kind this toolkit does not support (curved or second-order cells, prisms, pyramids, mixed kinds).
    """
    with open(path, "rb") as f:
        if f.read(len(b"$MeshFormat")) != b"$MeshFormat":  # else gmsh.merge runs it as a .geo script
            raise ValueError(f"{path}: not a gmsh .msh file (it does not begin with $MeshFormat)")
    try:
        gmsh.merge(str(path))
    except Exception as e:
        raise ValueError(f"{path}: cannot read this gmsh file: {e}") from None
    _, coords, _ = gmsh.model.mesh.getNodes()
    cell_dims = [d for d in range(4) if len(gmsh.model.mesh.getElementTypes(d))]
    groups = {(d, gmsh.model.getPhysicalName(d, t) or str(t)) for d, t in gmsh.model.getPhysicalGroups()}
    if len(coords) == 0 or not cell_dims:
        raise ValueError(f"{path}: holds no mesh (no nodes or elements; a header-only file?)")
    if not groups:
        raise ValueError(f"{path}: has no physical groups; give the cells one (Physical Surface in 2-D, Physical "
                         f"Volume in 3-D) and name the boundaries with physical groups one dimension lower")
    tdim = max(cell_dims)
    if tdim < 2 or tdim not in {d for d, _ in groups}:
        need = "2 or 3" if tdim < 2 else str(tdim)
        listing = ", ".join(f"{name!r} (dimension {d})" for d, name in sorted(groups))
        raise ValueError(f"{path}: no physical group of dimension {need} for the cells; its physical groups are "
                         f"{listing}: add one for the domain (Physical Surface in 2-D, Physical Volume in 3-D)")
    types = [int(t) for t in gmsh.model.mesh.getElementTypes(tdim)]
    unsupported = [t for t in types if t not in CELL_TYPES]
    if unsupported or len(types) > 1:
        kinds = ", ".join(gmsh.model.mesh.getElementProperties(t)[0] for t in types)
        raise ValueError(f"{path}: unsupported cells ({kinds}); meshes here have one kind of first-order cell: "
                         f"{', '.join(name for name, _ in CELL_TYPES.values())} (gmsh: Mesh.ElementOrder = 1, "
                         "no prisms or pyramids, no mixed kinds)")
    z = np.asarray(coords).reshape(-1, 3)[:, 2]
    return 3 if np.abs(z).max() > 0 else 2


def read(path, comm=None, gdim: int | None = None) -> Mesh:
    """Read a mesh with its named boundaries.

    ``.msh`` (gmsh 4.1 or 2.2): physical groups of dimension ``tdim - 1`` become ``boundaries``,
    those of dimension ``tdim`` become ``domains``. ``.xdmf``: a file written by :func:`write`
    (mesh ``"mesh"``, tags ``"facet_tags"``/``"cell_tags"``; names from the ``.names.json`` beside it).

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` naming the file for an unknown
    suffix and for a file that cannot be read or holds no usable mesh (see :func:`_check_msh`); warns
    (:class:`MissingBoundariesWarning`) when a ``.msh`` has no boundary groups.
    """
    path = Path(path)
    comm = comm or _mpi.COMM_WORLD
    if not path.exists():
        raise FileNotFoundError(f"mesh file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".msh":
        return _read_msh(path, comm, gdim)
    if suffix == ".xdmf":
        names = _read_names(path)
        try:
            with dio.XDMFFile(comm, str(path), "r") as f:
                msh = f.read_mesh(name="mesh")
                msh.topology.create_connectivity(msh.topology.dim - 1, msh.topology.dim)
                ft = f.read_meshtags(msh, "facet_tags") if names.get("boundaries") is not None else None
                ct = f.read_meshtags(msh, "cell_tags") if names.get("domains") else None
        except RuntimeError as e:
            raise ValueError(f"{path}: cannot read this XDMF mesh (written by meshes.write?): {e}") from None
        return Mesh(msh, ft, ct, names.get("boundaries") or {}, names.get("domains") or {})
    if suffix == ".vtu":
        return _read_vtu(path, comm)
    raise ValueError(f"cannot read {path}: unknown mesh format {suffix!r} (use .msh, .xdmf or .vtu)")


def _read_vtu(path: Path, comm) -> Mesh:
    """A ``.vtu`` (as :func:`write` makes it: cells, tagged facets, ``tags`` cell data, names beside)."""
    arrays = None
    if comm.rank == 0:
        import meshio

        try:
            data = meshio.read(path)
        except Exception as e:  # noqa: BLE001  (meshio raises many kinds)
            arrays = f"{path}: cannot read this .vtu: {e}"
        else:
            arrays = _vtu_arrays(path, data)
    arrays = comm.bcast(arrays if isinstance(arrays, str) else None, root=0) or arrays
    if isinstance(arrays, str):
        raise ValueError(arrays)
    mesh = from_arrays(arrays, comm, str(path))
    if not mesh.boundaries:
        warn_no_boundaries(path, mesh.tdim)
    return mesh


def _vtu_arrays(path: Path, data) -> TaggedArrays | str:
    by_name = {c: n for n, c in MESHIO_CELL.items()}
    blocks = [(b.type, b.data) for b in data.cells]
    tags = data.cell_data.get("tags")
    dims = {"line": 1, "triangle": 2, "quad": 2, "tetra": 3, "hexahedron": 3}
    top = max((dims.get(t, 0) for t, _ in blocks), default=0)
    kinds = [t for t, _ in blocks if dims.get(t, 0) == top]
    if len(set(kinds)) != 1 or kinds[0] not in by_name:
        return f"{path}: unsupported cells ({', '.join(t for t, _ in blocks)}); expected one kind of first-order cell"
    cell_name = by_name[kinds[0]]
    tdim = 2 if cell_name in ("triangle", "quadrilateral") else 3
    cells, cell_values, facets, facet_values = [], [], [], []
    for k, (kind, conn) in enumerate(blocks):
        values = np.asarray(tags[k], dtype=np.int64) if tags is not None else np.zeros(len(conn), dtype=np.int64)
        if kind == kinds[0]:
            cells.append(conn)
            cell_values.append(values)
        elif kind == MESHIO_FACET[cell_name]:
            facets.append(conn)
            facet_values.append(values)
    names = _read_names(path)
    gdim = 3 if np.abs(data.points[:, 2:]).max(initial=0) > 0 else 2
    cat = lambda parts, width: np.concatenate(parts) if parts else np.empty((0, width) if width else 0, np.int64)  # noqa
    return TaggedArrays(data.points[:, :gdim], cell_name, cat(cells, None), cat(cell_values, 0),
                        cat(facets, tdim), cat(facet_values, 0), names.get("boundaries") or {},
                        names.get("domains") or {})


def _read_msh(path: Path, comm, gdim: int | None) -> Mesh:
    """gmsh file -> distributed Mesh: checked and converted on rank 0 in one silent gmsh session."""
    checked = (None, None)
    with (session(f"meshes.read {path}") if comm.rank == 0 else contextlib.nullcontext()) as gmsh:
        if comm.rank == 0:  # every rank learns the outcome: a rank-0 error must not leave the others waiting
            try:
                checked = (_check_msh(gmsh, path), None)
            except ValueError as e:
                checked = (None, str(e))
        file_gdim, error = comm.bcast(checked, root=0)
        if error:
            raise ValueError(error)
        mesh = to_mesh(gmsh, comm, gdim or file_gdim, where=str(path))
    if not mesh.boundaries:
        warn_no_boundaries(path, mesh.tdim)
    return mesh


def warn_no_boundaries(path, tdim: int) -> None:
    """The warning for a mesh file without boundary groups (problems would get no default condition)."""
    group = "Physical Curve" if tdim == 2 else "Physical Surface"
    warnings.warn(f"{path}: no physical group of dimension {tdim - 1}, so the mesh has no named boundaries and "
                  f"boundary conditions cannot refer to any; add {group} groups in gmsh or name boundaries with "
                  "Mesh.with_boundaries({name: predicate})", MissingBoundariesWarning, stacklevel=4)


class MissingBoundariesWarning(UserWarning):
    """A mesh was read without named boundaries."""


def _names_path(path: Path) -> Path:
    return path.with_suffix(".names.json")


def _read_names(path: Path) -> dict:
    p = _names_path(path)
    if not p.exists():
        return {}
    try:
        return json.loads(p.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{p}: the boundary names beside {path.name} are not valid JSON ({e})") from None


#: file formats :func:`write` produces
WRITE_SUFFIXES = (".xdmf", ".vtu", ".msh")


def check_output_path(path) -> Path:
    """``path`` as a :class:`Path` if :func:`write` can write there: a ``.xdmf``/``.vtu`` name that is not a
    directory, in a folder that exists (or can be created); ``ValueError`` naming the problem otherwise.
    Cheap, so a command checks its ``--out`` before any work."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"cannot write {path}: it is a directory; give a file name ending in .xdmf, .vtu or .msh")
    if path.suffix.lower() not in WRITE_SUFFIXES:
        raise ValueError(f"cannot write {path}: unknown format {path.suffix.lower() or '(no suffix)'!r} "
                         "(use .xdmf, .vtu or .msh)")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"cannot write {path}: {parent} is not a directory")
    return path


def write(path, mesh: Mesh, fields: Mapping[str, fem.Function] | None = None) -> Path:
    """Write ``mesh`` (and its tags) with optional fields (dolfinx Functions) to ``.xdmf`` or ``.vtu``.

    The write goes to a temporary name and is renamed at the end, so an interrupted write never
    leaves a half-written file under ``path``.
    """
    path = check_output_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = dict(fields or {})
    comm = mesh.comm
    suffix = path.suffix.lower()
    for name, u in fields.items():
        if not isinstance(u, fem.Function):
            raise TypeError(f"field {name!r} must be a dolfinx Function, got {type(u).__name__}")
    if suffix == ".xdmf":
        tmp = path.with_name(path.stem + ".tmp.xdmf")
        with dio.XDMFFile(comm, str(tmp), "w") as f:
            mesh.mesh.name = "mesh"
            f.write_mesh(mesh.mesh)
            geo = mesh.mesh.geometry
            if mesh.facet_tags is not None:
                mesh.facet_tags.name = "facet_tags"
                f.write_meshtags(mesh.facet_tags, geo)
            if mesh.cell_tags is not None and mesh.domains:
                mesh.cell_tags.name = "cell_tags"
                f.write_meshtags(mesh.cell_tags, geo)
            for name, u in fields.items():
                v = as_p1(u)
                v.name = name
                f.write_function(v)
        if comm.rank == 0:
            h5_tmp, h5 = tmp.with_suffix(".h5"), path.with_suffix(".h5")
            text = tmp.read_text().replace(h5_tmp.name, h5.name)
            h5_tmp.replace(h5)
            _names_path(path).write_text(json.dumps({"boundaries": dict(mesh.boundaries),
                                                     "domains": dict(mesh.domains)}))
            path.write_text(text)
            tmp.unlink()
        comm.barrier()
        return path
    if suffix == ".vtu":
        import meshio

        if comm.size > 1:
            raise ValueError("writing .vtu is serial; use .xdmf under MPI")
        arrays = to_arrays(mesh)
        blocks, values = [(MESHIO_CELL[arrays.cell_name], arrays.cells)], [arrays.cell_values]
        if len(arrays.facets):  # tagged facets as a second cell block: tags survive a round trip
            blocks.append((MESHIO_FACET[arrays.cell_name], arrays.facets))
            values.append(arrays.facet_values)
        point_data = {name: nodal_values(u) for name, u in fields.items()}
        out = meshio.Mesh(mesh.mesh.geometry.x, blocks, point_data=point_data, cell_data={"tags": values})
        tmp = path.with_name(path.stem + ".tmp.vtu")
        meshio.write(tmp, out)
        tmp.replace(path)
        _names_path(path).write_text(json.dumps({"boundaries": dict(mesh.boundaries), "domains": dict(mesh.domains)}))
        return path
    if suffix == ".msh":
        if fields:
            raise ValueError(f"cannot write fields to {path}: .msh holds the mesh and its tags; write fields to "
                             ".xdmf or .vtu")
        arrays = to_arrays(mesh)
        with session(f"meshes.write {path}") as gmsh:
            add_discrete(gmsh, arrays.points, arrays.cell_name, arrays.cells, arrays.cell_values, arrays.facets,
                         arrays.facet_values, names_by_tag(arrays, mesh.tdim))
            tmp = path.with_name(path.stem + ".tmp.msh")
            gmsh.write(str(tmp))
        tmp.replace(path)
        return path
    raise AssertionError(suffix)  # check_output_path admits WRITE_SUFFIXES only
