"""PDE problems on native meshes and the linear-algebra layer (no torch here).

>>> import meshes, solvers
>>> sys = solvers.Poisson(meshes.unit_square(8), f=1.0).assemble()
>>> sys.A.shape
(81, 81)
"""

from meshes import _mpi  # noqa: F401  (MPI before dolfinx)
from .bcs import Dirichlet, Neumann, Robin
from .system import LinearSystem
from .problems import Poisson, Darcy, ConvectionDiffusion, Helmholtz, Elasticity, Heat, DarcyFamily

__all__ = [
    "Dirichlet", "Neumann", "Robin", "LinearSystem",
    "Poisson", "Darcy", "ConvectionDiffusion", "Helmholtz", "Elasticity", "Heat", "DarcyFamily",
]
