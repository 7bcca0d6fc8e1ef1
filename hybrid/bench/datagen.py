"""``hybrid bench datagen``: samples per second for Darcy data: naive, a competent DOLFINx loop, the toolkit.

``naive``: what a user writes first: per sample, a fresh dolfinx ``LinearProblem`` (coefficient
Function, forms, Dirichlet BC, PETSc KSP preonly + MUMPS LU) and a solve. ``dolfinx-reuse``: what a
competent DOLFINx user writes: space, forms, boundary condition, right-hand side and KSP built once; per
sample the coefficient Function is updated in place, the matrix reassembled into the same PETSc Mat, and
MUMPS Cholesky refactorized numerically on the unchanged pattern (PETSc keeps the symbolic factorization).
``toolkit``: what
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


def reuse_solver(n: int, seed: int = 0):
    """The competent-user loop's per-sample function ``one(index) -> nodal solution (dof order)`` and a
    dict of seconds spent per phase (``update``: coefficient into the Function, ``assemble``: matrix
    reassembly in place, ``factor_solve``: numeric Cholesky refactorization and the solve)."""
    import dolfinx.fem as fem
    import dolfinx.fem.petsc as fpetsc
    import ufl
    from petsc4py import PETSc

    import meshes
    from solvers.sampling import two_phase

    comm = meshes._mpi.COMM_SELF
    mesh = meshes.unit_square(n, comm=comm)
    V = fem.functionspace(mesh.mesh, ("Lagrange", 1))
    view = meshes.GridView(V)
    coeff = fem.Function(V)
    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    a_form = fem.form(ufl.inner(coeff * ufl.grad(u), ufl.grad(v)) * ufl.dx)
    L_form = fem.form(fem.Constant(mesh.mesh, PETSc.ScalarType(1.0)) * v * ufl.dx)
    facets = np.concatenate([mesh.facets(b) for b in mesh.boundaries])
    bc = fem.dirichletbc(0.0, fem.locate_dofs_topological(V, 1, facets), V)
    A = fpetsc.create_matrix(a_form)
    A.setOption(PETSc.Mat.Option.SPD, True)
    b = fpetsc.assemble_vector(L_form)  # zero Dirichlet data: no lifting, the right-hand side never changes
    fpetsc.set_bc(b, [bc])
    x = b.duplicate()
    ksp = PETSc.KSP().create(comm)
    ksp.setType("preonly")
    pc = ksp.getPC()
    pc.setType("cholesky")
    pc.setFactorSolverType("mumps")
    phases = {"update": 0.0, "assemble": 0.0, "factor_solve": 0.0}

    def one(index):
        t0 = time.perf_counter()
        coeff.x.array[:] = view.to_dofs(two_phase(n, seed, index))
        t1 = time.perf_counter()
        A.zeroEntries()
        fpetsc.assemble_matrix(A, a_form, bcs=[bc])
        A.assemble()
        t2 = time.perf_counter()
        ksp.setOperators(A)  # same nonzero pattern: numeric refactorization only
        ksp.solve(b, x)
        out = x.array.copy()
        t3 = time.perf_counter()
        phases["update"] += t1 - t0
        phases["assemble"] += t2 - t1
        phases["factor_solve"] += t3 - t2
        return out

    one.view = view
    return one, phases


def reuse_rate(n: int, samples: int, seed: int = 0) -> tuple[float, float, float, dict]:
    """(samples/s, seconds, seconds, per-phase seconds) of the competent-user loop; the first sample (symbolic
    factorization, JIT compilation) runs before the clock starts."""
    one, phases = reuse_solver(n, seed)
    one(0)
    for k in phases:
        phases[k] = 0.0
    t = time.perf_counter()
    for i in range(samples):
        one(i)
    dt = time.perf_counter() - t
    return samples / dt, dt, dt, dict(phases)


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


def _repeat(fn, repeats: int) -> dict:
    """``fn() -> (samples/s, seconds[, wall])`` ``repeats`` times: the median run's fields and the spread."""
    runs = sorted((fn() for _ in range(max(1, repeats))), key=lambda r: r[0])
    mid = runs[len(runs) // 2]
    out = {"samples_per_s": mid[0], "seconds": mid[1], "wall_s": mid[2] if len(mid) > 2 else mid[1],
           "samples_per_s_min": runs[0][0], "samples_per_s_max": runs[-1][0], "repeats": len(runs)}
    if len(mid) > 3:  # seconds per sample in each phase of the median run
        out.update({f"{k}_ms_per_sample": 1e3 * v / (mid[0] * mid[1]) for k, v in mid[3].items()})
    return out


def run(sizes_samples: list[tuple[int, int, int]], repeats: int = 3, log=print) -> list[dict]:
    """``sizes_samples``: (n, toolkit samples, baseline samples) triples; every rate the median of
    ``repeats`` runs, with min and max."""
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for n, samples, naive_samples in sizes_samples:
            base = {"problem": "darcy", "n": n}
            rows = []
            for method, fn, count in (("naive", lambda: naive_rate(n, naive_samples), naive_samples),
                                      ("dolfinx-reuse", lambda: reuse_rate(n, samples), samples)):
                rows.append({**base, "method": method, "processes": 1, "samples": count, **_repeat(fn, repeats)})
                log(f"darcy n={n:4d} {method:13s} 1 proc: {rows[-1]['samples_per_s']:8.1f} samples/s "
                    f"[{rows[-1]['samples_per_s_min']:.1f}, {rows[-1]['samples_per_s_max']:.1f}]")
            for workers in (1, 2):
                rows.append({**base, "method": "toolkit", "processes": workers, "samples": samples,
                             **_repeat(lambda: toolkit_rate(n, samples, workers, folder), repeats)})
                log(f"darcy n={n:4d} toolkit       {workers} proc: {rows[-1]['samples_per_s']:8.1f} samples/s "
                    f"[{rows[-1]['samples_per_s_min']:.1f}, {rows[-1]['samples_per_s_max']:.1f}]")
            naive, reuse = rows[0]["samples_per_s"], rows[1]["samples_per_s"]
            for r in rows:
                r["speedup_vs_naive"] = r["samples_per_s"] / naive
                r["speedup_vs_reuse"] = r["samples_per_s"] / reuse
            rows[-1]["speedup_vs_1proc"] = rows[-1]["samples_per_s"] / rows[-2]["samples_per_s"]
            records += rows
    return records


COLUMNS = [("n", "n", "d"), ("method", "method", ""), ("processes", "processes", "d"), ("samples", "samples", "d"),
           ("seconds", "seconds", ".2f"), ("wall s", "wall_s", ".2f"), ("samples/s (median of 3)", "samples_per_s", ".1f"),
           ("min", "samples_per_s_min", ".1f"), ("max", "samples_per_s_max", ".1f"),
           ("vs naive", "speedup_vs_naive", ".2f"), ("vs dolfinx-reuse", "speedup_vs_reuse", ".2f"),
           ("vs 1 process", "speedup_vs_1proc", ".2f")]
