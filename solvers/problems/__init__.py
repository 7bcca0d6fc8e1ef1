"""PDE problems in UFL with boundary conditions by name; ``assemble()`` gives a ``LinearSystem``."""

from .base import Problem, default_bcs
from .poisson import Poisson, Darcy
from .convection_diffusion import ConvectionDiffusion
from .helmholtz import Helmholtz
from .elasticity import Elasticity
from .heat import Heat
from .family import DarcyFamily

__all__ = ["Problem", "default_bcs", "Poisson", "Darcy", "ConvectionDiffusion", "Helmholtz", "Elasticity", "Heat", "DarcyFamily"]
