"""Native meshes with named boundaries (the bottom layer; imports neither ``solvers`` nor ``hybrid``).

>>> import meshes
>>> m = meshes.unit_square(8)
>>> sorted(m.boundaries)
['bottom', 'left', 'right', 'top']
"""

from . import _mpi  # noqa: F401  (MPI before dolfinx, see _mpi.py)
from .mesh import Mesh
from .generators import unit_square, rectangle, unit_cube
from .domains import l_shape, disk, rectangle_with_holes, box
from .refine import refine
from .grid import GridView
from .transfer import mesh_to_grid, grid_to_mesh
from .io import read, write, MissingBoundariesWarning  # noqa
from .fields_io import read_fields

__all__ = ["Mesh", "unit_square", "rectangle", "unit_cube", "l_shape", "disk", "rectangle_with_holes", "box",
           "refine", "GridView", "mesh_to_grid", "grid_to_mesh", "read", "write", "read_fields", "MissingBoundariesWarning"]
