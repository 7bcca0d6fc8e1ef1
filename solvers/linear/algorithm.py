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

    Subclasses implement ``setup(A) -> state`` (factorization, preconditioner hierarchy, PETSc KSP)
    and ``run(state, A, b, x0, tol, callback) -> RunResult``. ``callback(iteration, x, residual_norm)``
    is called after every iteration where the method exposes it.
    """

    #: accepts PETSc Mat/Vec problems (only PETSc-backed methods do)
    petsc = False
    #: needs an explicit sparse matrix (factorizations), not a LinearOperator
    needs_matrix = False

    def setup(self, A):
        return None

    @abc.abstractmethod
    def run(self, state, A, b, x0, tol: Tolerances, callback: Callback | None) -> RunResult:
        """Iterate from ``x0``; stop on ``tol``; report through a :class:`RunResult`."""

    def default_maxiter(self, n: int) -> int:
        return max(int(n), 10)

    @property
    def label(self) -> str:
        return type(self).__name__


@dataclass(frozen=True)
class Preconditioned(Algorithm):
    """An iterative method with a preconditioner slot (classical or learned; ``None`` = identity)."""

    precond: object = None

    def setup(self, A):
        from .preconditioners.base import Identity

        pc = copy.copy(self.precond) if self.precond is not None else Identity()
        pc.setup(A)
        return pc

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
