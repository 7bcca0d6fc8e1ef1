"""Unstructured domains meshed by gmsh (headless, silent) with named boundaries: ``l_shape``, ``disk``,
``rectangle_with_holes``, ``box``.

The geometry and its mesh are made on rank 0; dolfinx distributes the mesh over the communicator. Boundary
pieces are gmsh physical groups, so their names survive a write to ``.msh`` and a read back. ``h`` is the
target edge length (gmsh's ``Mesh.MeshSizeMax``; the longest edge may exceed it by some 30%); curved boundaries are polygons with vertices on the curve.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Sequence

import numpy as np

from . import _mpi
from .gmsh_model import session, to_mesh
from .mesh import Mesh

#: cell group of every generated domain
DOMAIN_TAG = 10
_SIDES = ("left", "right", "bottom", "top", "back", "front")  # tags 1..6, as unit_square/unit_cube


def _check_h(h, extent: float) -> float:
    h = float(h)
    if not np.isfinite(h) or h <= 0:
        raise ValueError(f"mesh size h must be a positive number, got {h!r}")
    if extent / h > 2000:
        raise ValueError(f"mesh size h={h} is too small for a domain of size {extent} (more than 2000 cells "
                         "per side); refine() a coarser mesh instead")
    return h


def _generate(name: str, h: float, tdim: int, geometry: Callable, comm) -> Mesh:
    """Build ``geometry(gmsh)`` (it adds entities and physical groups) on rank 0, mesh it, distribute it."""
    comm = comm or _mpi.COMM_WORLD
    with (session(name) if comm.rank == 0 else contextlib.nullcontext()) as gmsh:
        error = None
        if comm.rank == 0:
            try:
                geometry(gmsh)
                gmsh.option.setNumber("Mesh.MeshSizeMax", h)
                gmsh.option.setNumber("Mesh.MeshSizeMin", 0.0)
                gmsh.model.mesh.generate(tdim)
            except Exception as e:  # noqa: BLE001  (gmsh raises plain Exceptions)
                error = f"{name}: gmsh failed: {e}"
        error = comm.bcast(error, root=0)
        if error:
            raise ValueError(error)
        return to_mesh(gmsh, comm, gdim=tdim, where=name)


def _group(gmsh, dim: int, entities: Sequence[int], tag: int, name: str) -> None:
    if entities:
        gmsh.model.addPhysicalGroup(dim, list(entities), tag, name=name)


def _box_side(gmsh, dim: int, tag: int, p0, p1) -> str | None:
    """Name of the axis-aligned side of ``[p0, p1]`` that entity ``(dim, tag)`` lies on, if any."""
    lo, hi = np.array(gmsh.model.getBoundingBox(dim, tag)).reshape(2, 3)[:, :len(p0)]
    tol = 1e-6 * max(1.0, float(np.max(np.abs(np.r_[p0, p1]))))  # OCC pads bounding boxes by ~1e-7
    for d in range(len(p0)):
        if hi[d] - lo[d] < tol:
            if abs(lo[d] - p0[d]) < tol:
                return _SIDES[2 * d]
            if abs(lo[d] - p1[d]) < tol:
                return _SIDES[2 * d + 1]
    return None


def l_shape(h: float = 0.1, *, comm=None) -> Mesh:
    """The L-shaped domain ``(-1, 1)^2`` without ``[0, 1) x (-1, 0]`` (area 3), re-entrant corner at the origin.

    Boundaries: ``notch`` (tag 2, the two edges meeting at the re-entrant corner, length 2) and ``outer``
    (tag 1, the other four edges, length 6); cell group ``domain`` (tag 10).

    >>> m = l_shape(0.5); sorted(m.boundaries)
    ['notch', 'outer']
    """
    h = _check_h(h, 2.0)

    def geometry(gmsh):
        geo = gmsh.model.geo
        xy = [(-1, -1), (0, -1), (0, 0), (1, 0), (1, 1), (-1, 1)]
        pts = [geo.addPoint(x, y, 0.0, h) for x, y in xy]
        lines = [geo.addLine(pts[i], pts[(i + 1) % 6]) for i in range(6)]
        surface = geo.addPlaneSurface([geo.addCurveLoop(lines)])
        geo.synchronize()
        _group(gmsh, 1, [lines[0], lines[3], lines[4], lines[5]], 1, "outer")
        _group(gmsh, 1, [lines[1], lines[2]], 2, "notch")
        _group(gmsh, 2, [surface], DOMAIN_TAG, "domain")

    return _generate("l_shape", h, 2, geometry, comm)


def disk(h: float = 0.1, radius: float = 1.0, center: Sequence[float] = (0.0, 0.0), *, comm=None) -> Mesh:
    """A disk with boundary ``circle`` (tag 1) and cell group ``domain`` (tag 10).

    >>> m = disk(0.5); sorted(m.boundaries)
    ['circle']
    """
    radius = float(radius)
    if not radius > 0:
        raise ValueError(f"radius must be positive, got {radius!r}")
    h = _check_h(h, 2 * radius)

    def geometry(gmsh):
        surface = gmsh.model.occ.addDisk(float(center[0]), float(center[1]), 0.0, radius, radius)
        gmsh.model.occ.synchronize()
        _group(gmsh, 1, [t for _, t in gmsh.model.getBoundary([(2, surface)], oriented=False)], 1, "circle")
        _group(gmsh, 2, [surface], DOMAIN_TAG, "domain")

    return _generate("disk", h, 2, geometry, comm)


def rectangle_with_holes(h: float = 0.1, p0: Sequence[float] = (0.0, 0.0), p1: Sequence[float] = (1.0, 1.0),
                         holes: Sequence[Sequence[float]] = ((0.5, 0.5, 0.2),), *, comm=None) -> Mesh:
    """A plate ``[p0, p1]`` with circular holes ``(cx, cy, radius)``.

    Boundaries ``left``, ``right``, ``bottom``, ``top`` (tags 1-4) and ``holes`` (tag 5, all hole
    perimeters); cell group ``domain`` (tag 10). Holes must lie inside the plate and not touch each other.

    >>> m = rectangle_with_holes(0.25); sorted(m.boundaries)
    ['bottom', 'holes', 'left', 'right', 'top']
    """
    p0, p1 = [float(v) for v in p0], [float(v) for v in p1]
    if len(p0) != 2 or len(p1) != 2 or not (p1[0] > p0[0] and p1[1] > p0[1]):
        raise ValueError(f"plate corners must be 2-D with p1 > p0, got p0={p0}, p1={p1}")
    holes = [tuple(float(v) for v in hole) for hole in holes]
    for i, hole in enumerate(holes):
        if len(hole) != 3 or not hole[2] > 0:
            raise ValueError(f"hole {i}: expected (cx, cy, radius) with radius > 0, got {hole}")
        cx, cy, r = hole
        if not (p0[0] < cx - r and cx + r < p1[0] and p0[1] < cy - r and cy + r < p1[1]):
            raise ValueError(f"hole {i} {hole} does not lie inside the plate {p0}-{p1}")
        for j, (ox, oy, orad) in enumerate(holes[:i]):
            if np.hypot(cx - ox, cy - oy) <= r + orad:
                raise ValueError(f"holes {j} and {i} overlap or touch")
    h = _check_h(h, max(p1[0] - p0[0], p1[1] - p0[1]))

    def geometry(gmsh):
        occ = gmsh.model.occ
        plate = occ.addRectangle(p0[0], p0[1], 0.0, p1[0] - p0[0], p1[1] - p0[1])
        disks = [(2, occ.addDisk(cx, cy, 0.0, r, r)) for cx, cy, r in holes]
        if disks:
            occ.cut([(2, plate)], disks)
        occ.synchronize()
        sides = {name: [] for name in _SIDES[:4]}
        perimeters = []
        for _, tag in gmsh.model.getEntities(1):
            side = _box_side(gmsh, 1, tag, p0, p1)
            (sides[side] if side else perimeters).append(tag)
        for i, name in enumerate(_SIDES[:4]):
            _group(gmsh, 1, sides[name], i + 1, name)
        _group(gmsh, 1, perimeters, 5, "holes")
        _group(gmsh, 2, [t for _, t in gmsh.model.getEntities(2)], DOMAIN_TAG, "domain")

    return _generate("rectangle_with_holes", h, 2, geometry, comm)


def box(h: float = 0.25, p0: Sequence[float] = (0.0, 0.0, 0.0), p1: Sequence[float] = (1.0, 1.0, 1.0), *,
        comm=None) -> Mesh:
    """A box ``[p0, p1]`` of tetrahedra with boundaries ``left/right`` (x), ``bottom/top`` (y),
    ``back/front`` (z) (tags 1-6, as :func:`meshes.unit_cube`) and cell group ``domain`` (tag 10).

    >>> m = box(0.5); sorted(m.boundaries)
    ['back', 'bottom', 'front', 'left', 'right', 'top']
    """
    p0, p1 = [float(v) for v in p0], [float(v) for v in p1]
    if len(p0) != 3 or len(p1) != 3 or not all(b > a for a, b in zip(p0, p1)):
        raise ValueError(f"box corners must be 3-D with p1 > p0, got p0={p0}, p1={p1}")
    h = _check_h(h, max(b - a for a, b in zip(p0, p1)) * 4)  # a 3-D mesh grows as (size/h)^3

    def geometry(gmsh):
        volume = gmsh.model.occ.addBox(*p0, *(b - a for a, b in zip(p0, p1)))
        gmsh.model.occ.synchronize()
        faces = {name: [] for name in _SIDES}
        for _, tag in gmsh.model.getEntities(2):
            faces[_box_side(gmsh, 2, tag, p0, p1)].append(tag)
        for i, name in enumerate(_SIDES):
            _group(gmsh, 2, faces[name], i + 1, name)
        _group(gmsh, 3, [volume], DOMAIN_TAG, "domain")

    return _generate("box", h, 3, geometry, comm)
