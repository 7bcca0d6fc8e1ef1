"""Structured mesh generators with named boundaries (thin wrappers over ``dolfinx.mesh.create_*``)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from . import _mpi
import dolfinx.mesh as dmesh

from .mesh import Mesh

_CELLS = {
    "triangle": dmesh.CellType.triangle,
    "quadrilateral": dmesh.CellType.quadrilateral,
    "tetrahedron": dmesh.CellType.tetrahedron,
    "hexahedron": dmesh.CellType.hexahedron,
}
_DIAGONALS = {
    "right": dmesh.DiagonalType.right,
    "left": dmesh.DiagonalType.left,
    "crossed": dmesh.DiagonalType.crossed,
}


def _cell(cell_type: str, allowed: Sequence[str]) -> dmesh.CellType:
    if cell_type not in allowed:
        raise ValueError(f"unknown cell_type {cell_type!r}; use one of {', '.join(allowed)}")
    return _CELLS[cell_type]


def _check_n(**ns):
    for name, n in ns.items():
        if int(n) != n or n < 1:
            raise ValueError(f"{name} must be a positive integer, got {n!r}")


def _box_sides(p0: Sequence[float], p1: Sequence[float]) -> dict:
    names = [("left", "right"), ("bottom", "top"), ("back", "front")]
    sides = {}
    for d in range(len(p0)):
        lo, hi = names[d]
        sides[lo] = (lambda x, d=d, v=p0[d]: np.isclose(x[d], v))
        sides[hi] = (lambda x, d=d, v=p1[d]: np.isclose(x[d], v))
    return sides


def rectangle(p0: Sequence[float] = (0.0, 0.0), p1: Sequence[float] = (1.0, 1.0),
              nx: int = 8, ny: int | None = None, *, cell_type: str = "triangle",
              diagonal: str = "right", comm=None) -> Mesh:
    """Structured rectangle ``[p0, p1]`` with ``nx x ny`` cells (triangles split along ``diagonal``).

    Boundaries ``left`` (x = p0[0]), ``right``, ``bottom`` (y = p0[1]), ``top`` carry tags 1-4.

    >>> rectangle((0, 0), (2, 1), 4, 2).num_cells
    16
    """
    ny = nx if ny is None else ny
    _check_n(nx=nx, ny=ny)
    p0, p1 = [float(v) for v in p0], [float(v) for v in p1]
    if not (p1[0] > p0[0] and p1[1] > p0[1]):
        raise ValueError(f"rectangle corners must satisfy p1 > p0, got p0={p0}, p1={p1}")
    if diagonal not in _DIAGONALS:
        raise ValueError(f"unknown diagonal {diagonal!r}; use one of {', '.join(_DIAGONALS)}")
    msh = dmesh.create_rectangle(comm or _mpi.COMM_WORLD, [np.array(p0), np.array(p1)], [int(nx), int(ny)],
                                 cell_type=_cell(cell_type, ("triangle", "quadrilateral")),
                                 diagonal=_DIAGONALS[diagonal])
    return Mesh(msh).with_boundaries(_box_sides(p0, p1))


def unit_square(n: int, *, cell_type: str = "triangle", diagonal: str = "right", comm=None) -> Mesh:
    """Unit square with ``n x n`` cells and boundaries ``left/right/bottom/top``.

    >>> m = unit_square(4); (m.num_cells, m.num_vertices)
    (32, 25)
    """
    return rectangle((0.0, 0.0), (1.0, 1.0), n, n, cell_type=cell_type, diagonal=diagonal, comm=comm)


def unit_cube(n: int, *, cell_type: str = "tetrahedron", comm=None) -> Mesh:
    """Unit cube with ``n^3`` hexahedra (split into tetrahedra by default).

    Boundaries ``left/right`` (x), ``bottom/top`` (y), ``back/front`` (z) carry tags 1-6.
    """
    _check_n(n=n)
    msh = dmesh.create_unit_cube(comm or _mpi.COMM_WORLD, int(n), int(n), int(n),
                                 cell_type=_cell(cell_type, ("tetrahedron", "hexahedron")))
    return Mesh(msh).with_boundaries(_box_sides((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)))
