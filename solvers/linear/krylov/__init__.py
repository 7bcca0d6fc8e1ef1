from .cg import CG, FlexibleCG
from .gmres import GMRES, FGMRES
from .bicgstab import BiCGStab
from .minres import MINRES
from .gcrot import GCROT

__all__ = ["CG", "FlexibleCG", "GMRES", "FGMRES", "BiCGStab", "MINRES", "GCROT"]
