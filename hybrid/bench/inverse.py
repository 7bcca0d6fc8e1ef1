"""``hybrid bench inverse``: coefficient recovery from pressure data (see shared BENCH.md, suite ``inverse``).

``problem = "darcy-coeff"``: recover the Darcy permeability on ``unit_square(n)`` (``f = 1``, ``u = 0`` on the
boundary) from the pressure at every node, solved on a mesh twice as fine (no inverse crime), with additive
Gaussian noise of relative size ``noise``. Test sets (``coefficients``): ``log-normal`` (``exp(0.5 g)``, ``g``
a Gaussian random field, ``index`` 0..samples-1) and ``two-phase`` ({3, 12}, discontinuous: an H1-regularized
reconstruction can only smear its jumps). Method ``adjoint``: :func:`hybrid.inverse.invert_darcy`
(L-BFGS-B on the log-coefficient, H1 regularization, exact adjoint gradients, the discrepancy principle
with tau = 1.1 when ``noise > 0``, otherwise at most ``maxiter`` iterations). Per row: medians over the
test set of the relative L2 error of the coefficient, the relative data misfit, seconds per
reconstruction (inversion only; data generation excluded), iterations and solve counts.
"""

from __future__ import annotations

import numpy as np

from .results import median

#: test set name -> field spec with ``{index}``
COEFFICIENTS = {"log-normal": "log-normal:sigma=0.5,seed=7,index={index}",
                "two-phase": "two-phase:seed=7,index={index}"}
NOISES = (0.0, 0.01, 0.05, 0.1)


def reconstruct(n: int, spec: str, noise: float, seed: int, weight: float, maxiter: int) -> dict:
    from ..inverse import darcy_problem, invert_darcy

    p = darcy_problem(n, spec, noise=noise, seed=seed)
    r = invert_darcy(p.data, p.family, observe=p.observe, solver=p.solver,
                     noise_norm=p.noise_norm if noise > 0 else None, reg="h1", weight=weight, maxiter=maxiter,
                     truth=p.truth)
    return dict(rel_l2_coeff=r.history["rel_error"][-1], rel_l2_initial=r.history["rel_error"][0],
                data_misfit=r.misfit, seconds=r.seconds, iterations=r.iterations, forward_solves=r.forward_solves,
                adjoint_solves=r.adjoint_solves, stopped=r.stopped, dofs=p.solver.ndofs)


def run(n: int, samples: int, coefficients=tuple(COEFFICIENTS), noises=NOISES, weight: float = 1e-5,
        maxiter: int = 200, log=print) -> list[dict]:
    records = []
    for name in coefficients:
        if name not in COEFFICIENTS:
            raise ValueError(f"unknown test set {name!r}; use one of: {', '.join(COEFFICIENTS)}")
        for noise in noises:
            runs = [reconstruct(n, COEFFICIENTS[name].format(index=i), noise, seed=i, weight=weight, maxiter=maxiter)
                    for i in range(samples)]
            col = {k: [r[k] for r in runs] for k in runs[0]}
            rec = dict(problem="darcy-coeff", coefficients=name, method="adjoint", n=n, dofs=runs[0]["dofs"],
                       samples=samples, noise=noise, reg="h1", weight=weight,
                       rel_l2_coeff=median(col["rel_l2_coeff"]), rel_l2_coeff_initial=median(col["rel_l2_initial"]),
                       rel_l2_coeff_spread=[float(np.min(col["rel_l2_coeff"])), float(np.max(col["rel_l2_coeff"]))],
                       data_misfit=median(col["data_misfit"]), seconds_per_reconstruction=median(col["seconds"]),
                       iterations=median(col["iterations"]), forward_solves=median(col["forward_solves"]),
                       adjoint_solves=median(col["adjoint_solves"]),
                       stopped=sorted(set(col["stopped"])))
            records.append(rec)
            if log:
                log(f"{name} noise={noise:g}: rel. L2 {rec['rel_l2_coeff']:.4f} (initial {rec['rel_l2_coeff_initial']:.3f}), "
                    f"{rec['seconds_per_reconstruction']:.2f} s, {rec['iterations']:.0f} it")
    return records


COLUMNS = [("problem", "problem", ""), ("coefficients", "coefficients", ""), ("n", "n", "d"),
           ("method", "method", ""), ("noise", "noise", "g"), ("rel. L2 coeff (median)", "rel_l2_coeff", ".4f"),
           ("initial", "rel_l2_coeff_initial", ".3f"), ("data misfit", "data_misfit", ".2e"),
           ("s / reconstruction", "seconds_per_reconstruction", ".2f"), ("iters", "iterations", ".0f"),
           ("forward", "forward_solves", ".0f"), ("adjoint", "adjoint_solves", ".0f")]
