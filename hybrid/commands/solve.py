"""``hybrid solve PDE``: assemble a PDE on a generated or gmsh mesh and solve it, serial or under MPI."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

PDES = ("poisson", "darcy", "convection-diffusion", "elasticity", "helmholtz")


def add_parser(sub) -> None:
    from solvers.linear.methods import METHODS

    p = sub.add_parser("solve", help="solve a PDE and report iterations, times and the true residual",
                       description="Assemble PDE with DOLFINx on a unit square (--n) or a gmsh mesh (--mesh) "
                                   "and solve it. Works under `mpiexec -n K` with the petsc-* and "
                                   "direct-mumps methods.")
    p.add_argument("pde", choices=PDES)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--n", type=int, default=64, help="cells per side of the unit square (default 64)")
    g.add_argument("--mesh", type=Path, help="gmsh .msh (physical groups name the boundaries) or .xdmf")
    p.add_argument("--coefficient", default="1.0",
                   help="darcy permeability / conv-diff diffusion / elasticity E: a number or "
                        "two-phase|contrast|log-normal[:seed=S,index=I,...] (default 1)")
    p.add_argument("--f", default="1.0", help="source term: a number or a field spec (default 1)")
    p.add_argument("--k", type=float, default=10.0, help="Helmholtz wavenumber")
    p.add_argument("--velocity", default="1,0", help="convection velocity 'wx,wy' (default 1,0)")
    p.add_argument("--bc", action="append", default=[], metavar="NAME=SPEC",
                   help="boundary condition: NAME=VALUE (Dirichlet), NAME=neumann:G, NAME=robin:ALPHA:G, "
                        "NAME=absorbing (Helmholtz). Default: u = 0 on every named boundary")
    p.add_argument("--degree", type=int, default=1)
    p.add_argument("--method", default=None, choices=list(METHODS),
                   help="solver (default pyamg-sa+cg serially, petsc-gamg+cg under MPI; ilu+gmres for "
                        "non-symmetric problems, direct-superlu for Helmholtz)")
    p.add_argument("--rtol", type=float, default=1e-8)
    p.add_argument("--maxiter", type=int, default=None)
    p.add_argument("--out", type=Path, help="write the solution (.xdmf or .vtu)")
    p.add_argument("--json", type=Path, help="write a summary JSON")
    p.set_defaults(run=run)


def parse_bcs(specs, vector_dim: int | None = None):
    """``NAME=...`` strings -> (boundary conditions, absorbing names)."""
    from solvers import Dirichlet, Neumann, Robin
    from solvers.sampling import field_from_spec

    def value(text):
        if vector_dim:
            parts = [float(t) for t in text.split(",")]
            if len(parts) != vector_dim:
                raise ValueError(f"vector value {text!r} needs {vector_dim} components")
            return parts
        return field_from_spec(text)

    bcs, absorbing = [], []
    for spec in specs:
        name, eq, rhs = spec.partition("=")
        if not eq or not name:
            raise ValueError(f"--bc {spec!r}: expected NAME=VALUE, NAME=neumann:G or NAME=robin:ALPHA:G")
        kind, _, rest = rhs.partition(":")
        if kind == "neumann":
            bcs.append(Neumann(name, value(rest)))
        elif kind == "robin":
            alpha, _, g = rest.partition(":")
            bcs.append(Robin(name, float(alpha), value(g or "0")))
        elif kind == "absorbing":
            absorbing.append(name)
        else:
            bcs.append(Dirichlet(name, value(rhs)))
    return bcs, absorbing


def build_problem(args, mesh):
    import solvers
    from solvers.sampling import field_from_spec

    coefficient, f = field_from_spec(args.coefficient), field_from_spec(args.f)
    vector = mesh.gdim if args.pde == "elasticity" else None
    bcs, absorbing = parse_bcs(args.bc, vector)
    bcs = bcs if (args.bc and bcs) or absorbing else None
    if args.pde == "poisson":
        return solvers.Poisson(mesh, f=f, bcs=bcs, degree=args.degree)
    if args.pde == "darcy":
        return solvers.Darcy(mesh, a=coefficient, f=f, bcs=bcs, degree=args.degree)
    if args.pde == "convection-diffusion":
        w = [float(t) for t in args.velocity.split(",")]
        return solvers.ConvectionDiffusion(mesh, eps=coefficient, velocity=w, f=f, bcs=bcs, degree=args.degree)
    if args.pde == "elasticity":
        body = [0.0] * (mesh.gdim - 1) + [-float(args.f)]
        return solvers.Elasticity(mesh, E=coefficient, body_force=body, bcs=bcs, degree=args.degree)
    return solvers.Helmholtz(mesh, k=args.k, f=f, absorbing=absorbing, bcs=bcs, degree=args.degree)


def solve_problem(problem, method_name: str, rtol: float, maxiter):
    """Assemble and solve; the distributed path goes through PETSc. Returns (system, x, solution, assemble_s)."""
    from solvers.linear import LinearProblem, solve
    from solvers.linear.methods import DISTRIBUTED, method

    comm = problem.mesh.comm
    t = time.perf_counter()
    system = problem.assemble()
    if comm.size > 1:
        if method_name not in DISTRIBUTED:
            raise ValueError(f"method {method_name!r} is serial; under MPI use one of: {', '.join(sorted(DISTRIBUTED))}")
        A, b = system.to_petsc()
        lp = LinearProblem(A, b)
    else:
        lp = LinearProblem(system.A, system.b)
    assemble_s = time.perf_counter() - t
    sol = solve(lp, method(method_name), rtol=rtol, maxiter=maxiter)
    x = sol.x.array.copy() if hasattr(sol.x, "array") else sol.x
    return system, x, sol, assemble_s


def solution_norms(system, x) -> dict:
    """Partition-independent facts about the solution (L2 norm, max), for comparing runs."""
    import dolfinx.fem as fem
    import ufl
    from meshes._mpi import MPI

    if np.iscomplexobj(x):
        return {"u_max_abs": float(np.abs(x).max())}
    u = system.function(x)
    comm = system.mesh.comm
    l2 = comm.allreduce(fem.assemble_scalar(fem.form(ufl.inner(u, u) * ufl.dx)), op=MPI.SUM)
    umax = comm.allreduce(float(np.abs(x).max()) if len(x) else 0.0, op=MPI.MAX)
    return {"u_l2": float(np.sqrt(l2)), "u_max_abs": umax}


def run(args) -> int:
    import meshes
    from meshes._mpi import COMM_WORLD as comm

    mesh = meshes.read(args.mesh) if args.mesh else meshes.unit_square(args.n)
    problem = build_problem(args, mesh)
    name = args.method or default_method(args.pde, comm.size)
    system, x, sol, assemble_s = solve_problem(problem, name, args.rtol, args.maxiter)
    summary = {
        "pde": args.pde, "mesh": str(args.mesh) if args.mesh else f"unit_square({args.n})",
        "dofs": system.ndofs, "processes": comm.size, "method": name, "retcode": sol.retcode.name,
        "converged": sol.converged, "iterations": sol.iterations, "assemble_s": assemble_s,
        "setup_s": sol.stats["setup_s"], "solve_s": sol.stats["solve_s"],
        "total_s": sol.stats["setup_s"] + sol.stats["solve_s"], "rel_residual": sol.residual,
        **solution_norms(system, x),
    }
    if comm.rank == 0:
        print(f"{args.pde}: {summary['dofs']} dofs on {comm.size} process(es), {name}: {sol.retcode.name} "
              f"in {sol.iterations} iterations, setup {summary['setup_s']:.3f} s, solve {summary['solve_s']:.3f} s, "
              f"true relative residual {sol.residual:.2e}")
        if not sol.converged:
            print(f"  ({sol.message})")
    if args.out:
        system.write(args.out, x)
    if args.json and comm.rank == 0:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2))
    return 0 if sol.converged else 1


def default_method(pde: str, processes: int) -> str:
    if processes > 1:
        return "petsc-gamg+cg" if pde in ("poisson", "darcy", "elasticity") else "direct-mumps"
    return {"convection-diffusion": "ilu+gmres", "helmholtz": "direct-superlu"}.get(pde, "pyamg-sa+cg")
