"""``solve_sequence``: many related systems (a swept or time-dependent coefficient) with setup reuse.

LinearSolve.jl's answer to a solver in a loop is one cache whose matrix is replaced
(``cache.A = A; solve!(cache)``) with ``reuse_precs`` deciding what of the setup survives. This is the
same loop with the policy spelled out, so scripts and benchmarks do not each re-implement it:

- ``reuse="rebuild"``: a fresh setup (AMG hierarchy, factorization) for every matrix;
- ``"keep"``: the first setup serves every later matrix (only the Krylov operator changes);
- ``"refresh"``: numerical refresh (AMG: same ``P``/``R``, new Galerkin coarse operators and smoothers);
- ``"auto"``: refresh, and rebuild when a solve needs more than ``growth`` times the iterations of the
  solve right after the last rebuild (the structure of the coefficient has drifted too far).

Initial guesses (the tolerance stays relative to ``||b||``: a good start means fewer iterations, never a
looser answer):

- ``warm_start="previous"`` (or ``True``): the previous solution;
- ``"projection"``: the Galerkin projection of the new system onto the span of the last ``basis``
  solutions, ``x0 = V (V^T A V)^{-1} V^T b`` with ``V`` orthonormal: the best combination of earlier
  solutions in the energy norm for SPD ``A`` (a reduced basis learned online from the loop itself; its
  cost is ``basis`` matrix-vector products and a QR of an ``n x basis`` array per solve). On a rotating
  log-normal coefficient at n = 256 it cut RS-AMG-CG from 302 to 67 iterations over 50 solves;
- ``None`` / ``False``: the problem's ``x0`` (zeros).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from .algorithm import Algorithm
from .cache import init
from .problem import LinearProblem
from .solution import Solution

REUSE = ("rebuild", "keep", "refresh", "auto")


@dataclass
class SequenceResult:
    """Every solve of the sequence and the totals a user compares strategies by."""

    solutions: list[Solution] = field(default_factory=list)
    rebuilds: int = 0
    wall_s: float = 0.0

    @property
    def converged(self) -> bool:
        """Every solve met its tolerance (true residual)."""
        return all(s.converged for s in self.solutions)

    @property
    def iterations(self) -> int:
        return int(sum(s.iterations for s in self.solutions))

    @property
    def setup_s(self) -> float:
        return float(sum(s.stats.get("setup_s", 0.0) for s in self.solutions))

    @property
    def solve_s(self) -> float:
        return float(sum(s.stats.get("solve_s", 0.0) for s in self.solutions))

    @property
    def max_residual(self) -> float:
        return float(max(s.residual for s in self.solutions)) if self.solutions else float("nan")

    def __repr__(self) -> str:
        return (f"SequenceResult(solves={len(self.solutions)}, converged={self.converged}, "
                f"iterations={self.iterations}, rebuilds={self.rebuilds}, setup_s={self.setup_s:.3g}, "
                f"solve_s={self.solve_s:.3g}, wall_s={self.wall_s:.3g})")


def _as_problem(item) -> LinearProblem:
    if isinstance(item, LinearProblem):
        return item
    if hasattr(item, "A") and hasattr(item, "b"):  # solvers.LinearSystem
        return LinearProblem.from_system(item)
    A, b = item
    return LinearProblem(A, b)


WARM_STARTS = ("previous", "projection", None)


def projection_guess(A, b, basis: list[np.ndarray]) -> np.ndarray | None:
    """``V (V^T A V)^{-1} V^T b`` over the span of ``basis`` (orthonormalized; ``None`` when it is empty
    or the reduced matrix is singular)."""
    if not basis:
        return None
    V, R = np.linalg.qr(np.column_stack(basis))
    keep = np.abs(np.diag(R)) > 1e-12 * np.abs(np.diag(R)).max()
    V = V[:, keep]
    H = V.T @ (A @ V)
    try:
        y = np.linalg.solve(H, V.T @ b)
    except np.linalg.LinAlgError:
        return None
    x0 = V @ y
    return x0 if np.all(np.isfinite(x0)) else None


def solve_sequence(systems: Iterable, alg: Algorithm, *, reuse: str = "auto", warm_start="previous",
                   basis: int = 8, growth: float = 1.5, rtol: float = 1e-8, atol: float = 0.0,
                   maxiter: int | None = None, callback=None) -> SequenceResult:
    """Solve each system of ``systems`` (``LinearSystem``, ``LinearProblem`` or ``(A, b)``; a generator
    is consumed lazily, so assembly can depend on earlier solutions) with one cache.

    ``callback(k, solution)`` is called after solve ``k``. Returns a :class:`SequenceResult`.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from solvers.linear import CG, AMG, solve_sequence
    >>> L = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(400, 400), format="csr")
    >>> mats = ((L + s * sp.identity(400, format="csr"), np.ones(400)) for s in np.linspace(0, 1e-3, 10))
    >>> res = solve_sequence(mats, CG(precond=AMG("rs")), reuse="refresh")
    >>> res.converged, len(res.solutions), res.rebuilds
    (True, 10, 1)
    """
    if reuse not in REUSE:
        raise ValueError(f"reuse must be one of {', '.join(REUSE)}, got {reuse!r}")
    warm_start = {True: "previous", False: None}.get(warm_start, warm_start)
    if warm_start not in WARM_STARTS:
        raise ValueError(f"warm_start must be one of {WARM_STARTS}, got {warm_start!r}")
    if int(basis) != basis or basis < 1:
        raise ValueError(f"basis must be a positive integer, got {basis!r}")
    if not growth > 1:
        raise ValueError(f"growth must be > 1, got {growth!r}")
    out = SequenceResult()
    cache = None
    baseline = None
    history: list[np.ndarray] = []
    t0 = time.perf_counter()
    for k, item in enumerate(systems):
        problem = _as_problem(item)
        if warm_start == "projection" and problem.petsc:
            raise ValueError("warm_start='projection' works on scipy matrices; use 'previous' with PETSc Mat/Vec")
        if cache is None:
            cache = init(problem, alg, rtol=rtol, atol=atol, maxiter=maxiter)
            mode = "rebuild"
        else:
            mode = reuse
            if reuse == "auto":
                last = out.solutions[-1].iterations
                mode = "rebuild" if baseline is not None and last > growth * max(baseline, 1) else "refresh"
            cache.update(problem.A, reuse=mode, p=problem.p)
        x0 = problem.x0
        if history and history[-1].shape == np.shape(problem.b):
            if warm_start == "previous":
                x0 = history[-1]
            elif warm_start == "projection":
                guess = projection_guess(problem.A, problem.b, history[-basis:])
                x0 = guess if guess is not None else history[-1]
        sol = cache.solve(problem.b, x0=x0)
        if mode == "rebuild":
            out.rebuilds += 1
            baseline = sol.iterations
        out.solutions.append(sol)
        if sol.converged:
            history = (history + [sol.x])[-basis:]
        if callback is not None:
            callback(k, sol)
    out.wall_s = time.perf_counter() - t0
    return out
