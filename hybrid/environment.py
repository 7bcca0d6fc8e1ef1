"""Machine and version facts recorded in every benchmark and summary file."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device: str = "cpu") -> dict:
    return {"cpu": cpu_name(), "cores": os.cpu_count(), "device": device, "platform": platform.platform()}


def versions() -> dict:
    import dolfinx
    from petsc4py import PETSc

    petsc = ".".join(str(v) for v in PETSc.Sys.getVersion())
    return {"python": sys.version.split()[0], "dolfinx": dolfinx.__version__, "petsc": petsc,
            "torch": _version("torch"), "pyamg": _version("pyamg"), "scipy": _version("scipy"),
            "numpy": _version("numpy"), "hybrid-solvers": _version("hybrid-solvers")}
