"""``hybrid bench solvers``: classical baselines on the problems every hybrid method must beat.

Each record: one (problem, n, method) with median setup/solve times over ``repeats`` runs (spread
kept; a run over ``LONG_RUN_S`` seconds is not repeated, and ``repeats`` records how many ran), iterations, the true relative residual, and the time of one SpMV on the same matrix measured in
the same run, so ``spmv_equiv = total_s / spmv_s`` is a machine-independent cost.
"""

from __future__ import annotations

import gc
import time

import numpy as np

from .results import median, timed

REAL_METHODS = ("pyamg-sa+cg", "pyamg-rs+cg", "petsc-gamg+cg", "jacobi+cg", "ilu+gmres", "direct-superlu",
                "direct-mumps")
#: Helmholtz is complex: CG and the PETSc Krylov methods do not apply (PETSc is real here); MUMPS runs
#: on the real equivalent system
HELMHOLTZ_METHODS = ("pyamg-sa+gmres", "ilu+gmres", "direct-superlu", "direct-mumps")
#: iteration caps: Jacobi-CG needs thousands of (cheap) iterations at n=1024; ILU-GMRES(50) that has
#: not converged in 300 iterations (it stagnates from n=256 on) is reported as MaxIters, not waited for
MAXITER = {"jacobi+cg": 20000, "ilu+gmres": 300}
DEFAULT_MAXITER = 5000
#: a run longer than this is not repeated (the median of 3 matters for short, noisy timings)
LONG_RUN_S = 20.0


def _poisson(mesh, n):
    import solvers

    return solvers.Poisson(mesh, f=1.0)


def _darcy(spec):
    def make(mesh, n):
        import solvers
        from solvers.sampling import field_from_spec

        return solvers.Darcy(mesh, a=field_from_spec(spec), f=1.0)
    return make


def _helmholtz(mesh, n):
    import solvers

    return solvers.Helmholtz(mesh, k=2 * np.pi * n / 10, f=1.0, absorbing=list(mesh.boundaries))  # ~10 points/wavelength


#: benchmark problem -> maker(mesh, n) -> Problem
PROBLEM_MAKERS = {"poisson": _poisson, "darcy-rough": _darcy("two-phase:seed=0,index=0"),
                  "darcy-contrast": _darcy("contrast:seed=0,index=0"), "helmholtz": _helmholtz}
PROBLEMS = tuple(PROBLEM_MAKERS)


def assemble(problem: str, n: int):
    import meshes

    if problem not in PROBLEM_MAKERS:
        raise ValueError(f"unknown benchmark problem {problem!r}; use one of {', '.join(PROBLEMS)}")
    return PROBLEM_MAKERS[problem](meshes.unit_square(n), n).assemble()


def spmv_seconds(A, repeats: int = 10) -> float:
    x = np.ones(A.shape[0], dtype=A.dtype)
    A @ x
    _, times = timed(lambda: A @ x, repeats)
    return median(times)


def run_algorithm(system, make, repeats: int, rtol: float = 1e-8, maxiter: int = DEFAULT_MAXITER) -> dict:
    """Setup + solve ``repeats`` times with a fresh ``make()`` algorithm each time (a run over
    ``LONG_RUN_S`` is not repeated): medians, spread, iterations, the true relative residual, and the
    network time inside setup (``infer_s``, a learned preconditioner's ``setup_network_s``; 0 otherwise)."""
    from solvers.linear import LinearProblem, init

    lp = LinearProblem(system.A, system.b)
    setups, solves, infers, sol = [], [], [], None
    for _ in range(max(1, repeats)):
        gc.collect()
        cache = init(lp, make(), rtol=rtol, maxiter=maxiter)
        sol = cache.solve()
        setups.append(sol.stats["setup_s"])
        solves.append(sol.stats["solve_s"])
        pc = cache.precond
        infers.append(float(getattr(pc, "stats", {}).get("setup_network_s", 0.0)) if pc is not None else 0.0)
        del cache
        if setups[-1] + solves[-1] > LONG_RUN_S:
            break
    totals = [a + b for a, b in zip(setups, solves)]
    return {"iterations": sol.iterations, "setup_s": median(setups), "solve_s": median(solves),
            "infer_s": median(infers), "total_s": median(totals), "total_s_min": min(totals),
            "total_s_max": max(totals), "rel_residual": sol.residual,
            "converged": bool(sol.converged and sol.residual <= rtol), "retcode": sol.retcode.name,
            "repeats": len(totals)}


def run_method(system, name: str, repeats: int, rtol: float = 1e-8) -> dict:
    """:func:`run_algorithm` for a registered method name."""
    from solvers.linear import method

    return {"method": name, **run_algorithm(system, lambda: method(name), repeats, rtol,
                                            MAXITER.get(name, DEFAULT_MAXITER))}


def run(sizes, problems=PROBLEMS, repeats: int = 3, log=print) -> list[dict]:
    records = []
    for problem in problems:
        for n in sizes:
            t = time.perf_counter()
            system = assemble(problem, n)
            assemble_s = time.perf_counter() - t
            spmv = spmv_seconds(system.A)
            methods = HELMHOLTZ_METHODS if problem == "helmholtz" else REAL_METHODS
            for name in methods:
                rec = {"problem": problem, "n": n, "dofs": system.ndofs, "assemble_s": assemble_s,
                       **run_method(system, name, repeats), "spmv_s": spmv}
                rec["spmv_equiv"] = rec["total_s"] / spmv
                records.append(rec)
                log(f"{problem:15s} n={n:5d} {name:16s} {rec['retcode']:9s} it={rec['iterations']:5d} "
                    f"setup={rec['setup_s']:8.3f}s solve={rec['solve_s']:8.3f}s res={rec['rel_residual']:.1e} "
                    f"spmv_equiv={rec['spmv_equiv']:9.0f}")
            del system
    return records


COLUMNS = [("problem", "problem", ""), ("n", "n", "d"), ("dofs", "dofs", "d"), ("method", "method", ""),
           ("iters", "iterations", "d"), ("setup s", "setup_s", ".3f"), ("solve s", "solve_s", ".3f"),
           ("total s", "total_s", ".3f"), ("SpMV-equiv", "spmv_equiv", ".0f"), ("true rel. res.", "rel_residual", ".1e"),
           ("converged", "converged", "")]
