"""Load MPI before dolfinx/petsc4py whatever the user imports first (installed by ``scripts/install.sh``).

Why: the ``dolfinx-solver-real`` wheel's compiled modules (``dolfinx/cpp.abi3.so``, petsc4py) need
``libmpi.so.12``, which lives in the environment's ``lib/`` (the PyPI ``mpich`` wheel), outside their RPATH
(``dolfinx_solver/lib``, ``basix/lib``). It is found only after ``mpi4py.MPI`` has dlopened it, which
``import dolfinx_solver`` does (and which ``meshes``, ``solvers`` and ``hybrid`` do on import). A script
that starts with ``import dolfinx`` therefore failed with ``ImportError: libmpi.so.12``.

How: ``hybrid_solvers_mpi_first.pth`` in site-packages imports this module at interpreter start; it only
puts a finder on ``sys.meta_path`` (no MPI is loaded at start, so ``python`` and ``hybrid --help`` stay
fast). On the first import of one of :data:`TRIGGERS` the finder removes itself, imports
``dolfinx_solver`` (mpi4py first, the wheel's own guards) and lets the normal import go on.
"""

import sys

#: top-level packages whose compiled modules link libmpi
TRIGGERS = frozenset({"dolfinx", "petsc4py", "slepc4py", "adios4dolfinx"})


class MPIFirst:
    """A meta-path finder that never finds anything: it imports ``dolfinx_solver`` before a trigger."""

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in TRIGGERS:
            uninstall()
            try:
                import dolfinx_solver  # noqa: F401  (imports mpi4py.MPI, which loads libmpi.so.12)
            except ImportError:  # a source build of dolfinx finds its MPI on its own
                pass
        return None


def install() -> None:
    if not any(isinstance(f, MPIFirst) for f in sys.meta_path):
        sys.meta_path.insert(0, MPIFirst())


def uninstall() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, MPIFirst)]


if "mpi4py.MPI" not in sys.modules:
    install()
