"""``hybrid solve PDE``: assemble a PDE on a generated or gmsh mesh and solve it, serial or under MPI."""

from __future__ import annotations

import json
import time
from pathlib import Path

from ..names import LEARNED_METHODS, METHODS, PDES, shipped_model


DESCRIPTION = ("Assemble PDE with DOLFINx on a unit square (--n) or a gmsh mesh (--mesh) and solve it. Works under "
               "`mpiexec -n K` with the petsc-* and direct-mumps methods.")


def add_parser(sub) -> None:
    p = sub.add_parser("solve", help="solve a PDE and report iterations, times and the true residual",
                       description=DESCRIPTION)
    p.add_argument("pde", choices=PDES)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--n", type=int, default=64, help="cells per side of the unit square (default 64)")
    g.add_argument("--mesh", type=Path, help="gmsh .msh (physical groups name the boundaries) or .xdmf")
    p.add_argument("--coefficient", default="1.0",
                   help="darcy permeability / conv-diff diffusion / elasticity E / helmholtz wave speed: a number "
                        "or two-phase|contrast|log-normal[:seed=S,index=I,...] (default 1; poisson has none)")
    p.add_argument("--f", default="1.0", help="source term: a number or a field spec (default 1)")
    p.add_argument("--k", type=float, default=None, help="Helmholtz wavenumber (required for helmholtz)")
    p.add_argument("--velocity", default="1,0", help="convection velocity 'wx,wy' (default 1,0)")
    p.add_argument("--bc", action="append", default=[], metavar="NAME=SPEC",
                   help="boundary condition: NAME=VALUE or NAME=dirichlet:VALUE, NAME=neumann:G, "
                        "NAME=robin:ALPHA:G, NAME=absorbing (Helmholtz). Default: u = 0 on every named boundary")
    p.add_argument("--degree", type=int, default=1)
    p.add_argument("--method", default=None, choices=METHODS + LEARNED_METHODS,
                   help="solver (default pyamg-sa+cg serially, petsc-gamg+cg under MPI; ilu+gmres for "
                        "non-symmetric problems, direct-superlu for Helmholtz); learned-* need --model")
    p.add_argument("--model", type=Path, default=None,
                   help="trained model for a learned-* method (shipped: bench/models/, e.g. learned_amg.pt, helmholtz_cslp.pt, helmholtz_cslp_def_c4.pt for learned-def+fgmres)")
    p.add_argument("--rtol", type=float, default=1e-8)
    p.add_argument("--maxiter", type=int, default=None)
    p.add_argument("--out", type=Path, help="write the solution (.xdmf or .vtu)")
    p.add_argument("--json", type=Path, help="write a summary JSON")
    p.set_defaults(run=run)


# -- boundary conditions ------------------------------------------------------------------------------------
BC_SYNTAX = "NAME=VALUE, NAME=dirichlet:VALUE, NAME=neumann:G, NAME=robin:ALPHA:G or NAME=absorbing"


def _bc_value(spec: str, what: str, text: str, vector_dim: int | None):
    """A boundary value from text: a number or field spec (scalar problems), ``a,b`` (vector problems)."""
    from solvers.sampling import field_from_spec

    if text == "":
        raise ValueError(f"--bc {spec!r}: {what} is missing; expected {BC_SYNTAX}")
    try:
        if vector_dim:
            parts = [float(t) for t in text.split(",")]
            if len(parts) != vector_dim:
                raise ValueError(f"a vector value needs {vector_dim} comma-separated components")
            return parts
        return field_from_spec(text)
    except ValueError as e:
        raise ValueError(f"--bc {spec!r}: {what} {text!r} is not usable: {e}") from None


def _dirichlet(name, spec, rest, vector_dim):
    from solvers import Dirichlet

    return Dirichlet(name, _bc_value(spec, "the Dirichlet value", rest, vector_dim))


def _neumann(name, spec, rest, vector_dim):
    from solvers import Neumann

    return Neumann(name, _bc_value(spec, "the Neumann flux G", rest, vector_dim))


def _robin(name, spec, rest, vector_dim):
    from solvers import Robin

    alpha, colon, g = rest.partition(":")
    if not colon or not alpha or not g:
        raise ValueError(f"--bc {spec!r}: a Robin condition needs ALPHA and G: NAME=robin:ALPHA:G "
                         "(a du/dn + ALPHA (u - G) = 0)")
    try:
        alpha_value = float(alpha)
    except ValueError:
        raise ValueError(f"--bc {spec!r}: Robin ALPHA {alpha!r} is not a number") from None
    return Robin(name, alpha_value, _bc_value(spec, "the Robin value G", g, vector_dim))


#: ``--bc NAME=KIND:...`` -> maker(name, spec, rest, vector_dim); ``absorbing`` is a name list of its own
BC_KINDS = {"dirichlet": _dirichlet, "neumann": _neumann, "robin": _robin}


def parse_bcs(specs, vector_dim: int | None = None):
    """``NAME=...`` strings -> (boundary conditions, absorbing names); ``ValueError`` naming what is wrong."""
    from solvers.sampling import FIELDS

    bcs, absorbing = [], []
    for spec in specs:
        name, eq, rhs = spec.partition("=")
        if not eq or not name or not rhs:
            raise ValueError(f"--bc {spec!r}: expected {BC_SYNTAX}")
        kind, _, rest = rhs.partition(":")
        if kind == "absorbing":
            if rest:
                raise ValueError(f"--bc {spec!r}: absorbing takes no value (NAME=absorbing)")
            absorbing.append(name)
        elif kind in BC_KINDS:
            bcs.append(BC_KINDS[kind](name, spec, rest, vector_dim))
        elif ":" in rhs and kind not in FIELDS:  # KIND:... that is neither a condition nor a field
            raise ValueError(f"--bc {spec!r}: unknown condition {kind!r}; use dirichlet, neumann, robin or "
                             f"absorbing (or a field for a Dirichlet value: {', '.join(FIELDS)})")
        else:  # NAME=VALUE: a Dirichlet value (a number or a field spec)
            bcs.append(_dirichlet(name, spec, rhs, vector_dim))
    return bcs, absorbing


# -- problems -------------------------------------------------------------------------------------------------
def _poisson(args, mesh, coefficient, f, bcs, absorbing):
    import solvers

    return solvers.Poisson(mesh, f=f, bcs=bcs, degree=args.degree)


def _darcy(args, mesh, coefficient, f, bcs, absorbing):
    import solvers

    return solvers.Darcy(mesh, a=coefficient, f=f, bcs=bcs, degree=args.degree)


def _convection_diffusion(args, mesh, coefficient, f, bcs, absorbing):
    import solvers

    try:
        w = [float(t) for t in args.velocity.split(",")]
    except ValueError:
        raise ValueError(f"--velocity {args.velocity!r}: expected numbers 'wx,wy'") from None
    return solvers.ConvectionDiffusion(mesh, eps=coefficient, velocity=w, f=f, bcs=bcs, degree=args.degree)


def _elasticity(args, mesh, coefficient, f, bcs, absorbing):
    import solvers

    try:
        load = float(args.f)
    except ValueError:
        raise ValueError(f"--f {args.f!r}: elasticity takes a number (the downward body force)") from None
    body = [0.0] * (mesh.gdim - 1) + [-load]
    return solvers.Elasticity(mesh, E=coefficient, body_force=body, bcs=bcs, degree=args.degree)


def _helmholtz(args, mesh, coefficient, f, bcs, absorbing):
    import solvers

    return solvers.Helmholtz(mesh, k=args.k, f=f, absorbing=absorbing, bcs=bcs, degree=args.degree, speed=coefficient)


#: PDE name -> builder(args, mesh, coefficient, f, bcs, absorbing) -> Problem
PDE_BUILDERS = {"poisson": _poisson, "darcy": _darcy,
                "convection-diffusion": _convection_diffusion, "elasticity": _elasticity, "helmholtz": _helmholtz}


def build_problem(args, mesh):
    from solvers.sampling import field_from_spec

    coefficient = field_from_spec(args.coefficient)
    f = field_from_spec(args.f) if args.pde != "elasticity" else None  # elasticity: a number (_elasticity)
    vector = mesh.gdim if args.pde == "elasticity" else None
    bcs, absorbing = parse_bcs(args.bc, vector)
    if absorbing and args.pde != "helmholtz":
        raise ValueError(f"--bc {absorbing[0]}=absorbing: only helmholtz has absorbing boundaries")
    bcs = bcs if (args.bc and bcs) or absorbing else None
    return PDE_BUILDERS[args.pde](args, mesh, coefficient, f, bcs, absorbing)


# -- checks before any work ------------------------------------------------------------------------------------
def check_positive(flag: str, value) -> None:
    if value is not None and value < 1:
        raise ValueError(f"{flag} must be a positive integer, got {value}")


def check_args(args) -> None:
    """Everything that can be checked from the command line alone, before any mesh, assembly or solve."""
    from meshes.io import check_output_path
    from solvers.limits import check_memory, unit_square_dofs

    if args.mesh is None:
        check_positive("--n", args.n)
    if args.method in LEARNED_METHODS:
        if args.model is None:
            raise ValueError(f"--method {args.method} needs --model PATH (a trained checkpoint; shipped: "
                             f"bench/models/{shipped_model(args.method)})")
        if not args.model.exists():
            raise FileNotFoundError(f"--model {args.model}: no such checkpoint")
    elif args.model is not None:
        raise ValueError(f"--model is for the learned methods ({', '.join(LEARNED_METHODS)}), not "
                         f"{args.method or 'the default method'}")
    check_positive("--degree", args.degree)
    if args.pde == "helmholtz":
        if args.k is None:
            raise ValueError("--k is required for helmholtz (the wavenumber; about 2 pi n / 10 resolves "
                             "10 points per wavelength)")
    elif args.k is not None:
        raise ValueError(f"--k applies to helmholtz only, not {args.pde}")
    if args.velocity != "1,0" and args.pde != "convection-diffusion":
        raise ValueError(f"--velocity applies to convection-diffusion only, not {args.pde}")
    if args.coefficient != "1.0" and args.pde == "poisson":
        raise ValueError("--coefficient: poisson has no coefficient (use darcy for -div(a grad u) = f)")
    if args.out is not None:
        check_output_path(args.out)
    if args.mesh is None:
        check_memory(f"--n {args.n}", unit_square_dofs(args.n, args.degree, 2 if args.pde == "elasticity" else 1))


# -- the command ---------------------------------------------------------------------------------------------------
def make_method(name: str, model=None, device="cpu"):
    """A classical method by name, or a learned one with its model (``--model``); torch is imported only
    for the learned ones (so classical solves and their memory measurements stay torch-free)."""
    from solvers.linear.methods import method

    if name in LEARNED_METHODS:
        from ..precond.methods import learned_method

        return learned_method(name, model, device)
    if model is not None:
        raise ValueError(f"--model is for the learned methods ({', '.join(LEARNED_METHODS)}), not {name!r}")
    return method(name)


def solve_problem(problem, method_name: str, rtol: float, maxiter, model=None):
    """Assemble and solve; the distributed path goes through PETSc. Returns (system, x, solution, assemble_s)."""
    from solvers.linear import LinearProblem, solve
    from solvers.linear.methods import DISTRIBUTED

    comm = problem.mesh.comm
    t = time.perf_counter()
    system = problem.assemble()
    if comm.size > 1:
        if method_name not in DISTRIBUTED:
            raise ValueError(f"method {method_name!r} is serial; under MPI use one of: {', '.join(sorted(DISTRIBUTED))}")
        A, b = system.to_petsc()
        lp = LinearProblem(A, b, nullspace=system.nullspace)
    else:
        lp = LinearProblem.from_system(system)
    assemble_s = time.perf_counter() - t
    sol = solve(lp, make_method(method_name, model), rtol=rtol, maxiter=maxiter)
    x = sol.x.array.copy() if hasattr(sol.x, "array") else sol.x
    return system, x, sol, assemble_s


def solution_norms(system, x) -> dict:
    """Partition-independent facts about the solution (L2 norm, max), for comparing runs."""
    import numpy as np
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
    check_args(args)
    import meshes
    from meshes._mpi import COMM_WORLD as comm

    mesh = meshes.read(args.mesh) if args.mesh else meshes.unit_square(args.n)
    problem = build_problem(args, mesh)
    name = args.method or default_method(args.pde, comm.size)
    system, x, sol, assemble_s = solve_problem(problem, name, args.rtol, args.maxiter, args.model)
    summary = {
        "pde": args.pde, "mesh": str(args.mesh) if args.mesh else f"unit_square({args.n})",
        "dofs": system.ndofs, "processes": comm.size, "method": name,
        **({"model": str(args.model)} if args.model is not None and name.startswith("learned") else {}),
        "retcode": sol.retcode.name,
        "converged": sol.converged, "iterations": sol.iterations, "assemble_s": assemble_s,
        "setup_s": sol.stats["setup_s"], "solve_s": sol.stats["solve_s"],
        "total_s": sol.stats["setup_s"] + sol.stats["solve_s"], "rel_residual": sol.residual,
        "nullspace": "constants (solution normalized to zero mean)" if system.nullspace is not None else None,
        **solution_norms(system, x),
    }
    if comm.rank == 0:
        print(f"{args.pde}: {summary['dofs']} dofs on {comm.size} process(es), {name}: {sol.retcode.name} "
              f"in {sol.iterations} iterations, setup {summary['setup_s']:.3f} s, solve {summary['solve_s']:.3f} s, "
              f"true relative residual {sol.residual:.2e}")
        if system.nullspace is not None:
            print("  (no Dirichlet or Robin condition: u is determined up to a constant; reported with zero mean)")
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
