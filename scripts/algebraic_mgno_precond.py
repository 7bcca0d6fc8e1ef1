"""The algebraic V-cycle as a learned preconditioner on the L-shape and plate-with-holes Darcy matrices.

For each domain (meshes and data from ``scripts/algebraic_mgno_comparison.py prepare``): the two-phase
coefficients of the first ``--train`` samples give the training matrices, those of the last ``--test`` samples
the test matrices (unseen). The V-cycle (``hybrid.precond.algebraic``) is trained on the energy norm of its
error propagation and runs on pyamg's SA hierarchy of each test matrix, built at setup. Every solve goes to a
true relative residual of 1e-8 (f = 1, u = 0 on the boundary); iterations and times are medians over the test
matrices, all methods in one run.

    python scripts/algebraic_mgno_precond.py --json bench/results/algebraic-mgno-precond.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None) -> None:
    import torch
    from hybrid.operators.algebraic_mgno import boundary_nodes, p1_laplacian
    from hybrid.precond import Safeguarded
    from hybrid.precond.algebraic import AlgebraicVCycle, AlgebraicVCyclePreconditioner, train_vcycle
    from hybrid.training.nodal import lumped_mass
    from solvers.linear import AMG, CG, FGMRES, LinearProblem, solve

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", default="data/mesh/bundle.npz")
    p.add_argument("--domains", default="l-shape,plate-holes")
    p.add_argument("--train", type=int, default=8)
    p.add_argument("--test", type=int, default=5)
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--channels", type=int, default=8)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    bundle = dict(np.load(args.bundle))
    records = []
    for name in args.domains.split(","):
        coords, cells = bundle[f"{name}/coordinates"], bundle[f"{name}/cells"]
        a = bundle[f"{name}/coefficient"].astype(np.float64)
        constrained = boundary_nodes(cells, len(coords))
        b = lumped_mass(coords, cells)
        b[constrained] = 0.0

        def matrix(i):
            return p1_laplacian(coords, cells, constrained, coefficient=a[i])

        train = [matrix(i) for i in range(args.train)]
        test = [matrix(len(a) - 1 - i) for i in range(args.test)]
        torch.manual_seed(0)
        untrained = AlgebraicVCycle(train[0], channels=args.channels)
        torch.manual_seed(0)
        vcycle = AlgebraicVCycle(train[0], channels=args.channels)
        t = time.perf_counter()
        losses = train_vcycle(vcycle, train, steps=args.steps, log=print)
        train_s = time.perf_counter() - t
        print(f"{name}: trained {args.steps} steps in {train_s:.0f} s, energy loss {np.mean(losses[:10]):.3f} -> "
              f"{np.mean(losses[-10:]):.3f}")
        methods = {
            "pyamg-sa+cg": lambda: CG(precond=AMG("sa")),
            "pyamg-rs+cg": lambda: CG(precond=AMG("rs")),
            "algebraic-vcycle+fgmres": lambda: FGMRES(precond=AlgebraicVCyclePreconditioner(vcycle)),
            "safeguarded-algebraic-vcycle+fgmres": lambda: FGMRES(precond=Safeguarded(
                AlgebraicVCyclePreconditioner(vcycle), AMG("sa"))),
            "safeguarded-untrained-vcycle+fgmres": lambda: FGMRES(precond=Safeguarded(
                AlgebraicVCyclePreconditioner(untrained), AMG("sa"))),
        }
        for label, make in methods.items():
            its, times, res, conv, accepted, rejected = [], [], [], [], 0, 0
            for A in test:
                t = time.perf_counter()
                sol = solve(LinearProblem(A, b), make(), rtol=1e-8, maxiter=500)
                times.append(time.perf_counter() - t)
                its.append(sol.iterations)
                res.append(float(np.linalg.norm(b - A @ sol.x) / np.linalg.norm(b)))
                conv.append(bool(res[-1] <= 1e-8))
                pc = sol.stats.get("precond", {})
                accepted += int(pc.get("accepted", 0))
                rejected += int(pc.get("rejected", 0))
            rec = {"problem": f"darcy-two-phase-{name}", "dofs": A.shape[0], "method": label,
                   "iterations": float(np.median(its)), "iterations_all": its, "total_s": float(np.median(times)),
                   "total_s_spread": [float(min(times)), float(max(times))], "rel_residual": max(res),
                   "converged": all(conv), "matrices": len(test)}
            if label.startswith("safeguarded"):
                rec.update(accepted=accepted, rejected=rejected)
            if "vcycle" in label:
                rec.update(model=f"AlgebraicVCycle(channels={args.channels}, sa, 4 levels)",
                           train_steps=args.steps, train_s=round(train_s, 1), train_matrices=len(train),
                           energy_loss_first=float(np.mean(losses[:10])), energy_loss_last=float(np.mean(losses[-10:])))
            records.append(rec)
            print(f"{name} {label}: {rec['iterations']:.0f} it, {rec['total_s']:.3f} s, converged {rec['converged']}"
                  + (f", accepted {accepted} rejected {rejected}" if label.startswith("safeguarded") else ""))
    if args.json:
        out = {"suite": "algebraic-mgno-precond",
               "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "command": " ".join(sys.argv),
               "machine": {"cpu": platform.processor() or platform.machine(), "cores": 2, "device": "cpu"},
               "versions": {"python": platform.python_version(), "torch": torch.__version__}, "records": records}
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
