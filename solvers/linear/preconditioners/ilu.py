"""Incomplete LU (``scipy.sparse.linalg.spilu``, SuperLU's ILUTP)."""

from __future__ import annotations

import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ..solution import SetupBreakdown
from .base import Preconditioner


class ILU(Preconditioner):
    """Threshold ILU with ``drop_tol`` and ``fill_factor`` (SuperLU ``spilu``); not symmetric, use with GMRES."""

    linear = True
    symmetric = False  # L U with threshold dropping: not symmetric even for SPD A

    def __init__(self, drop_tol: float = 1e-4, fill_factor: float = 10.0):
        self.drop_tol = float(drop_tol)
        self.fill_factor = float(fill_factor)

    def setup(self, A, p=None):
        super().setup(A, p)
        try:
            self.factor = spla.spilu(sp.csc_matrix(A), drop_tol=self.drop_tol, fill_factor=self.fill_factor)
        except RuntimeError as e:
            raise SetupBreakdown(f"ILU: incomplete factorization failed ({e})") from e
        return self

    def apply(self, r):
        return self.factor.solve(r)
