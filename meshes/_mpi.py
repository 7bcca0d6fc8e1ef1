"""Load MPI before dolfinx/petsc4py.

With the ``dolfinx-solver-real`` wheel, ``import dolfinx`` (or ``petsc4py``) on its own fails with
``ImportError: libmpi.so.12``: the MPI library is put on the loader path by ``dolfinx_solver`` /
``mpi4py``. Every package of this project imports this module first, so the order is handled once.
"""

try:  # the wheel's helper module sets up the bundled MPICH
    import dolfinx_solver  # noqa: F401
except ImportError:  # a source build of dolfinx: mpi4py alone is enough
    pass
from mpi4py import MPI  # noqa: E402

COMM_WORLD = MPI.COMM_WORLD
COMM_SELF = MPI.COMM_SELF
