"""The preconditioner protocol: ``setup(A)``, ``apply(r) -> z``, ``as_linear_operator()``.

Classical (Jacobi, ILU, AMG, GAMG, geometric MG) and learned preconditioners implement the same three
methods, so every Krylov slot takes either. A preconditioner object holds its configuration from the
constructor and its state from ``setup``; algorithms copy it before ``setup`` so one configured
preconditioner can serve several caches.
"""

from __future__ import annotations

import abc

import numpy as np
import scipy.sparse.linalg as spla


class Preconditioner(abc.ABC):
    """Base class: subclasses implement ``setup(A)`` (returning ``self``) and ``apply(r)``."""

    A = None

    def setup(self, A) -> "Preconditioner":
        self.A = A
        return self

    @abc.abstractmethod
    def apply(self, r: np.ndarray) -> np.ndarray:
        """``z ~ A^{-1} r``."""

    def as_linear_operator(self) -> spla.LinearOperator:
        """The preconditioner as a scipy ``LinearOperator`` (``M ~ A^{-1}``)."""
        if self.A is None:
            raise RuntimeError(f"{type(self).__name__}: call setup(A) first")
        n = self.A.shape[0]
        dtype = getattr(self.A, "dtype", np.float64)
        return spla.LinearOperator((n, n), matvec=self.apply, dtype=dtype)

    def __call__(self, r):
        return self.apply(r)


class Identity(Preconditioner):
    """No preconditioning."""

    def apply(self, r):
        return np.array(r, copy=True)
