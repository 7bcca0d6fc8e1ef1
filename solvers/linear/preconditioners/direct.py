"""A factorization as a preconditioner: exact, or approximate with MUMPS's block-low-rank compression.

An exact factorization makes any Krylov method converge in one iteration and costs a direct solve; a
block-low-rank (BLR) factorization (MUMPS ICNTL(35), blocks of the factors compressed to a relative
tolerance) is cheaper and solves only approximately, so a few FGMRES iterations finish the job. It is the
direct solver's fair iterative counterpart in the Helmholtz benchmark (``mumps-blr+fgmres``) and the coarse
solve of :class:`~.deflation.TwoLevelDeflation`.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..algorithm import Tolerances
from ..direct import Direct, FactorFailed, blr
from ..problem import is_petsc
from .base import Preconditioner

_ONE_SOLVE = Tolerances(0.0, 0.0, 1)


class DirectPreconditioner(Preconditioner):
    """``apply(r)`` = one solve with the factors of ``A`` from ``direct`` (a :class:`Direct`; default MUMPS
    with :func:`~solvers.linear.direct.blr` compression at 1e-5).

    A factorization that fails raises ``ValueError`` at setup; a solve that fails returns non-finite values
    (the Krylov method then reports a breakdown, and :class:`TwoLevelDeflation` skips that correction).
    Traits: linear; not declared symmetric (use GMRES/FGMRES).
    """

    symmetric = False

    def __init__(self, direct: Direct | None = None):
        self.direct = direct if direct is not None else Direct("mumps", options=blr())
        if not isinstance(self.direct, Direct):
            raise ValueError(f"DirectPreconditioner takes a Direct algorithm, got {type(self.direct).__name__}")

    def setup(self, A, p=None):
        super().setup(A, p)
        if is_petsc(A) or not sp.issparse(A):
            raise ValueError("DirectPreconditioner needs a scipy sparse matrix")
        self._factors = self.direct.setup(A)
        if isinstance(self._factors, FactorFailed):
            raise ValueError(f"DirectPreconditioner: the matrix ({A.shape[0]} unknowns) could not be factorized: "
                             f"{self._factors.error}")
        return self

    def apply(self, r):
        r = np.asarray(r)
        res = self.direct.run(self._factors, self.A, r, None, _ONE_SOLVE, None)
        if res.retcode.name != "Success":
            return np.full(r.shape, np.nan, dtype=np.result_type(r.dtype, self.A.dtype))
        return res.x

    def __repr__(self):
        return f"DirectPreconditioner({self.direct!r})"
