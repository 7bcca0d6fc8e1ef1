"""Linear solves in the LinearSolve.jl style: ``solve(LinearProblem(A, b), alg) -> Solution``.

>>> import numpy as np, pyamg
>>> from solvers.linear import LinearProblem, solve, CG, AMG
>>> A = pyamg.gallery.poisson((100, 100), format="csr")
>>> sol = solve(LinearProblem(A, np.ones(A.shape[0])), CG(precond=AMG("sa")), rtol=1e-8)
>>> sol.converged, sol.residual < 1e-8
(True, True)
"""

from .problem import LinearProblem, PrecondParams
from .solution import ReturnCode, Solution, SolveError, SetupBreakdown, Success, MaxIters, Breakdown, Diverged, InvalidInput, Stalled
from .algorithm import Algorithm, Preconditioned
from .krylov import CG, FlexibleCG, GMRES, FGMRES, BiCGStab, MINRES, GCROT
from .direct import Direct
from .preconditioners import Preconditioner, Identity, Jacobi, ILU, AMG, GeometricMG
from .hierarchy import Level, Hierarchy, vcycle, GaussSeidel, DampedJacobi
from .cache import init, solve, SolverCache
from .sequence import SequenceResult, solve_sequence
from .methods import METHODS, method


def __getattr__(name):  # PETSc-backed pieces load petsc4py on first use
    if name in ("GAMG", "PETScKSP", "to_petsc_mat", "to_petsc_vec"):
        from . import petsc

        return getattr(petsc, name)
    raise AttributeError(name)


__all__ = [
    "LinearProblem", "PrecondParams", "ReturnCode", "Solution", "SolveError", "SetupBreakdown", "Success", "MaxIters", "Breakdown", "Diverged", "Stalled",
    "InvalidInput", "Algorithm", "Preconditioned", "CG", "FlexibleCG", "GMRES", "FGMRES", "BiCGStab", "MINRES", "GCROT",
    "Direct", "PETScKSP", "Preconditioner", "Identity", "Jacobi", "ILU", "AMG", "GAMG", "GeometricMG",
    "Level", "Hierarchy", "vcycle", "GaussSeidel", "DampedJacobi", "init", "solve", "SolverCache", "SequenceResult", "solve_sequence", "METHODS", "method",
]
