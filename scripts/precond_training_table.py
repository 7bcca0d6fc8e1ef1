"""CG iterations and time of trained vs untrained SymmetricMgConv preconditioners beside Jacobi-CG and
pyamg RS-AMG-CG (issue 8, deliverable 3); one process, CPU, median of ``--repeats`` runs.

    hybrid train precond --n 32 --samples 64 --epochs 30 --out runs/precond-energy
    hybrid train precond --n 32 --samples 64 --epochs 20 --loss unrolled --out runs/precond-unrolled
    python scripts/precond_training_table.py --energy runs/precond-energy --unrolled runs/precond-unrolled

Problems as in ``hybrid bench solvers``: P1 on the unit square, zero Dirichlet data, f = 1, darcy-rough =
two-phase {3, 12} (seed 0, index 0), darcy-contrast = {1, 1e4}; true relative residual 1e-8.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

PROBLEMS = {"darcy-rough": "two-phase:seed=0,index=0", "darcy-contrast": "contrast:seed=0,index=0"}


def methods(args):
    from hybrid.precond import NeuralPreconditioner, SymmetricMgConv
    from solvers.linear import AMG, CG, Jacobi

    m = {"mgconv-untrained (node-mean)": lambda: CG(precond=NeuralPreconditioner(SymmetricMgConv())),
         "mgconv-untrained (p1)": lambda: CG(precond=NeuralPreconditioner(SymmetricMgConv(face_weights="p1")))}
    if args.energy:
        m["mgconv-trained energy"] = lambda: CG(precond=NeuralPreconditioner.from_checkpoint(args.energy))
    if args.unrolled:
        m["mgconv-trained unrolled"] = lambda: CG(precond=NeuralPreconditioner.from_checkpoint(args.unrolled))
    m["jacobi+cg"] = lambda: CG(precond=Jacobi())
    m["pyamg-rs+cg"] = lambda: CG(precond=AMG("rs"))
    return m


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--energy")
    ap.add_argument("--unrolled")
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    import meshes
    from solvers import DarcyFamily
    from solvers.linear import LinearProblem, PrecondParams, solve
    from solvers.sampling import field_from_spec

    rows = []
    for n in args.sizes:
        mesh = meshes.unit_square(n)
        fam, view = DarcyFamily(mesh), meshes.GridView(mesh)
        for prob, spec in PROBLEMS.items():
            a = fam.nodal(field_from_spec(spec))
            s = fam.system(a)
            lp = LinearProblem(s.A, s.b, p=PrecondParams.from_system(s, coefficient=a, grid=view))
            for name, make in methods(args).items():
                times = []
                for _ in range(args.repeats):
                    alg = make()
                    t = time.perf_counter()
                    sol = solve(lp, alg, rtol=1e-8, maxiter=20000)
                    times.append(time.perf_counter() - t)
                res = np.linalg.norm(s.b - s.A @ sol.x) / np.linalg.norm(s.b)
                rows.append({"n": n, "problem": prob, "method": name, "iterations": sol.iterations,
                             "converged": bool(sol.converged and res <= 1e-8), "rel_residual": float(res),
                             "total_s": float(np.median(times))})
                r = rows[-1]
                print(f"n={n:4d} {prob:15s} {name:30s} {r['iterations']:6d} it  {r['total_s']:8.3f} s  "
                      f"res {res:.1e}{'' if r['converged'] else '  NOT CONVERGED'}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
