"""``hybrid demo``: the main job end to end on the embedded default (local files only).

For now: Darcy flow with a rough two-phase permeability (thresholded Gaussian random field, values 12
and 3 as in the FNO benchmark) on a 256 x 256 mesh, solved with pyamg smoothed aggregation + CG and
checked with the true residual; PNGs of the permeability, the pressure and the convergence history.
"""

from __future__ import annotations

import json
import time
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="run the end-to-end demo (Darcy, two-phase coefficient, AMG-CG)")
    p.add_argument("--n", type=int, default=256, help="cells per side (default 256)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder (default out/demo)")
    p.set_defaults(run=run)


def run(args) -> int:
    import meshes
    import solvers
    from solvers.linear import AMG, CG, LinearProblem, solve
    from solvers.sampling import field_from_spec
    from ..plots import save_convergence, save_fields

    t0 = time.perf_counter()
    mesh = meshes.unit_square(args.n)
    a = field_from_spec(f"two-phase:seed={args.seed},index=0")
    problem = solvers.Darcy(mesh, a=a, f=1.0)
    t = time.perf_counter()
    system = problem.assemble()
    assemble_s = time.perf_counter() - t
    sol = solve(LinearProblem.from_system(system), CG(precond=AMG("sa")), rtol=1e-8)
    print(f"Darcy, two-phase permeability {{3, 12}} (seed {args.seed}), P1 on a {args.n} x {args.n} mesh")
    print(f"  dofs                     {system.ndofs}")
    print(f"  assembly                 {assemble_s:.3f} s")
    print(f"  method                   pyamg smoothed aggregation + CG")
    print(f"  retcode                  {sol.retcode.name}")
    print(f"  iterations               {sol.iterations}")
    print(f"  AMG setup                {sol.stats['setup_s']:.3f} s")
    print(f"  CG solve                 {sol.stats['solve_s']:.3f} s")
    print(f"  true relative residual   {sol.residual:.3e}   (||b - A x|| / ||b||)")

    view = meshes.GridView(system.space)
    coeff = problem.a.x.array[: system.A.shape[0]]
    args.out.mkdir(parents=True, exist_ok=True)
    fields = save_fields(args.out / "darcy.png", {"permeability a": view.to_grid(coeff),
                                                  "pressure u": view.to_grid(sol.x)})
    conv = save_convergence(args.out / "convergence.png", {"pyamg-sa+cg": sol.residuals})
    summary = {"n": args.n, "dofs": system.ndofs, "retcode": sol.retcode.name, "iterations": sol.iterations,
               "assemble_s": assemble_s, "setup_s": sol.stats["setup_s"], "solve_s": sol.stats["solve_s"],
               "rel_residual": sol.residual}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"  wrote {fields}, {conv}, {args.out / 'summary.json'}  ({time.perf_counter() - t0:.1f} s in all)")
    return 0 if sol.converged else 1
