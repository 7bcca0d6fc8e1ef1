from .cg import CG, FlexibleCG
from .gmres import GMRES, FGMRES
from .bicgstab import BiCGStab
from .minres import MINRES

__all__ = ["CG", "FlexibleCG", "GMRES", "FGMRES", "BiCGStab", "MINRES"]
