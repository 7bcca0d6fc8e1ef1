"""``init(problem, alg) -> SolverCache`` and ``solve(problem, alg)``: setup once, solve many times."""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp

from .algorithm import Algorithm, Tolerances
from .problem import LinearProblem, check_problem, is_petsc
from .solution import ReturnCode, SetupBreakdown, Solution, SolveError

#: a solver's claimed success is overruled when the true residual exceeds its target by this factor
TRUE_RESIDUAL_SLACK = 100.0


def default_algorithm(A) -> Algorithm:
    """Direct SuperLU below 50k unknowns, otherwise GMRES with smoothed-aggregation AMG."""
    from .direct import Direct
    from .krylov import GMRES
    from .preconditioners import AMG

    if is_petsc(A):
        from .petsc import PETScKSP

        return PETScKSP("gmres", "gamg")
    return Direct() if A.shape[0] <= 50_000 else GMRES(precond=AMG("sa"))


class SolverCache:
    """Reusable solver state for one matrix (LinearSolve.jl's ``init``/``solve!``).

    The setup (factorization, AMG hierarchy, PETSc KSP) runs on the first solve and again only after
    ``A`` is replaced; ``solve(b)`` reuses it for each right-hand side.

    >>> import numpy as np, scipy.sparse as sp
    >>> from solvers.linear import LinearProblem, init, CG, AMG
    >>> A = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(200, 200), format="csr")
    >>> cache = init(LinearProblem(A, np.ones(200)), CG(precond=AMG("sa")))
    >>> s1 = cache.solve(); s2 = cache.solve(np.arange(200.0))
    >>> cache.setup_count
    1
    """

    def __init__(self, problem: LinearProblem, alg: Algorithm, rtol: float = 1e-8, atol: float = 0.0,
                 maxiter: int | None = None, callback=None):
        if not isinstance(alg, Algorithm):
            raise TypeError(f"alg must be an algorithm value (CG(), GMRES(...), ...), got {alg!r}")
        if not (rtol >= 0 and atol >= 0) or (rtol == 0 and atol == 0):
            raise ValueError(f"tolerances must be non-negative and not both zero: rtol={rtol}, atol={atol}")
        self.alg = alg
        self._A = problem.A
        self.b = problem.b
        self.x0 = problem.x0
        self.rtol, self.atol, self.maxiter, self.callback = rtol, atol, maxiter, callback
        self._state = None
        self._stale = True
        self.setup_count = 0
        self.setup_s = 0.0

    @property
    def A(self):
        return self._A

    @A.setter
    def A(self, value):
        """Replacing the matrix marks the setup stale; it is rebuilt lazily on the next solve."""
        self._A = value
        self._stale = True

    def _fail(self, b, message, retcode=ReturnCode.InvalidInput) -> Solution:
        """No solve happened: ``x = 0``, whose true relative residual is 1 (NaN when the input is unusable)."""
        x = np.zeros_like(b) if not is_petsc(b) else b.duplicate()
        rel = 1.0 if retcode is not ReturnCode.InvalidInput else np.nan
        return Solution(x, retcode, 0, np.zeros(0), {"message": message, "setup_s": 0.0, "solve_s": 0.0,
                                                      "rel_residual": rel})

    def solve(self, b=None, x0=None) -> Solution:
        """Solve with right-hand side ``b`` (default: the problem's) from ``x0`` (default: problem's or 0)."""
        A = self._A
        b = self.b if b is None else b
        x0 = self.x0 if x0 is None else x0
        problem_msg = check_problem(A, b, x0, check_matrix_values=self._stale)
        if problem_msg is None and is_petsc(A) and not self.alg.petsc:
            problem_msg = f"{self.alg.label} works on scipy matrices; use PETScKSP for PETSc Mat/Vec"
        if problem_msg is None and self.alg.needs_matrix and not (sp.issparse(A) or isinstance(A, np.ndarray)
                                                                 or is_petsc(A)):
            problem_msg = f"{self.alg.label} needs an explicit matrix, not a {type(A).__name__}"
        if problem_msg is not None:
            return self._fail(b, problem_msg)
        if not is_petsc(b):
            b = np.asarray(b)
            x0 = np.zeros(A.shape[0], dtype=np.result_type(b.dtype, getattr(A, "dtype", b.dtype))) \
                if x0 is None else np.asarray(x0)
        if self._stale:
            t = time.perf_counter()
            try:
                self._state = self.alg.setup(A)
            except SetupBreakdown as e:  # numerical failure (singular incomplete factor, ...)
                return self._fail(b, f"setup broke down: {e}", ReturnCode.Breakdown)
            except ValueError as e:  # preconditioner rejected the matrix (zero diagonal, ...)
                return self._fail(b, f"setup failed: {e}")
            self.setup_s = time.perf_counter() - t
            self.setup_count += 1
            self._stale = False
            setup_now = self.setup_s
        else:
            setup_now = 0.0
        n = A.getSize()[0] if is_petsc(A) else A.shape[0]
        maxiter = self.maxiter if self.maxiter is not None else self.alg.default_maxiter(n)
        tol = Tolerances(self.rtol, self.atol, int(maxiter))
        t = time.perf_counter()
        res = self.alg.run(self._state, A, b, x0, tol, self.callback)
        solve_s = time.perf_counter() - t
        rel, bnorm = true_residual(A, b, res.x)
        retcode, message = res.retcode, res.message or res.retcode.value
        if retcode is ReturnCode.Success and rel * bnorm > TRUE_RESIDUAL_SLACK * tol.target(bnorm):
            retcode = ReturnCode.Breakdown
            message = (f"{self.alg.label} reported convergence but the true relative residual is {rel:.3e} "
                       f"(requested rtol={self.rtol:g}, atol={self.atol:g})")
        stats = {"setup_s": setup_now, "solve_s": solve_s, "rel_residual": rel, "message": message,
                 "method": self.alg.label}
        return Solution(res.x, retcode, int(res.iterations), np.asarray(res.residuals, dtype=float), stats)


def true_residual(A, b, x) -> tuple[float, float]:
    """``(||b - A x|| / ||b||, ||b||)``, for scipy and PETSc objects."""
    if is_petsc(A):
        r = b.duplicate()
        A.mult(x, r)
        r.aypx(-1.0, b)
        bn, rn = b.norm(), r.norm()
        r.destroy()
    else:
        bn = float(np.linalg.norm(b))
        rn = float(np.linalg.norm(b - A @ x)) if np.all(np.isfinite(x)) else np.inf
    return (rn / bn if bn > 0 else rn), bn


def init(problem: LinearProblem, alg: Algorithm | None = None, *, rtol: float = 1e-8, atol: float = 0.0,
         maxiter: int | None = None, callback=None) -> SolverCache:
    """A :class:`SolverCache` for ``problem`` (setup happens lazily on the first solve)."""
    if not isinstance(problem, LinearProblem):
        raise TypeError(f"problem must be a LinearProblem, got {type(problem).__name__}")
    return SolverCache(problem, alg if alg is not None else default_algorithm(problem.A), rtol, atol, maxiter,
                       callback)


def solve(problem: LinearProblem, alg: Algorithm | None = None, *, rtol: float = 1e-8, atol: float = 0.0,
          maxiter: int | None = None, callback=None, raise_on_failure: bool = False) -> Solution:
    """Solve ``problem`` with ``alg``; returns a :class:`Solution` with a return code.

    Stops when ``||b - A x|| <= max(rtol ||b||, atol)`` (in the method's residual; the true residual is
    recomputed afterwards and reported as ``stats["rel_residual"]``). ``raise_on_failure=True`` raises
    :class:`SolveError` unless the retcode is ``Success``.
    """
    sol = init(problem, alg, rtol=rtol, atol=atol, maxiter=maxiter, callback=callback).solve()
    if raise_on_failure and not sol.converged:
        raise SolveError(sol)
    return sol
