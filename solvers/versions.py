"""Versions of the stack, recorded in datasets, benchmark files and summaries (no torch import)."""

from __future__ import annotations

import sys
from importlib import metadata


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def versions() -> dict:
    import dolfinx

    from meshes import _mpi  # noqa: F401  (MPI before petsc4py)
    from petsc4py import PETSc

    out = {"python": sys.version.split()[0], "dolfinx": dolfinx.__version__,
           "petsc": ".".join(str(v) for v in PETSc.Sys.getVersion())}
    for dist in ("torch", "pyamg", "scipy", "numpy", "h5py", "hybrid-solvers"):
        out[dist] = _version(dist)
    return out
