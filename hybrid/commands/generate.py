"""``hybrid generate PROBLEM --samples N --n RES --out FILE.h5``: FEM training data, resumable."""

from __future__ import annotations

import json
from pathlib import Path


from ..names import GENERATORS


def add_parser(sub) -> None:
    p = sub.add_parser("generate", help="generate a training dataset (HDF5) with the toolkit's FEM solvers",
                       description="Samples depend only on (seed, index): --workers W and `mpiexec -n W` give "
                                   "the same arrays as one process. An interrupted run leaves a valid file; "
                                   "rerunning the same command completes only the missing samples.")
    p.add_argument("problem", choices=GENERATORS)
    p.add_argument("--samples", type=int, required=True)
    p.add_argument("--n", type=int, default=None, help="cells per side of the unit square (grids of n+1 nodes; "
                                                       "default 64; not with --mesh)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--mesh", type=Path, help="triangle mesh file (.msh/.xdmf) instead of the unit square "
                                            "(darcy, poisson, darcy-rhs): nodal arrays, u = 0 on every named boundary")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1, help="processes: relaunches under mpiexec -n W")
    p.add_argument("--summary-json", type=Path, help="write the run summary (samples/s, ...) as JSON")
    p.add_argument("--block", type=int, default=16, help="samples per atomic write (default 16)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="problem parameter, e.g. coefficient=log-normal, high=12, low=3, forcing=grf, solver=amg")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run=run)


def parse_params(items) -> dict:
    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq:
            raise ValueError(f"--param {item!r}: expected KEY=VALUE")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def run(args) -> int:
    from meshes._mpi import COMM_WORLD
    from solvers.data import check_generator_params, generate

    params = parse_params(args.param)
    if args.mesh and args.n is not None:
        raise ValueError(f"--n {args.n} does not apply with --mesh (the mesh file sets the resolution); drop --n")
    n = 0 if args.mesh else (64 if args.n is None else args.n)
    if args.mesh:
        params["mesh"] = str(args.mesh.resolve())
    for flag, value in (("--samples", args.samples), ("--block", args.block), ("--workers", args.workers)):
        if value < 1:
            raise ValueError(f"{flag} must be a positive integer, got {value}")
    if not args.mesh and n < 2:
        raise ValueError(f"--n must be an integer >= 2, got {n}")
    check_generator_params(args.problem, params)  # here too: --workers relaunches under mpiexec
    summary = generate(args.problem, args.samples, n, args.out, seed=args.seed, params=params,
                       workers=args.workers, block=args.block, progress=not args.no_progress)
    if COMM_WORLD.rank == 0 and args.summary_json:
        args.summary_json.write_text(json.dumps(summary))
    if COMM_WORLD.rank == 0:
        note = summary.get("note")
        if note:
            print(f"{args.out}: {note} ({args.samples} samples)")
        else:
            print(f"{args.out}: generated {summary['generated']} samples in {summary['seconds']:.2f} s "
                  f"({summary['samples_per_s']:.1f} samples/s, {summary['processes']} process(es))")
    return 0
