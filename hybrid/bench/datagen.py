"""``hybrid bench datagen``: samples per second for Darcy data, naive vs toolkit, 1 vs 2 processes.

``naive``: what a user writes first: per sample, a fresh dolfinx ``LinearProblem`` (coefficient
Function, forms, Dirichlet BC, PETSc KSP preonly + MUMPS LU) and a solve. ``toolkit``: what
``hybrid generate`` does (coefficient-linear assembly ``values = B @ a`` on a fixed pattern, MUMPS
Cholesky with the symbolic factorization reused, AMG-CG above n=256, atomic HDF5 shards). Rates are
throughput once running (the naive loop after JIT compilation; the toolkit's generation loop including
HDF5 writing, with 2 processes under ``mpiexec -n 2``); ``wall_s`` adds process start-up.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def naive_rate(n: int, samples: int, seed: int = 0) -> tuple[float, float]:
    """(samples/s, seconds) of the naive loop (forms JIT-compiled beforehand, as in any second run)."""
    import dolfinx.fem as fem
    import dolfinx.fem.petsc as fpetsc
    import ufl

    import meshes
    from solvers.sampling import two_phase

    mesh = meshes.unit_square(n, comm=meshes._mpi.COMM_SELF)

    def one(index):
        V = fem.functionspace(mesh.mesh, ("Lagrange", 1))
        a = meshes.GridView(V).function(two_phase(n, seed, index))
        u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
        facets = np.concatenate([mesh.facets(b) for b in mesh.boundaries])
        bc = fem.dirichletbc(0.0, fem.locate_dofs_topological(V, 1, facets), V)
        problem = fpetsc.LinearProblem(ufl.inner(a * ufl.grad(u), ufl.grad(v)) * ufl.dx, 1.0 * v * ufl.dx, bcs=[bc],
                                       petsc_options_prefix=f"naive{index}_",
                                       petsc_options={"ksp_type": "preonly", "pc_type": "lu",
                                                      "pc_factor_mat_solver_type": "mumps"})
        uh = problem.solve()
        out = uh.x.array.copy()
        problem.solver.destroy()
        problem.A.destroy()
        problem.b.destroy()
        return out

    one(0)  # JIT-compile the forms once
    t = time.perf_counter()
    for i in range(samples):
        one(i)
    dt = time.perf_counter() - t
    return samples / dt, dt


def toolkit_rate(n: int, samples: int, workers: int, folder: Path, seed: int = 0) -> tuple[float, float, float]:
    """(samples/s of the generation loop, its seconds, wall seconds including process start-up)."""
    from solvers.data import generate

    out = folder / f"darcy_{n}_{workers}.h5"
    if out.exists():
        out.unlink()
    shutil.rmtree(out.with_name(out.name + ".parts"), ignore_errors=True)
    t = time.perf_counter()
    s = generate("darcy", samples, n, out, seed=seed, workers=workers, progress=False)
    wall = time.perf_counter() - t
    assert s["generated"] == samples
    out.unlink()
    return s["samples_per_s"], s["seconds"], wall


def run(sizes_samples: list[tuple[int, int, int]], log=print) -> list[dict]:
    """``sizes_samples``: (n, toolkit samples, naive samples) triples."""
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for n, samples, naive_samples in sizes_samples:
            rate, dt = naive_rate(n, naive_samples)
            base = {"problem": "darcy", "n": n}
            records.append({**base, "method": "naive", "processes": 1, "samples": naive_samples,
                            "seconds": dt, "wall_s": dt, "samples_per_s": rate})
            log(f"darcy n={n:4d} naive      1 proc: {rate:8.1f} samples/s")
            for workers in (1, 2):
                r, dt, wall = toolkit_rate(n, samples, workers, folder)
                records.append({**base, "method": "toolkit", "processes": workers, "samples": samples,
                                "seconds": dt, "wall_s": wall, "samples_per_s": r})
                log(f"darcy n={n:4d} toolkit    {workers} proc: {r:8.1f} samples/s")
            naive = records[-3]["samples_per_s"]
            one, two = records[-2]["samples_per_s"], records[-1]["samples_per_s"]
            for r in records[-3:]:
                r["speedup_vs_naive"] = r["samples_per_s"] / naive
            records[-1]["speedup_vs_1proc"] = two / one
    return records


COLUMNS = [("n", "n", "d"), ("method", "method", ""), ("processes", "processes", "d"), ("samples", "samples", "d"),
           ("seconds", "seconds", ".2f"), ("wall s", "wall_s", ".2f"), ("samples/s", "samples_per_s", ".1f"),
           ("vs naive", "speedup_vs_naive", ".2f"), ("vs 1 process", "speedup_vs_1proc", ".2f")]
