from .base import Preconditioner, Identity
from .jacobi import Jacobi
from .ilu import ILU
from .multigrid import AMG, GeometricMG
from .shifted_laplacian import ShiftedLaplacian
from .direct import DirectPreconditioner
from .deflation import TwoLevelDeflation


def __getattr__(name):  # GAMG pulls in petsc4py: import it on first use
    if name == "GAMG":
        from ..petsc import GAMG

        return GAMG
    raise AttributeError(name)


__all__ = ["Preconditioner", "Identity", "Jacobi", "ILU", "AMG", "GeometricMG", "ShiftedLaplacian", "TwoLevelDeflation", "DirectPreconditioner", "GAMG"]
