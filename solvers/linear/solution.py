"""``Solution`` and return codes: non-convergence is a value, not an exception."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np


class ReturnCode(Enum):
    """Why a solve stopped (after SciML's ``ReturnCode``)."""

    Success = "converged to the requested tolerance"
    MaxIters = "reached the iteration limit"
    Breakdown = "the method broke down (e.g. CG on a matrix that is not SPD, or a singular factor)"
    Diverged = "the residual grew beyond the divergence limit or became non-finite"
    Stalled = ("the method stopped, but the true residual stays above the requested tolerance "
               "(its attainable accuracy in floating point, even after residual-correction steps)")
    InvalidInput = "the input was rejected before solving"

    def __bool__(self) -> bool:
        return self is ReturnCode.Success


Success = ReturnCode.Success
MaxIters = ReturnCode.MaxIters
Breakdown = ReturnCode.Breakdown
Diverged = ReturnCode.Diverged
Stalled = ReturnCode.Stalled
InvalidInput = ReturnCode.InvalidInput


class SetupBreakdown(ValueError):
    """Raised by a preconditioner's ``setup`` on a numerical failure (singular incomplete factor, ...):
    the solve returns ``Breakdown``. Other ``ValueError``s from ``setup`` mean ``InvalidInput``."""


class SolveError(RuntimeError):
    """Raised by ``solve(..., raise_on_failure=True)`` when the retcode is not ``Success``."""

    def __init__(self, solution: "Solution"):
        self.solution = solution
        super().__init__(f"{solution.retcode.name}: {solution.message} "
                         f"(iterations={solution.iterations}, true relative residual={solution.residual:.3e})")


@dataclass
class Solution:
    """Result of a solve.

    Attributes
    ----------
    x : ndarray (or PETSc Vec for PETSc problems)
    retcode : ReturnCode
    iterations : int
    residuals : ndarray
        Residual-norm history as the method measures it (preconditioned or recursive residuals for some
        methods; the entry 0 is the initial residual).
    stats : dict
        ``setup_s``, ``solve_s``, ``rel_residual`` (the *true* ``||b - A x|| / ||b||`` computed after the
        solve), ``message`` and method-specific entries.
    """

    x: object
    retcode: ReturnCode
    iterations: int
    residuals: np.ndarray
    stats: dict = field(default_factory=dict)

    @property
    def converged(self) -> bool:
        return self.retcode is ReturnCode.Success

    @property
    def residual(self) -> float:
        """True relative residual ``||b - A x|| / ||b||``."""
        return float(self.stats.get("rel_residual", np.nan))

    @property
    def message(self) -> str:
        return str(self.stats.get("message", self.retcode.value))

    def __repr__(self) -> str:
        return (f"Solution(retcode={self.retcode.name}, iterations={self.iterations}, "
                f"rel_residual={self.residual:.3e}, setup_s={self.stats.get('setup_s', 0):.3g}, "
                f"solve_s={self.stats.get('solve_s', 0):.3g})")
