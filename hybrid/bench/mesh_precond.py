"""``hybrid bench hybrid --domains l-shape,plate-holes``: the algebraic V-cycle as a learned preconditioner on
the L-shape and plate-with-holes Darcy matrices, beside pyamg's SA and RS AMG with CG.

For each domain (meshes and data of the :mod:`hybrid.bench.mesh_operators` bundle): the two-phase
coefficients of the first ``train`` samples give the training matrices, those of the last ``test`` samples
the test matrices (unseen). The V-cycle (:mod:`hybrid.precond.algebraic`) is trained on the energy norm of
its error propagation and runs on pyamg's SA hierarchy of each test matrix, built at setup. Every solve goes
to a true relative residual of 1e-8 (f = lumped mass of 1, u = 0 on the boundary); iterations and times are
medians over the test matrices, all methods in one run. The learned V-cycle appears alone (FGMRES) and inside
:class:`hybrid.precond.Safeguarded` with SA-AMG as fallback (trained and untrained), with the counts of
accepted and rejected learned steps.
"""

from __future__ import annotations

import time

import numpy as np

from .mesh_operators import DOMAINS, bundle_domains, check_domains, load_bundle

#: the JSON files' ``suite``
SUITE = "algebraic-mgno-precond"
CLASSICAL = ("pyamg-sa+cg", "pyamg-rs+cg")
LEARNED = ("algebraic-vcycle+fgmres", "safeguarded-algebraic-vcycle+fgmres", "safeguarded-untrained-vcycle+fgmres")
RTOL = 1e-8


def _methods(vcycle, untrained) -> dict:
    from solvers.linear import AMG, CG, FGMRES

    from ..precond import Safeguarded
    from ..precond.algebraic import AlgebraicVCyclePreconditioner

    return {
        "pyamg-sa+cg": lambda: CG(precond=AMG("sa")),
        "pyamg-rs+cg": lambda: CG(precond=AMG("rs")),
        "algebraic-vcycle+fgmres": lambda: FGMRES(precond=AlgebraicVCyclePreconditioner(vcycle)),
        "safeguarded-algebraic-vcycle+fgmres": lambda: FGMRES(precond=Safeguarded(
            AlgebraicVCyclePreconditioner(vcycle), AMG("sa"))),
        "safeguarded-untrained-vcycle+fgmres": lambda: FGMRES(precond=Safeguarded(
            AlgebraicVCyclePreconditioner(untrained), AMG("sa"))),
    }


def run(bundle, domains=tuple(DOMAINS), train: int = 8, test: int = 5, steps: int = 100, channels: int = 8,
        maxiter: int = 500, log=print) -> list[dict]:
    """One record per domain and method (see the module docstring)."""
    import torch

    from solvers.linear import LinearProblem, solve

    from ..operators.algebraic_mgno import boundary_nodes, p1_laplacian
    from ..precond.algebraic import AlgebraicVCycle, train_vcycle
    from ..training.nodal import lumped_mass

    bundle = load_bundle(bundle)
    absent = [d for d in check_domains(domains) if f"{d}/coefficient" not in bundle]
    if absent:
        raise ValueError(f"the bundle has no {', '.join(absent)} (it has {', '.join(bundle_domains(bundle))})")
    records = []
    for name in domains:
        coords, cells = bundle[f"{name}/coordinates"], bundle[f"{name}/cells"]
        a = bundle[f"{name}/coefficient"].astype(np.float64)
        if train + test > len(a):
            raise ValueError(f"{name}: {train} training + {test} test matrices, the bundle has {len(a)} samples")
        constrained = boundary_nodes(cells, len(coords))
        b = lumped_mass(coords, cells)
        b[constrained] = 0.0

        def matrix(i):
            return p1_laplacian(coords, cells, constrained, coefficient=a[i])

        train_mats = [matrix(i) for i in range(train)]
        test_mats = [matrix(len(a) - 1 - i) for i in range(test)]
        torch.manual_seed(0)
        untrained = AlgebraicVCycle(train_mats[0], channels=channels)
        torch.manual_seed(0)
        vcycle = AlgebraicVCycle(train_mats[0], channels=channels)
        t = time.perf_counter()
        losses = train_vcycle(vcycle, train_mats, steps=steps, log=log)
        train_s = time.perf_counter() - t
        first, last = float(np.mean(losses[:10])), float(np.mean(losses[-10:]))
        log(f"{name}: trained {steps} steps in {train_s:.0f} s, energy loss {first:.3f} -> {last:.3f}")
        levels = len(vcycle.mg.counts)
        for label, make in _methods(vcycle, untrained).items():
            its, times, res, conv, accepted, rejected = [], [], [], [], 0, 0
            for A in test_mats:
                t = time.perf_counter()
                sol = solve(LinearProblem(A, b), make(), rtol=RTOL, maxiter=maxiter)
                times.append(time.perf_counter() - t)
                its.append(sol.iterations)
                res.append(float(np.linalg.norm(b - A @ sol.x) / np.linalg.norm(b)))
                conv.append(bool(res[-1] <= RTOL))
                pc = sol.stats.get("precond", {})
                accepted += int(pc.get("accepted", 0))
                rejected += int(pc.get("rejected", 0))
            rec = {"problem": f"darcy-two-phase-{name}", "domain": name, "dofs": A.shape[0], "method": label,
                   "iterations": float(np.median(its)), "iterations_all": its, "total_s": float(np.median(times)),
                   "total_s_spread": [float(min(times)), float(max(times))], "rel_residual": max(res),
                   "converged": all(conv), "matrices": len(test_mats), "threads": torch.get_num_threads()}
            if label.startswith("safeguarded"):
                rec.update(accepted=accepted, rejected=rejected)
            if "vcycle" in label:
                rec.update(model=f"AlgebraicVCycle(channels={channels}, {vcycle.amg}, {levels} levels)",
                           train_steps=steps, train_s=round(train_s, 1), train_matrices=len(train_mats),
                           energy_loss_first=first, energy_loss_last=last)
            records.append(rec)
            log(f"{name} {label}: {rec['iterations']:.0f} it, {rec['total_s']:.3f} s, converged {rec['converged']}"
                + (f", accepted {accepted} rejected {rejected}" if label.startswith("safeguarded") else ""))
    return records


COLUMNS = [("domain", "domain", ""), ("dofs", "dofs", "d"), ("method", "method", ""), ("iters", "iterations", ".0f"),
           ("total s", "total_s", ".3f"), ("true rel. res.", "rel_residual", ".1e"), ("converged", "converged", ""),
           ("accepted", "accepted", "d"), ("rejected", "rejected", "d")]
