"""Base of the algorithm values and the shared iteration bookkeeping."""

from __future__ import annotations

import abc
import copy
from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np

from .solution import ReturnCode

#: residual growth beyond this factor of the initial residual counts as divergence
DIVERGENCE_FACTOR = 1e8


class Tolerances(NamedTuple):
    """Stop when ``||r|| <= max(rtol * ||b||, atol)`` or after ``maxiter`` iterations."""

    rtol: float
    atol: float
    maxiter: int

    def target(self, bnorm: float) -> float:
        return max(self.rtol * bnorm, self.atol)


class RunResult(NamedTuple):
    x: object
    retcode: ReturnCode
    iterations: int
    residuals: list
    message: str = ""


Callback = Callable[[int, np.ndarray, float], object]


class Algorithm(abc.ABC):
    """An algorithm is a small immutable value; state lives in what :meth:`setup` returns.

    Subclasses implement ``setup(A, p=None) -> state`` (factorization, preconditioner hierarchy, PETSc
    KSP; ``p`` is the problem's parameter object) and ``run(state, A, b, x0, tol, callback) -> RunResult``.
    ``callback(iteration, x, residual_norm)`` is called after every iteration where the method exposes it.
    ``update(state, A, p, reuse)`` gives the state for a new matrix (``reuse``: ``"keep"``,
    ``"refresh"``, ``"rebuild"``; the default rebuilds) and ``precond_of(state)`` the preconditioner
    object that runs (``None`` when there is none), whose ``stats`` the solution reports.
    """

    #: accepts PETSc Mat/Vec problems (only PETSc-backed methods do)
    petsc = False
    #: needs an explicit sparse matrix (factorizations), not a LinearOperator
    needs_matrix = False
    #: counts iterations against ``maxiter`` (a direct solve does not: each residual-correction step is
    #: one more back-substitution, whatever the iteration budget)
    iterative = True

    def setup(self, A, p=None):
        return None

    def update(self, state, A, p=None, reuse: str = "rebuild"):
        """State for the new matrix ``A``; the base class always sets up afresh."""
        return call_setup(self, A, p)

    def precond_of(self, state):
        return None

    @abc.abstractmethod
    def run(self, state, A, b, x0, tol: Tolerances, callback: Callback | None) -> RunResult:
        """Iterate from ``x0``; stop on ``tol``; report through a :class:`RunResult`."""

    def default_maxiter(self, n: int) -> int:
        return max(int(n), 10)

    @property
    def label(self) -> str:
        return type(self).__name__


def call_setup(alg, A, p=None):
    """``alg.setup(A, p)``; ``alg.setup(A)`` for an algorithm whose ``setup`` predates ``p``."""
    from .preconditioners.base import _accepts_p

    return alg.setup(A, p) if _accepts_p(alg.setup) else alg.setup(A)


@dataclass(frozen=True)
class Preconditioned(Algorithm):
    """An iterative method with a preconditioner slot (classical or learned; ``None`` = identity).

    ``needs_linear`` / ``needs_symmetric`` say which preconditioner traits the method relies on; a
    preconditioner lacking one is refused at setup (``ValueError``, so the solve returns
    ``InvalidInput`` with a message naming the flexible methods). Subclasses whose state carries more
    than the preconditioner override ``_state(pc, A)`` and ``precond_of(state)``.
    """

    precond: object = None
    needs_linear = True
    needs_symmetric = False

    def setup(self, A, p=None):
        from .preconditioners.base import Identity, check_traits, setup_precond

        pc = copy.copy(self.precond) if self.precond is not None else Identity()
        pc = setup_precond(pc, A, p)
        check_traits(pc, self.needs_linear, self.needs_symmetric, type(self).__name__)
        return self._state(pc, A)

    def update(self, state, A, p=None, reuse: str = "rebuild"):
        """``keep``: the same preconditioner with the new operator; ``refresh``: the preconditioner's
        numerical refresh (AMG keeps its transfers); ``rebuild``: a fresh setup."""
        from .preconditioners.base import refresh_precond

        if reuse == "rebuild" or state is None:
            return self.setup(A, p)
        pc = self.precond_of(state)
        if reuse == "refresh":
            pc = refresh_precond(pc, A, p)
        elif reuse != "keep":
            raise ValueError(f"reuse must be 'keep', 'refresh' or 'rebuild', got {reuse!r}")
        return self._state(pc, A)

    def _state(self, pc, A):
        return pc

    def precond_of(self, state):
        return state

    @property
    def label(self) -> str:
        pc = type(self.precond).__name__ if self.precond is not None else "none"
        return f"{type(self).__name__}({pc})"


class History:
    """Residual history with the convergence / divergence tests every Krylov method shares."""

    def __init__(self, r0: float, target: float, callback: Callback | None = None):
        self.norms = [float(r0)]
        self.target = target
        self.callback = callback

    def done(self, k: int, x, rnorm: float) -> ReturnCode | None:
        """Record iteration ``k``; a retcode when the iteration must stop."""
        rnorm = float(rnorm)
        self.norms.append(rnorm)
        if self.callback is not None:
            self.callback(k, x, rnorm)
        if not np.isfinite(rnorm) or rnorm > DIVERGENCE_FACTOR * max(self.norms[0], self.target):
            return ReturnCode.Diverged
        if rnorm <= self.target:
            return ReturnCode.Success
        return None
