"""Machine and version facts recorded in every benchmark and summary file."""

from __future__ import annotations

import os
import platform


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
    try:
        from solvers.versions import versions as stack_versions

        return stack_versions()
    except ImportError:  # a machine without DOLFINx/PETSc (the GPU benchmark scripts): what is there
        import sys
        from importlib import metadata

        out = {"python": sys.version.split()[0], "dolfinx": None, "petsc": None}
        for dist in ("torch", "scipy", "numpy", "h5py"):
            try:
                out[dist] = metadata.version(dist)
            except metadata.PackageNotFoundError:
                out[dist] = None
        return out
