"""Solver in the loop: 50 Darcy solves with a coefficient that changes from solve to solve.

``a_t(x) = exp(s (cos(t) g0(x) + sin(t) g1(x)))``, ``t`` from 0 to pi/2: two fixed Gaussian random fields
rotate into each other (the contrast stays ``exp(+-s)``-like while the geometry moves). Every matrix
comes from :class:`solvers.DarcyFamily` (one sparse product per coefficient, no reassembly) and every
solve is RS-AMG + CG to a true relative residual of 1e-8. Strategies, as :func:`solvers.linear.solve_sequence`
runs them:

- ``rebuild``: a new AMG hierarchy for every matrix (what a script calling ``solve`` in a loop does);
- ``refresh``: the first hierarchy's transfers kept, Galerkin coarse operators recomputed per matrix;
- ``refresh+projection``: refresh, and each solve starts from the Galerkin projection onto the last 8
  solutions (a reduced basis learned from the loop itself).

Run: ``.venv/bin/python examples/solver_in_the_loop.py [n] [solves]``
"""

from __future__ import annotations

import sys
import time

import meshes
from solvers import DarcyFamily
from solvers.linear import AMG, CG, solve_sequence
from solvers.sampling import rotating_log_normal

STRATEGIES = {
    "rebuild": dict(reuse="rebuild", warm_start=None),
    "refresh": dict(reuse="refresh", warm_start=None),
    "refresh+projection": dict(reuse="auto", warm_start="projection"),
}


def main(n: int = 128, solves: int = 50, rtol: float = 1e-8) -> dict:
    family = DarcyFamily(meshes.unit_square(n))  # f = 1, u = 0 on the boundary
    results = {}
    for name, options in STRATEGIES.items():
        t = time.perf_counter()
        res = solve_sequence((family.system(a) for a in rotating_log_normal(n, solves)), CG(precond=AMG("rs")),
                             rtol=rtol, **options)
        results[name] = dict(seconds=time.perf_counter() - t, iterations=res.iterations,
                             rebuilds=res.rebuilds, converged=res.converged, max_residual=res.max_residual,
                             last=res.solutions[-1].x)
        print(f"{name:20s} {results[name]['seconds']:7.2f} s  {res.iterations:5d} iterations  "
              f"{res.rebuilds:3d} AMG setups  all converged: {res.converged}  "
              f"max true residual {res.max_residual:.1e}")
    return results


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    main(*args)
