"""``hybrid bench hybrid``: learned components inside solver loops, beside the best classical solvers.

Two kinds of rows (see shared BENCH.md, suite ``hybrid``):

- single solves on ``darcy-rough`` / ``darcy-contrast`` at each ``n`` (the learned model is trained at
  one small size, so larger ``n`` tests transfer across resolutions): ``pyamg-sa+cg``, ``pyamg-rs+cg``,
  ``petsc-gamg+cg`` and the learned methods on the same matrix in the same process, median of
  ``repeats``; setup includes network inference (``infer_s`` says how much of it);
- the 50-solve loop (``problem = "loop-sweep"``, examples/solver_in_the_loop.py's rotating log-normal
  coefficient): strategies ``rebuild`` (RS-AMG set up for every matrix), ``refresh``,
  ``refresh+projection`` and, with a model, ``learned-amg+refresh+projection``; ``total_s`` is the wall
  time of the whole loop including the matrix updates, ``converged`` means every solve met 1e-8.

Every solve reports its true relative residual. A convergence figure (true residual against iteration
and against time, largest ``n``) is written beside the JSON file.
"""

from __future__ import annotations

import gc
import time

import numpy as np

from .results import median
from .solvers import MAXITER, DEFAULT_MAXITER, assemble, run_algorithm, spmv_seconds

PROBLEMS = ("darcy-rough", "darcy-contrast")
CLASSICAL = ("pyamg-sa+cg", "pyamg-rs+cg", "pyamg-rs2+cg", "petsc-gamg+cg")
LOOP_STRATEGIES = {
    "rebuild": dict(reuse="rebuild", warm_start=None),
    "refresh": dict(reuse="refresh", warm_start=None),
    "refresh+projection": dict(reuse="auto", warm_start="projection"),
}


def _factories(model, methods=None, device="cpu") -> dict:
    """Classical rows always; learned rows need a model. ``methods`` entries are names (using ``model``, the
    learned-AMG checkpoint) or ``name=PATH`` for a method with its own checkpoint (e.g. the LevelNet ones)."""
    from solvers.linear import method

    from ..precond.methods import BENCH_LEARNED, learned_method

    out = {name: (lambda name=name: method(name)) for name in CLASSICAL}
    loaded = _load(model) if model is not None else None
    for entry in methods or (BENCH_LEARNED if model is not None else ()):
        name, eq, path = entry.partition("=")
        own = path if eq else loaded
        learned_method(name, own, device)  # unknown names, missing or wrong models fail here, before any timing
        out[name] = lambda name=name, own=own: learned_method(name, own, device)
    return out


def _load(model):
    from ..precond.learned_amg import load_checkpoint

    return load_checkpoint(model)


def history(system, make, rtol: float = 1e-8) -> dict:
    """True relative residual after every iteration, against iteration and against time (the time of
    computing the true residual inside the callback is subtracted)."""
    from solvers.linear import LinearProblem, init

    A, b = system.A, system.b
    bn = np.linalg.norm(b)
    res, times = [1.0], [0.0]
    spent = [0.0]
    cache = init(LinearProblem(A, b), make(), rtol=rtol, callback=None)
    t0 = [None]

    def cb(k, x, rnorm):
        t = time.perf_counter()
        res.append(float(np.linalg.norm(b - A @ x) / bn) if x is not None else float(rnorm / bn))
        times.append(t - t0[0] - spent[0])
        spent[0] += time.perf_counter() - t

    cache.callback = cb
    t0[0] = time.perf_counter()
    sol = cache.solve()
    setup = sol.stats["setup_s"]
    return {"residual": res, "seconds": [setup + s for s in times]}


def run_loop(n: int, solves: int, model=None, repeats: int = 1, log=print) -> list[dict]:
    """The solver-in-the-loop rows (``rotating_log_normal`` sweep, as in examples/solver_in_the_loop.py);
    strategies interleaved within each repeat so machine noise hits them alike; medians over repeats."""
    import meshes
    from solvers import DarcyFamily
    from solvers.linear import AMG, CG, solve_sequence
    from solvers.sampling import rotating_log_normal

    family = DarcyFamily(meshes.unit_square(n))
    strategies = {name: (lambda: CG(precond=AMG("rs")), opts) for name, opts in LOOP_STRATEGIES.items()}
    if model is not None:
        from ..precond.learned_amg import LearnedAMG

        loaded = _load(model)
        strategies["learned-amg+refresh+projection"] = (lambda: CG(precond=LearnedAMG(loaded)),
                                                        LOOP_STRATEGIES["refresh+projection"])
    runs = {name: [] for name in strategies}
    for _ in range(max(1, repeats)):
        for name, (make, opts) in strategies.items():
            gc.collect()
            t = time.perf_counter()
            res = solve_sequence((family.system(a) for a in rotating_log_normal(n, solves)), make(), rtol=1e-8,
                                 **opts)
            runs[name].append((time.perf_counter() - t, res))
    records = []
    base = median([t for t, _ in runs["rebuild"]])
    for name, items in runs.items():
        times = [t for t, _ in items]
        res = items[-1][1]
        rec = {"problem": "loop-sweep", "n": n, "dofs": family.ndofs, "method": name, "strategy": name,
               "model": str(model) if name.startswith("learned") else None, "solves": len(res.solutions),
               "iterations_total": res.iterations, "iterations": res.iterations, "rebuilds": res.rebuilds,
               "setup_s": res.setup_s, "solve_s": res.solve_s, "total_s": median(times),
               "total_s_min": min(times), "total_s_max": max(times), "rel_residual": res.max_residual,
               "converged": res.converged, "repeats": len(times), "vs_rebuild": median(times) / base}
        records.append(rec)
        log(f"loop-sweep n={n:5d} {name:32s} solves={rec['solves']} it={rec['iterations_total']:5d} "
            f"total={rec['total_s']:7.2f}s ({rec['vs_rebuild']:.2f}x rebuild) converged={rec['converged']}")
    return records


def run(sizes, problems=PROBLEMS, repeats: int = 3, model=None, methods=None, loop_n: int = 256,
        loop_solves: int = 50, plot=None, device="cpu", log=print) -> list[dict]:
    """All rows; ``methods``: learned method names (default ``BENCH_LEARNED``, needs ``model``);
    ``plot``: a PNG path for the convergence figure (largest size, each problem)."""
    factories = _factories(model, methods, device)
    records, histories = [], {}
    for problem in problems:
        for n in sizes:
            system = assemble(problem, n)
            spmv = spmv_seconds(system.A)
            for name, make in factories.items():
                rec = {"problem": problem, "n": n, "dofs": system.ndofs, "method": name,
                       "model": str(model) if name not in CLASSICAL else None,
                       **run_algorithm(system, make, repeats, maxiter=MAXITER.get(name, DEFAULT_MAXITER)),
                       "spmv_s": spmv}
                rec["spmv_equiv"] = rec["total_s"] / spmv
                records.append(rec)
                log(f"{problem:15s} n={n:5d} {name:16s} {rec['retcode']:9s} it={rec['iterations']:4d} "
                    f"setup={rec['setup_s']:7.3f}s (net {rec['infer_s']:.3f}s) solve={rec['solve_s']:7.3f}s "
                    f"total={rec['total_s']:7.3f}s res={rec['rel_residual']:.1e}")
                if plot is not None and n == max(sizes):
                    histories[(problem, name)] = history(system, make)
            del system
    if loop_solves:
        records += run_loop(loop_n, loop_solves, model, repeats=max(1, min(repeats, 2)), log=log)
    if plot is not None and histories:
        save_histories(plot, histories, max(sizes))
    return records


def save_histories(path, histories: dict, n: int):
    """Two rows of panels per problem: true residual vs iteration and vs seconds (setup included)."""
    from ..plots import _plt, _save

    plt = _plt()
    problems = sorted({p for p, _ in histories})
    fig, axes = plt.subplots(len(problems), 2, figsize=(10, 3.6 * len(problems)), squeeze=False)
    for row, problem in zip(axes, problems):
        for (p, name), h in histories.items():
            if p != problem:
                continue
            row[0].semilogy(range(len(h["residual"])), h["residual"], marker=".", label=name)
            row[1].semilogy(h["seconds"], h["residual"], marker=".", label=name)
        row[0].set_title(f"{problem}, n = {n}: true residual vs iteration")
        row[1].set_title(f"{problem}, n = {n}: vs time (setup included)")
        row[0].set_xlabel("iteration")
        row[1].set_xlabel("seconds")
        for ax in row:
            ax.set_ylabel("||b - A x|| / ||b||")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
    return _save(plt, fig, path)


COLUMNS = [("problem", "problem", ""), ("n", "n", "d"), ("method", "method", ""), ("iters", "iterations", "d"),
           ("setup s", "setup_s", ".3f"), ("infer s", "infer_s", ".3f"), ("solve s", "solve_s", ".3f"),
           ("total s", "total_s", ".3f"), ("SpMV-equiv", "spmv_equiv", ".0f"), ("vs rebuild", "vs_rebuild", ".2f"),
           ("true rel. res.", "rel_residual", ".1e"), ("converged", "converged", "")]
