"""``hybrid invert PROBLEM``: recover a coefficient from (synthetic, noisy) observations and plot it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from ..names import INVERSE_METHODS, INVERSE_PROBLEMS, INVERSE_REGULARIZERS, INVERSE_OPTIMIZERS, NOISE_MODELS

DESCRIPTION = ("Make synthetic data from a true coefficient (--truth; solved on a mesh --data-refine times finer, "
               "so the inversion does not see its own discretization), add noise, and invert it by adjoint-based "
               "optimization of the log-coefficient with Tikhonov (l2, h1) or total-variation regularization, "
               "stopping by the discrepancy principle (misfit <= tau * noise); or estimate it with a trained pressure -> "
               "coefficient network (--method learned, --model), alone or as the adjoint's initial guess "
               "(--method learned+adjoint). `invert eit` recovers a conductivity from Dirichlet-to-Neumann data of --patterns "
               "voltage patterns (one factorization per iterate for all forward and adjoint solves): from --data FILE "
               "(`hybrid generate eit`, sample --sample) or synthetic (--domain square|disk, --truth heart-lungs|"
               "inclusions[:seed=..]). Writes truth/reconstruction/error "
               "and misfit-history PNGs and summary.json to --out.")


def add_parser(sub) -> None:
    p = sub.add_parser("invert", help="recover a coefficient from noisy observations (adjoint optimization, learned, hybrid)",
                       description=DESCRIPTION)
    p.add_argument("problem", choices=INVERSE_PROBLEMS)
    p.add_argument("--n", type=int, default=32, help="cells per side of the unit square (default 32)")
    p.add_argument("--truth", default=None,
                   help="true coefficient: darcy: a number or two-phase|contrast|log-normal|inclusions[:key=value,...] "
                        "(default log-normal:sigma=0.5,seed=1); eit: heart-lungs|inclusions[:key=value,...] "
                        "(default heart-lungs)")
    p.add_argument("--data", type=Path, default=None, help="eit: a `hybrid generate eit` file to invert (sets --n)")
    p.add_argument("--sample", type=int, default=0, help="eit --data: which sample (default 0)")
    p.add_argument("--domain", default="square", choices=("square", "disk"),
                   help="eit, synthetic: unit square or unit disk (gmsh, h = 2/n)")
    p.add_argument("--patterns", type=int, default=16, help="eit, synthetic: voltage patterns (default 16)")
    p.add_argument("--noise", type=float, default=0.01, help="relative noise level (default 0.01 = 1%%)")
    p.add_argument("--noise-model", default="additive", choices=NOISE_MODELS)
    p.add_argument("--sensors", default="all", help="'all' nodes or K (K quasi-random interior points)")
    p.add_argument("--reg", default=None, choices=INVERSE_REGULARIZERS, help="default h1 (darcy), tv (eit)")
    p.add_argument("--weight", type=float, default=None, help="regularization weight (default 1e-5 darcy, 1e-7 eit)")
    p.add_argument("--method", default="adjoint", choices=INVERSE_METHODS,
                   help="adjoint (from the best-fitting constant), learned (a trained network alone: darcy, a "
                        "pressure -> coefficient map on full-field data; eit, a `hybrid train nio|deeponet` run) or "
                        "learned+adjoint (its estimate as the adjoint's initial guess)")
    p.add_argument("--model", type=Path, default=None,
                   help="learned methods: darcy, the inverse-map checkpoint (default "
                        "bench/models/darcy_inverse_mgno_nN.pt for --n N when present); eit, the run directory or "
                        "checkpoint of `hybrid train nio|deeponet` on `hybrid generate eit` data")
    p.add_argument("--optimizer", default="lbfgs", choices=INVERSE_OPTIMIZERS)
    p.add_argument("--maxiter", type=int, default=200)
    p.add_argument("--tau", type=float, default=1.1, help="discrepancy-principle factor (default 1.1)")
    p.add_argument("--lr", type=float, default=0.05, help="Adam learning rate (default 0.05)")
    p.add_argument("--solver", default="direct-superlu",
                   help="linear solver of the forward/adjoint solves: a --method name of `hybrid solve` "
                        "(default direct-superlu; pyamg-sa+cg for large n)")
    p.add_argument("--data-refine", type=int, default=2, help="data from a mesh this many times finer (default 2)")
    p.add_argument("--seed", type=int, default=0, help="sensor placement and noise")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run=run)


def _sensors(text: str):
    if text == "all":
        return "all"
    try:
        k = int(text)
    except ValueError:
        raise ValueError(f"--sensors {text!r}: expected 'all' or a positive number of sensors") from None
    if k < 1:
        raise ValueError(f"--sensors must be 'all' or a positive number, got {k}")
    return k


def check_args(args) -> None:
    """What the command line alone can tell, before any mesh or solve."""
    from solvers.linear.methods import METHODS
    from solvers.sampling import field_from_spec

    from ..inverse.noise import check_noise_level

    eit = args.problem == "eit"
    args.truth = args.truth or ("heart-lungs" if eit else "log-normal:sigma=0.5,seed=1")
    args.reg = args.reg or ("tv" if eit else "h1")
    args.weight = (1e-7 if eit else 1e-5) if args.weight is None else args.weight
    if eit:
        if args.method in LEARNED and args.model is None:
            raise ValueError(f"--method {args.method} for eit needs --model RUN (a `hybrid train nio` or `hybrid "
                             f"train deeponet` run on `hybrid generate eit` data at this --n)")
        if args.sensors != "all":
            raise ValueError("--sensors is for darcy; EIT observes the boundary fluxes of every pattern")
        if args.data is not None and not args.data.exists():
            raise FileNotFoundError(f"--data {args.data}: no such file")
        if args.patterns < 1:
            raise ValueError(f"--patterns must be a positive integer, got {args.patterns}")
    elif args.data is not None:
        raise ValueError("--data is for eit (darcy data are synthetic: --truth)")
    if args.n < 2:
        raise ValueError(f"--n must be an integer >= 2, got {args.n}")
    if args.data_refine < 1:
        raise ValueError(f"--data-refine must be a positive integer, got {args.data_refine}")
    if args.maxiter < 1:
        raise ValueError(f"--maxiter must be a positive integer, got {args.maxiter}")
    try:
        check_noise_level(args.noise)
    except ValueError as e:
        raise ValueError(f"--noise {args.noise}: {e}") from None
    if not (args.weight >= 0 and args.weight < float("inf")):
        raise ValueError(f"--weight must be finite and non-negative, got {args.weight}")
    if not args.tau >= 1:
        raise ValueError(f"--tau must be >= 1, got {args.tau}")
    if args.solver not in METHODS:
        raise ValueError(f"--solver {args.solver!r}: unknown; use one of: {', '.join(METHODS)}")
    if eit:
        from ..inverse import phantom

        phantom(args.truth)
    else:
        field_from_spec(args.truth)  # raises naming a bad field name or parameter
    _sensors(args.sensors)
    if args.method in LEARNED and eit:
        if not Path(args.model).exists():
            raise FileNotFoundError(f"--model {args.model}: no such run directory or checkpoint")
    elif args.method in LEARNED:
        if args.sensors != "all":
            raise ValueError(f"--method {args.method} reads the pressure at every node; use --sensors all "
                             f"(or --method adjoint for sensor data)")
        args.model = _model_path(args)
    elif args.model is not None:
        raise ValueError(f"--model is for --method learned or learned+adjoint, not {args.method}")


def _model_path(args) -> Path:
    from .bench import inverse_model

    if args.model is None:
        default = inverse_model(args.n)
        if not default.exists():
            raise ValueError(f"--method {args.method} needs --model FILE.pt (a trained inverse map; none shipped "
                             f"for n = {args.n}: {default})")
        return default
    if not Path(args.model).exists():
        raise FileNotFoundError(f"--model {args.model}: no such checkpoint")
    return Path(args.model)


# -- problems and methods: registries (names in hybrid.names) ---------------------------------------------------
def _darcy(args):
    from ..inverse import darcy_problem

    return darcy_problem(args.n, args.truth, noise=args.noise, sensors=_sensors(args.sensors),
                         noise_model=args.noise_model, seed=args.seed, refine=args.data_refine, method=args.solver)


def _eit(args):
    from ..inverse import eit_from_file, eit_problem

    if args.data is not None:
        problem = eit_from_file(args.data, args.sample, noise=args.noise, noise_model=args.noise_model,
                                seed=args.seed, method=args.solver)
        args.n = int(round(np.sqrt(problem.solver.ndofs))) - 1
        return problem
    return eit_problem(args.domain, args.n, args.truth, patterns=args.patterns, noise=args.noise,
                       noise_model=args.noise_model, seed=args.seed, refine=args.data_refine, method=args.solver)


def _adjoint(args, problem, callback):
    from ..inverse import invert_darcy, invert_eit

    if args.problem == "eit":
        return invert_eit(problem.data, problem.solver, noise_norm=problem.noise_norm if args.noise > 0 else None,
                          tau=args.tau, reg=args.reg, weight=args.weight, optimizer=args.optimizer,
                          maxiter=args.maxiter, lr=args.lr, truth=problem.truth, callback=callback)
    return invert_darcy(problem.data, problem.family, observe=problem.observe, solver=problem.solver,
                        noise_norm=problem.noise_norm if args.noise > 0 else None, tau=args.tau, reg=args.reg,
                        weight=args.weight, optimizer=args.optimizer, maxiter=args.maxiter, lr=args.lr,
                        truth=problem.truth, callback=callback)


def _learned(args, problem, callback):
    from ..inverse.learned import invert_learned

    if args.problem == "eit":
        from ..inverse import invert_eit_learned

        return invert_eit_learned(problem.data, problem.solver, args.model, truth=problem.truth,
                                  noise_norm=problem.noise_norm if args.noise > 0 else None, tau=args.tau,
                                  callback=callback)
    return invert_learned(problem.data, problem.family, args.model, observe=problem.observe, solver=problem.solver,
                          noise_norm=problem.noise_norm if args.noise > 0 else None, tau=args.tau,
                          truth=problem.truth, callback=callback)


def _learned_adjoint(args, problem, callback):
    from ..inverse.learned import invert_hybrid

    if args.problem == "eit":
        from ..inverse import invert_eit_hybrid

        return invert_eit_hybrid(problem.data, problem.solver, args.model,
                                 noise_norm=problem.noise_norm if args.noise > 0 else None, tau=args.tau, reg=args.reg,
                                 weight=args.weight, optimizer=args.optimizer, maxiter=args.maxiter, lr=args.lr,
                                 truth=problem.truth, callback=callback)
    return invert_hybrid(problem.data, problem.family, args.model, observe=problem.observe, solver=problem.solver,
                         noise_norm=problem.noise_norm if args.noise > 0 else None, tau=args.tau, reg=args.reg,
                         weight=args.weight, optimizer=args.optimizer, maxiter=args.maxiter, lr=args.lr,
                         truth=problem.truth, callback=callback)


LEARNED = ("learned", "learned+adjoint")
#: ``hybrid invert PROBLEM`` -> maker(args) -> problem (family, solver, observe, data, noise_norm, truth)
PROBLEMS = {"darcy": _darcy, "eit": _eit}
#: ``--method`` -> runner(args, problem, callback) -> InversionResult
METHODS = {"adjoint": _adjoint, "learned": _learned, "learned+adjoint": _learned_adjoint}


def run(args) -> int:
    from tqdm import tqdm

    from meshes import GridView

    from ..plots import save_fields, save_history, save_mesh_fields

    check_args(args)
    args.out.mkdir(parents=True, exist_ok=True)
    problem = PROBLEMS[args.problem](args)
    family = problem.solver.family
    what = ("all nodes" if args.sensors == "all" else args.sensors + " sensors") if args.problem == "darcy" else \
        f"{problem.solver.npatterns} patterns x {problem.solver.nboundary} boundary nodes ({problem.description})"
    print(f"{args.problem}: n={args.n}, {problem.solver.ndofs} dofs, {what}, noise {args.noise:g} "
          f"({args.noise_model}), reg {args.reg} weight {args.weight:g}, {args.method} ({args.optimizer})")
    bar = tqdm(total=args.maxiter, disable=args.no_progress, file=sys.stderr, desc="invert", unit="it")

    def progress(rec):
        if rec["iteration"] > 0:
            bar.update(1)
        bar.set_postfix(misfit=f"{rec['misfit']:.2e}", error=f"{rec.get('rel_error', float('nan')):.3f}")

    result = METHODS[args.method](args, problem, progress)
    bar.close()

    fields = {"truth": problem.truth, "reconstruction": result.a, "error": result.a - problem.truth}
    if args.problem == "darcy":
        view = GridView(family.mesh)
        fields_png = save_fields(args.out / "coefficient.png", {k: view.to_grid(v) for k, v in fields.items()})
    else:
        fields_png = save_mesh_fields(args.out / "coefficient.png", problem.solver.coordinates,
                                      np.asarray(family.template.space.dofmap.list), fields)
    files = {
        "fields": fields_png,
        "history": save_history(args.out / "misfit.png",
                                {"misfit ||Hu-d||/||d||": result.history["misfit"],
                                 "coefficient rel. L2 error": result.history["rel_error"]},
                                ylabel="relative", hlines={"tau * noise": result.target}),
    }
    summary = {"problem": args.problem, "n": args.n, "dofs": problem.solver.ndofs, "truth": args.truth,
               "noise": args.noise, "noise_model": args.noise_model, "sensors": args.sensors, "reg": args.reg,
               "weight": args.weight, "method": args.method, "optimizer": args.optimizer, "tau": args.tau,
               "solver": args.solver, "data_refine": args.data_refine, "seed": args.seed,
               **({"data": None if args.data is None else str(args.data), "sample": args.sample, "domain": args.domain,
                   "patterns": problem.solver.npatterns} if args.problem == "eit" else {}),
               "model": None if args.model is None else str(args.model),
               "rel_l2_coeff_initial": result.history["rel_error"][0], **result.summary(),
               "history": result.history, "files": {k: str(v) for k, v in files.items()}}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1, default=float))
    np.save(args.out / "coefficient.npy", result.a)
    print(f"{result.stopped} after {result.iterations} iterations ({result.forward_solves} forward + "
          f"{result.adjoint_solves} adjoint solves, {result.seconds:.2f} s): misfit {result.misfit:.3e}"
          f"{'' if result.target is None else f' (target {result.target:.3e})'}, coefficient rel. L2 error "
          f"{result.history['rel_error'][0]:.3f} -> {result.history['rel_error'][-1]:.4f}")
    print(f"wrote {args.out}/summary.json, coefficient.png, misfit.png, coefficient.npy")
    return 0
