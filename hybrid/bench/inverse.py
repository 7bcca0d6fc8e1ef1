"""``hybrid bench inverse``: coefficient recovery from pressure data (see shared BENCH.md, suite ``inverse``).

``problem = "darcy-coeff"``: recover the Darcy permeability on ``unit_square(n)`` (``f = 1``, ``u = 0`` on the
boundary) from the pressure at every node, solved on a mesh twice as fine (no inverse crime), with additive
Gaussian noise of relative size ``noise``. Test sets (``coefficients``): ``log-normal`` (``exp(0.5 g)``, ``g``
a Gaussian random field, ``index`` 0..samples-1) and ``two-phase`` ({3, 12}, discontinuous: an H1-regularized
reconstruction can only smear its jumps). Method ``adjoint``: :func:`hybrid.inverse.invert_darcy`
(L-BFGS-B on the log-coefficient, H1 regularization, exact adjoint gradients, the discrepancy principle
with tau = 1.1 when ``noise > 0``, otherwise at most ``maxiter`` iterations), started from the best-fitting
constant. With a trained inverse map (``--model``, :mod:`hybrid.inverse.learned`): ``learned`` (the
network's estimate alone; its seconds are the network's) and ``learned+adjoint`` (the estimate as the
initial guess of the same adjoint run; network time included), with the time each needs to reach the
adjoint's final error on the same sample. Per row: medians over the
test set of the relative L2 error of the coefficient, the relative data misfit, seconds per
reconstruction (inversion only; data generation excluded), iterations and solve counts.

``problem = "eit"``: recover the conductivity from the Dirichlet-to-Neumann data of 16 trigonometric voltage
patterns (:func:`hybrid.inverse.eit_problem`; noise relative to the whole data). The data are solved on the
inversion mesh itself (``EIT_REFINE = 1``, an inverse crime, said so in every row as ``data_refine``): at
``unit_square(32)`` the part of the data that the inclusions explain beyond the best constant is 0.3% of
``||d||``, while the flux discretization gap between the mesh and one twice as fine is 1.6%, so with finer data
the optimizer would fit the discretization, not the inclusions. The same 0.3% means that 1% noise already
hides the inclusions (the discrepancy principle then stops at the best constant) on ``unit_square(n // 2)`` (``eit-inclusions``) or the unit disk
with ``h = 4 / n`` (``eit-disk-inclusions``): three random ellipses of conductivity in [0.3, 3] on 1
(``index`` = phantom seed). Method ``adjoint``: :func:`hybrid.inverse.invert_eit` (L-BFGS-B on log sigma, TV
with weight ``EIT_WEIGHT``, discrepancy principle when ``noise > 0``), from the best constant. Learned EIT
(NIO, DeepONet, a linear map, learned starts and a learned regularizer) is the test set ``eit-learned``,
:mod:`hybrid.bench.eit_learned`, which trains its models.
"""

from __future__ import annotations

import numpy as np

from .results import median

#: test set name -> field spec with ``{index}`` (training data for learned methods must use other seeds)
COEFFICIENTS = {"log-normal": "log-normal:sigma=0.5,seed=7,index={index}",
                "two-phase": "two-phase:seed=7,index={index}"}
#: EIT test sets: name -> (domain, phantom spec with ``{index}``)
EIT_SETS = {"eit-inclusions": ("square", "inclusions:seed={index}"),
            "eit-disk-inclusions": ("disk", "inclusions:seed={index}")}
EIT_PATTERNS, EIT_WEIGHT, EIT_REFINE = 16, 1e-7, 1
NOISES = (0.0, 0.01, 0.05, 0.1)
#: ``adjoint`` from the best-fitting constant; ``learned``: the network's estimate alone (needs a model);
#: ``learned+adjoint``: the estimate as the adjoint's initial guess (same regularization and stop)
METHODS = ("adjoint", "learned", "learned+adjoint")
LEARNED = ("learned", "learned+adjoint")


def reconstruct(problem, method: str, noise: float, weight: float, maxiter: int, model=None) -> dict:
    """One reconstruction of ``problem`` (a :class:`DarcyInverseProblem`) by ``method``; ``times`` holds the
    elapsed seconds at each iterate (the network's time included), for time-to-error comparisons."""
    import time

    from ..inverse import invert_darcy
    from ..inverse.learned import invert_hybrid, invert_learned

    p = problem
    if method in LEARNED and model is None:
        raise ValueError(f"method {method!r} needs a trained inverse map (--model FILE.pt)")
    stamps = []
    opts = dict(observe=p.observe, solver=p.solver, noise_norm=p.noise_norm if noise > 0 else None, truth=p.truth,
                callback=lambda rec: stamps.append(time.perf_counter()))
    t0 = time.perf_counter()
    if method == "adjoint":
        r = invert_darcy(p.data, p.family, reg="h1", weight=weight, maxiter=maxiter, **opts)
    elif method == "learned":
        r = invert_learned(p.data, p.family, model, **opts)
    elif method == "learned+adjoint":
        r = invert_hybrid(p.data, p.family, model, reg="h1", weight=weight, maxiter=maxiter, **opts)
    else:
        raise ValueError(f"unknown method {method!r}; use one of: {', '.join(METHODS)}")
    times = [t - t0 for t in stamps]
    if method == "learned":
        times = [r.seconds]  # its callback runs after the (diagnostic) forward solve
    errors = r.history["rel_error"]
    return dict(rel_l2_coeff=errors[-1], rel_l2_initial=errors[0], data_misfit=r.misfit, seconds=r.seconds,
                iterations=r.iterations, forward_solves=r.forward_solves, adjoint_solves=r.adjoint_solves,
                stopped=r.stopped, dofs=p.solver.ndofs, errors=list(errors[:len(times)]), times=times)


def reconstruct_eit(problem, noise: float, maxiter: int) -> dict:
    """One adjoint EIT reconstruction of ``problem`` (an :class:`EITInverseProblem`)."""
    from ..inverse import invert_eit

    p = problem
    r = invert_eit(p.data, p.solver, noise_norm=p.noise_norm if noise > 0 else None, reg="tv", weight=EIT_WEIGHT,
                   maxiter=maxiter, truth=p.truth)
    errors = r.history["rel_error"]
    return dict(rel_l2_coeff=errors[-1], rel_l2_initial=errors[0], data_misfit=r.misfit, seconds=r.seconds,
                iterations=r.iterations, forward_solves=r.forward_solves, adjoint_solves=r.adjoint_solves,
                stopped=r.stopped, dofs=p.solver.ndofs, errors=list(errors), times=[])


def run_eit(n: int, samples: int, sets=tuple(EIT_SETS), noises=NOISES, maxiter: int = 200, log=print) -> list[dict]:
    """EIT rows (adjoint) per (test set, noise); ``n`` is the grid parameter of :func:`eit_problem`."""
    from ..inverse import eit_problem

    records = []
    for name in sets:
        domain, spec = EIT_SETS[name]
        for noise in noises:
            runs = [reconstruct_eit(eit_problem(domain, n, spec.format(index=i), patterns=EIT_PATTERNS, noise=noise,
                                                seed=i, refine=EIT_REFINE), noise, maxiter) for i in range(samples)]
            col = {k: [r[k] for r in runs] for k in runs[0]}
            rec = dict(problem="eit", coefficients=name, method="adjoint", n=n, dofs=runs[0]["dofs"], samples=samples,
                       noise=noise, reg="tv", weight=EIT_WEIGHT, patterns=EIT_PATTERNS,
                       data_refine=EIT_REFINE,
                       rel_l2_coeff=median(col["rel_l2_coeff"]), rel_l2_coeff_initial=median(col["rel_l2_initial"]),
                       rel_l2_coeff_spread=[float(np.min(col["rel_l2_coeff"])), float(np.max(col["rel_l2_coeff"]))],
                       data_misfit=median(col["data_misfit"]), seconds_per_reconstruction=median(col["seconds"]),
                       iterations=median(col["iterations"]), forward_solves=median(col["forward_solves"]),
                       adjoint_solves=median(col["adjoint_solves"]), stopped=sorted(set(col["stopped"])))
            records.append(rec)
            if log:
                log(f"{name} n={n} noise={noise:g} adjoint: rel. L2 {rec['rel_l2_coeff']:.4f} (initial "
                    f"{rec['rel_l2_coeff_initial']:.3f}), {rec['seconds_per_reconstruction']:.2f} s, "
                    f"{rec['iterations']:.0f} it, {rec['forward_solves']:.0f} forward solves")
    return records


def seconds_to_reach(run: dict, error: float) -> float | None:
    """Seconds until ``run`` first had a coefficient error <= ``error`` (None: never)."""
    for e, t in zip(run["errors"], run["times"]):
        if e <= error * (1 + 1e-12):
            return t
    return None


def run(n: int, samples: int, coefficients=tuple(COEFFICIENTS), noises=NOISES, weight: float = 1e-5,
        maxiter: int = 200, methods=("adjoint",), model=None, log=print) -> list[dict]:
    """Rows per (test set, noise, method). With ``adjoint`` among the methods, learned rows also give
    ``seconds_to_adjoint_error`` (median over samples of the time to reach that sample's final adjoint
    error; samples that never reach it count as infinite) and ``time_ratio_to_adjoint``."""
    from ..inverse import darcy_problem
    from ..inverse.learned import LearnedInverse

    for name in coefficients:
        if name not in COEFFICIENTS and name not in EIT_SETS:
            raise ValueError(f"unknown test set {name!r}; use one of: {', '.join((*COEFFICIENTS, *EIT_SETS))}")
    eit_sets = [c for c in coefficients if c in EIT_SETS]
    coefficients = [c for c in coefficients if c in COEFFICIENTS]
    for m in methods:
        if m not in METHODS:
            raise ValueError(f"unknown method {m!r}; use one of: {', '.join(METHODS)}")
    if any(m in LEARNED for m in methods):
        if model is None:
            raise ValueError(f"methods {', '.join(m for m in methods if m in LEARNED)} need --model FILE.pt")
        model = model if isinstance(model, LearnedInverse) else LearnedInverse.from_checkpoint(model)
        if model.n != n:
            raise ValueError(f"--model {model.path} was trained at n = {model.n}; this run has n = {n}")
    records = []
    for name in coefficients:
        for noise in noises:
            runs = {m: [] for m in methods}
            for i in range(samples):
                p = darcy_problem(n, COEFFICIENTS[name].format(index=i), noise=noise, seed=i)
                for m in methods:
                    runs[m].append(reconstruct(p, m, noise, weight, maxiter, model))
            for m in methods:
                col = {k: [r[k] for r in runs[m]] for k in runs[m][0]}
                rec = dict(problem="darcy-coeff", coefficients=name, method=m, n=n, dofs=runs[m][0]["dofs"],
                           samples=samples, noise=noise, reg="none" if m == "learned" else "h1", weight=weight,
                           rel_l2_coeff=median(col["rel_l2_coeff"]),
                           rel_l2_coeff_initial=median(col["rel_l2_initial"]),
                           rel_l2_coeff_spread=[float(np.min(col["rel_l2_coeff"])), float(np.max(col["rel_l2_coeff"]))],
                           data_misfit=median(col["data_misfit"]), seconds_per_reconstruction=median(col["seconds"]),
                           iterations=median(col["iterations"]), forward_solves=median(col["forward_solves"]),
                           adjoint_solves=median(col["adjoint_solves"]),
                           stopped=sorted(set(col["stopped"])))
                if m in LEARNED:
                    rec["model"] = model.path
                    if "adjoint" in runs:
                        reach = [seconds_to_reach(r, a["rel_l2_coeff"]) for r, a in zip(runs[m], runs["adjoint"])]
                        t_reach = median([np.inf if t is None else t for t in reach])
                        t_reach = t_reach if np.isfinite(t_reach) else None  # most never reach it
                        rec["seconds_to_adjoint_error"] = t_reach
                        rec["reached_adjoint_error"] = sum(t is not None for t in reach)
                        rec["time_ratio_to_adjoint"] = None if t_reach is None else \
                            t_reach / median([a["seconds"] for a in runs["adjoint"]])
                records.append(rec)
                if log:
                    extra = "" if rec.get("time_ratio_to_adjoint") is None else \
                        (f", adjoint's error after {rec['seconds_to_adjoint_error']:.2f} s "
                         f"({rec['time_ratio_to_adjoint']:.2f} x adjoint's time, {rec['reached_adjoint_error']}/"
                         f"{samples} reach it)")
                    log(f"{name} noise={noise:g} {m}: rel. L2 {rec['rel_l2_coeff']:.4f} (initial "
                        f"{rec['rel_l2_coeff_initial']:.3f}), {rec['seconds_per_reconstruction']:.2f} s, "
                        f"{rec['iterations']:.0f} it{extra}")
    if eit_sets:
        records += run_eit(max(n // 2, 8), samples, eit_sets, noises, maxiter, log)
    return records


COLUMNS = [("problem", "problem", ""), ("coefficients", "coefficients", ""), ("n", "n", "d"),
           ("method", "method", ""), ("noise", "noise", "g"), ("rel. L2 coeff (median)", "rel_l2_coeff", ".4f"),
           ("initial", "rel_l2_coeff_initial", ".3f"), ("data misfit", "data_misfit", ".2e"),
           ("s / reconstruction", "seconds_per_reconstruction", ".2f"), ("iters", "iterations", ".0f"),
           ("forward", "forward_solves", ".0f"), ("adjoint", "adjoint_solves", ".0f"),
           ("s to adjoint's error", "seconds_to_adjoint_error", ".2f"), ("/ adjoint s", "time_ratio_to_adjoint", ".2f")]
