"""``init(problem, alg) -> SolverCache`` and ``solve(problem, alg)``: setup once, solve many times."""

from __future__ import annotations

import copy
import dataclasses
import time

import numpy as np
import scipy.sparse as sp

from .algorithm import Algorithm, Tolerances, call_setup
from .preconditioners.base import Preconditioner, snapshot, stats_delta
from .problem import LinearProblem, canonical_csr, check_problem, is_petsc
from .solution import ReturnCode, SetupBreakdown, Solution, SolveError

#: When a method reports convergence but the *true* residual is above the requested target (the
#: recursive residual of a Krylov method drifts; a direct solve is limited by rounding on an
#: ill-conditioned matrix), the cache tries at most this many residual-correction steps
#: ``x <- x + solve(A, b - A x)`` with the same setup (iterative refinement for a factorization,
#: a restart with the true residual for Krylov). ``Success`` is returned only when the true residual
#: meets the target; otherwise ``Stalled``, with the attained residual in the message.
MAX_CORRECTIONS = 4
#: ``Stalled`` (rounding-limited) needs a true relative residual below this; above it a claimed success
#: whose corrections do not help is a ``Breakdown`` (numerically singular matrix, wrong answer)
STALLED_MAX = 1e-4


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

    Related matrices (a time-dependent or swept coefficient; LinearSolve.jl's ``reuse_precs``):
    ``cache.A = A_new`` rebuilds the setup on the next solve (the safe default), while
    ``cache.update(A_new, reuse=...)`` chooses

    - ``"keep"``: the same preconditioner, the new operator in the Krylov method (no setup cost; the
      preconditioner ages as ``A`` drifts, the iteration count shows it);
    - ``"refresh"``: the preconditioner's numerical refresh (AMG keeps ``P``/``R`` and recomputes the
      Galerkin coarse operators and smoothers; preconditioners without a cheaper path set up afresh);
    - ``"rebuild"``: a fresh setup (as ``cache.A = A_new``).

    Methods without a preconditioner slot (``Direct``, ``PETScKSP`` with a PETSc PC) rebuild for every
    mode. The time of whatever ran is in ``Solution.stats["setup_s"]`` and its kind in
    ``stats["setup_kind"]``; ``stats["precond"]`` holds the counters of the preconditioner that ran
    during this solve (``name``, ``calls``, ``apply_s``, and ``accepted``/``rejected`` for learned
    ones); ``cache.precond`` is that object (cumulative ``stats``).

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
        if not (0 <= rtol < np.inf and 0 <= atol < np.inf) or (rtol == 0 and atol == 0):
            raise ValueError(f"tolerances must be finite, non-negative and not both zero: rtol={rtol}, atol={atol}")
        if rtol >= 1:
            raise ValueError(f"rtol={rtol} >= 1 is met by x = 0 without solving; ask for rtol < 1")
        if maxiter is not None and (isinstance(maxiter, bool) or int(maxiter) != maxiter or maxiter < 1):
            raise ValueError(f"maxiter must be a positive integer, got {maxiter!r}")
        self.nullspace = None if problem.nullspace is None else NullSpace(problem.nullspace)
        self.alg = alg if self.nullspace is None else self.nullspace.algorithm(alg)
        self._A = problem.A
        self.b = problem.b
        self.x0 = problem.x0
        self.p = problem.p
        self._reuse = "rebuild"
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
        self._reuse = "rebuild"

    def update(self, A, reuse: str = "rebuild", p=None) -> None:
        """Replace the matrix (and ``p`` when given); the next solve keeps, refreshes or rebuilds the
        setup as ``reuse`` says (see the class docstring). Lazy, like ``cache.A = A``."""
        if reuse not in ("keep", "refresh", "rebuild"):
            raise ValueError(f"reuse must be 'keep', 'refresh' or 'rebuild', got {reuse!r}")
        self._A = A
        if p is not None:
            self.p = p
        # an earlier pending rebuild is not downgraded by a later keep/refresh
        strength = {"keep": 0, "refresh": 1, "rebuild": 2}
        pending = self._reuse if self._stale else "keep"
        self._reuse = max(pending, reuse, key=strength.get) if self._state is not None else "rebuild"
        self._stale = True

    @property
    def precond(self):
        """The preconditioner object of the current setup (``None`` before the first solve or when the
        method has none)."""
        return self.alg.precond_of(self._state) if self._state is not None else None

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
        if problem_msg is None and self.nullspace is not None:
            b, problem_msg = self.nullspace.consistent(b, self.rtol, self.atol)
        if problem_msg is not None:
            return self._fail(b, problem_msg)
        if not is_petsc(b):
            b = np.asarray(b)
            x0 = np.zeros(A.shape[0], dtype=np.result_type(b.dtype, getattr(A, "dtype", b.dtype))) \
                if x0 is None else np.asarray(x0)
        setup_kind = "reused"
        if self._stale:
            t = time.perf_counter()
            try:
                if self._state is None or self._reuse == "rebuild":
                    self._state, setup_kind = call_setup(self.alg, A, self.p), "setup"
                else:
                    self._state = self.alg.update(self._state, A, self.p, self._reuse)
                    setup_kind = self._reuse
            except SetupBreakdown as e:  # numerical failure (singular incomplete factor, ...)
                return self._fail(b, f"setup broke down: {e}", ReturnCode.Breakdown)
            except ValueError as e:  # preconditioner rejected the matrix (zero diagonal, ...)
                return self._fail(b, f"setup failed: {e}")
            if self.nullspace is not None:
                self.nullspace.attach(self._state)
            self.setup_s = time.perf_counter() - t
            self.setup_count += 1
            self._stale = False
            setup_now = self.setup_s
        else:
            setup_now = 0.0
        n = A.getSize()[0] if is_petsc(A) else A.shape[0]
        maxiter = self.maxiter if self.maxiter is not None else self.alg.default_maxiter(n)
        tol = Tolerances(self.rtol, self.atol, int(maxiter))
        pc = self.alg.precond_of(self._state)
        if pc is not None:
            if hasattr(pc, "begin_solve"):
                pc.begin_solve()
            pc_before = snapshot(pc.stats) if isinstance(getattr(pc, "stats", None), dict) else None
        t = time.perf_counter()
        try:
            res = self.alg.run(self._state, A, b, x0, tol, self.callback)
        except (ValueError, TypeError, ArithmeticError, np.linalg.LinAlgError) as e:
            # a preconditioner or smoother failing numerically mid-solve (pyamg's coarse pseudo-inverse of
            # a NaN matrix on an indefinite problem, a complex vector in a real kernel): a return code
            sol = self._fail(b, f"{self.alg.label} failed during the iteration: {type(e).__name__}: {e}",
                             ReturnCode.Breakdown)
            sol.stats["solve_s"] = time.perf_counter() - t
            return sol
        x, iterations, retcode, message = res.x, int(res.iterations), res.retcode, res.message or res.retcode.value
        rel, bnorm = true_residual(A, b, x)
        corrections = 0
        if retcode is ReturnCode.Success and rel * bnorm > tol.target(bnorm):
            claimed = rel
            x, iterations, corrections, rel = self._correct(A, b, x, iterations, rel, bnorm, tol)
            if not np.isfinite(rel):
                retcode = ReturnCode.Breakdown
                message = f"{self.alg.label}: residual-correction steps produced non-finite values"
            elif rel * bnorm > tol.target(bnorm):
                floor = rounding_floor(A, x, bnorm)
                if rel <= min(10.0 * floor, STALLED_MAX):  # rounding-limited: as good as double precision gets
                    retcode = ReturnCode.Stalled
                    why = (f"; rounding in A x alone is ~{floor:.1e} relative here, so this is the attainable "
                           "accuracy: ask for a larger rtol")
                elif iterations >= tol.maxiter and self.alg.iterative:
                    retcode, why = ReturnCode.MaxIters, "; the iteration budget ran out during the corrections"
                else:  # far above rounding and not improving: the method's answer is wrong (singular, ...)
                    retcode, why = ReturnCode.Breakdown, ""
                message = (f"{self.alg.label} reported convergence, but the true relative residual is "
                           f"{rel:.3e} after {corrections} residual-correction step(s) (it was {claimed:.3e}; "
                           f"requested rtol={self.rtol:g}, atol={self.atol:g}){why}")
        if self.nullspace is not None and np.isfinite(rel):
            x = self.nullspace.remove(x)
            rel, _ = true_residual(A, b, x)
        solve_s = time.perf_counter() - t
        stats = {"setup_s": setup_now, "solve_s": solve_s, "rel_residual": rel, "message": message,
                 "method": self.alg.label, "corrections": corrections, "setup_kind": setup_kind}
        if pc is not None:
            after = getattr(pc, "stats", None)
            stats["precond"] = (stats_delta(pc_before, after) if pc_before is not None and isinstance(after, dict)
                                else {"name": type(pc).__name__})
        return Solution(x, retcode, iterations, np.asarray(res.residuals, dtype=float), stats)

    def _correct(self, A, b, x, iterations, rel, bnorm, tol):
        """Residual-correction steps ``x <- x + solve(A, b - A x)`` with the cached setup, while each
        step lowers the true residual by at least 2x and the iteration budget lasts.

        Returns ``(x, iterations, steps, rel)``. The correction solves aim at the absolute target
        ``max(rtol ||b||, atol)`` for ``b - A x``, so one step suffices when the drift was small."""
        target = tol.target(bnorm)
        steps = 0
        while rel * bnorm > target and steps < MAX_CORRECTIONS and np.isfinite(rel):
            budget = tol.maxiter - iterations
            if budget <= 0 and self.alg.iterative:
                break
            r = residual_vector(A, b, x)
            sub = Tolerances(0.0, target, max(budget, 1))
            zero = None if is_petsc(r) else np.zeros_like(x)
            res = self.alg.run(self._state, A, r, zero, sub, None)
            if res.retcode not in (ReturnCode.Success, ReturnCode.MaxIters):
                break
            x_new = add_vectors(x, res.x)
            rel_new, _ = true_residual(A, b, x_new)
            iterations += int(res.iterations)
            steps += 1
            if not rel_new < 0.5 * rel:  # no real progress: keep the better iterate and stop
                if rel_new < rel:
                    x, rel = x_new, rel_new
                break
            x, rel = x_new, rel_new
        return x, iterations, steps, rel


class NullSpace:
    """An orthonormal basis ``N`` (columns) of the null space of ``A`` (``LinearProblem.nullspace``):
    checks that ``b`` is consistent and removes ``N N^T x`` from solutions. numpy and PETSc vectors (the
    basis holds the owned entries; the inner products are summed over the vector's communicator)."""

    #: ``b``'s null-space component may be at most this fraction of the tolerance's target to be projected
    #: away (it then cannot change the answer beyond the tolerance); more means there is no solution
    SHARE_OF_TARGET = 0.1
    #: ... and is always allowed up to rounding in assembling ``b``
    ROUNDING = 1e-13

    def __init__(self, basis):
        N = np.asarray(basis)
        self.N = N.reshape(-1, 1) if N.ndim == 1 else N

    def coefficients(self, v):
        c = self.N.conj().T @ (v.array if is_petsc(v) else np.asarray(v))
        return v.comm.tompi4py().allreduce(c) if is_petsc(v) else c

    def _subtract(self, v, c):
        if is_petsc(v):
            w = v.copy()
            w.array[:] -= self.N @ c
            return w
        return v - self.N @ c

    def consistent(self, b, rtol, atol):
        """``(b without its null-space component, None)``, or ``(b, message)`` when that component is too
        large to be rounding: ``A x = b`` then has no solution."""
        c = self.coefficients(b)
        bnorm = float(b.norm()) if is_petsc(b) else float(np.linalg.norm(b))
        size = float(np.linalg.norm(c))
        allowed = max(self.SHARE_OF_TARGET * max(rtol * bnorm, atol), self.ROUNDING * bnorm)
        if size > allowed:
            rel = size / bnorm if bnorm > 0 else np.inf
            return b, (f"b is inconsistent with the null space of A ({self.N.shape[1]} vector(s); a pure Neumann "
                       f"problem has the constants): its component along the null space is {rel:.3e} of ||b||, "
                       f"above the {allowed / bnorm if bnorm else 0:.1e} allowed at rtol={rtol:g}, so A x = b has "
                       "no solution; balance sources and boundary fluxes (integral of f + integral of the "
                       "Neumann flux = 0) or add a Dirichlet or Robin condition")
        return (self._subtract(b, c) if size > 0 else b), None

    def remove(self, x):
        """``x - N N^T x`` (for the constants: the zero-mean representative)."""
        return self._subtract(x, self.coefficients(x))

    def algorithm(self, alg):
        """``alg`` whose preconditioner output is projected onto the range, ``P M P`` with
        ``P = I - N N^T``: rounding puts null-space components into the residual, which AMG amplifies
        until CG sees ``r^T M r < 0`` (a Breakdown at 1e-10 here); PETSc methods get a ``MatNullSpace``
        instead (:meth:`attach`), direct solvers nothing (the solution is projected afterwards)."""
        from .algorithm import Preconditioned

        if isinstance(alg, Preconditioned):
            return dataclasses.replace(alg, precond=_Projected(alg.precond, self))
        return alg

    def attach(self, state) -> None:
        """Give a PETSc KSP's operator this null space (PETSc then projects inside the iteration)."""
        mats = [m for m in (state if isinstance(state, tuple) else ()) if is_petsc(m) and hasattr(m, "setNullSpace")]
        if mats:
            from petsc4py import PETSc

            mat = mats[0]
            vecs = []
            for k in range(self.N.shape[1]):
                v = mat.createVecRight()
                v.array[:] = self.N[:, k]
                vecs.append(v)
            mat.setNullSpace(PETSc.NullSpace().create(vectors=vecs, comm=mat.getComm()))


class _Projected(Preconditioner):
    """``P M P`` for the preconditioner ``M`` of a singular problem (see :meth:`NullSpace.algorithm`);
    traits, refresh and counters are the wrapped preconditioner's."""

    def __init__(self, inner, nullspace: NullSpace):
        from .preconditioners.base import Identity

        self.inner = inner if inner is not None else Identity()
        self.nullspace = nullspace
        self.linear, self.symmetric = getattr(self.inner, "linear", True), getattr(self.inner, "symmetric", True)

    def setup(self, A, p=None):
        from .preconditioners.base import setup_precond

        new = copy.copy(self)
        new.inner, new.A, new.p = setup_precond(copy.copy(self.inner), A, p), A, p
        return new

    def refresh(self, A, p=None):
        from .preconditioners.base import refresh_precond

        new = copy.copy(self)
        new.inner, new.A = refresh_precond(self.inner, A, p), A
        return new

    def begin_solve(self):
        if hasattr(self.inner, "begin_solve"):
            self.inner.begin_solve()

    @property
    def stats(self):
        return getattr(self.inner, "stats", {"name": type(self.inner).__name__})

    def __call__(self, r):
        return self.apply(r)

    def apply(self, r):
        return self.nullspace.remove(self.inner(self.nullspace.remove(r)))


def rounding_floor(A, x, bnorm) -> float:
    """``eps || |A| |x| || / ||b||``: the relative size of the rounding error in forming ``A x``; a true
    relative residual below it cannot be expected in double precision. PETSc matrices use the bound
    ``||A||_inf ||x||`` for ``|| |A| |x| ||`` (exact for the symmetric case's worst direction)."""
    eps = np.finfo(np.float64).eps
    if bnorm == 0:
        return 0.0
    if is_petsc(A):
        from petsc4py import PETSc

        return eps * A.norm(PETSc.NormType.INFINITY) * x.norm() / bnorm
    if sp.issparse(A):  # scipy's abs() sums duplicates in place: on a canonical copy, not the caller's A
        A = canonical_csr(A)
    if sp.issparse(A) or isinstance(A, np.ndarray):
        return eps * float(np.linalg.norm(abs(A) @ np.abs(x))) / bnorm
    return 0.0  # a LinearOperator: unknown, so never called rounding-limited


def residual_vector(A, b, x):
    """``b - A x`` for scipy/numpy and PETSc objects."""
    if is_petsc(A):
        r = b.duplicate()
        A.mult(x, r)
        r.aypx(-1.0, b)
        return r
    return b - A @ x


def add_vectors(x, dx):
    """``x + dx`` (a new vector) for numpy and PETSc."""
    if is_petsc(x):
        y = x.copy()
        y.axpy(1.0, dx)
        return y
    return x + dx


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
