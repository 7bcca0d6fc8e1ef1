"""Jacobi (diagonal) preconditioner."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .base import Preconditioner


class Jacobi(Preconditioner):
    """``z = omega * r / diag(A)``; a zero or non-finite diagonal entry is rejected at setup.

    >>> import scipy.sparse as sp, numpy as np
    >>> Jacobi().setup(sp.diags([2.0, 4.0])).apply(np.ones(2))
    array([0.5 , 0.25])
    """

    def __init__(self, omega: float = 1.0):
        self.omega = float(omega)

    def setup(self, A, p=None):
        super().setup(A, p)
        d = A.diagonal() if sp.issparse(A) else np.diag(np.asarray(A))
        bad = np.flatnonzero((d == 0) | ~np.isfinite(d))
        if len(bad):
            raise ValueError(f"Jacobi: zero or non-finite diagonal entries at rows {bad[:5].tolist()}")
        self.inv_diag = self.omega / d
        return self

    def apply(self, r):
        return self.inv_diag * r
