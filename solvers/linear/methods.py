"""Named solver configurations (``"pyamg-sa+cg"`` ...) for the command line and the benchmarks.

A registry of factories rather than an if/elif chain: adding a method is one line, and the CLI's
``--method`` choices and the benchmark's method list come from here.
"""

from __future__ import annotations

from typing import Callable

from .algorithm import Algorithm
from .direct import Direct
from .krylov import CG, FGMRES, GCROT, GMRES
from .direct import blr
from .preconditioners import AMG, ILU, DirectPreconditioner, Jacobi, ShiftedLaplacian, TwoLevelDeflation


def _petsc(ksp, pc, **opts):
    def make():
        from .petsc import PETScKSP

        return PETScKSP(ksp, pc, dict(opts))
    return make


#: FGMRES restart of the Helmholtz methods (classical and learned alike). The shifted-Laplacian
#: iterations hardly depend on it (layered medium, 10 points per wavelength: 127/124/123 iterations with
#: restart 20/60/100 at n = 256, 253/254/252 with 20/30/100 at n = 512; checkerboard at n = 256: 670 with
#: 30, 591 with 100) while the basis memory and the Gram-Schmidt time grow linearly with it (n = 512: 19 s
#: with restart 30, 32 s with 100; at n = 2048 the two bases of FGMRES(100) take 13.5 GB).
HELMHOLTZ_RESTART = 30

#: name -> factory returning a fresh algorithm value
METHODS: dict[str, Callable[[], Algorithm]] = {
    "pyamg-sa+cg": lambda: CG(precond=AMG("sa")),
    "pyamg-rs+cg": lambda: CG(precond=AMG("rs")),
    # Ruge-Stuben with the second pass of the C/F splitting (denser coarse grids, fewer iterations); found
    # by the learned-AMG study to be the fastest classical method on darcy-rough/contrast at n >= 512
    "pyamg-rs2+cg": lambda: CG(precond=AMG("rs", CF=("RS", {"second_pass": True}))),
    "pyamg-sa+gmres": lambda: GMRES(precond=AMG("sa")),
    "petsc-gamg+cg": _petsc("cg", "gamg"),
    "petsc-gamg+gmres": _petsc("gmres", "gamg"),
    "jacobi+cg": lambda: CG(precond=Jacobi()),
    "ilu+gmres": lambda: GMRES(restart=50, precond=ILU()),
    # Helmholtz: one geometric V-cycle of the complex shifted Laplacian (shift 0.5) inside FGMRES(30)
    "cslp+fgmres": lambda: FGMRES(restart=HELMHOLTZ_RESTART, precond=ShiftedLaplacian()),
    "cslp2+fgmres": lambda: FGMRES(restart=HELMHOLTZ_RESTART, precond=ShiftedLaplacian(cycles=2)),
    # the same cycle with two-level deflation (higher-order coarse space, exact coarse solve by MUMPS):
    # iterations independent of k and of trapping (preconditioners.deflation); "deflin": bilinear vectors
    "cslp-def+fgmres": lambda: FGMRES(restart=HELMHOLTZ_RESTART, precond=TwoLevelDeflation()),
    # two cycles per deflated step: the classical counterpart of learned-cslp-def+fgmres, whose
    # cycle-network-cycle gives it two cycles too (the same iterations at n = 256 and 1024)
    "cslp2-def+fgmres": lambda: FGMRES(restart=HELMHOLTZ_RESTART, precond=TwoLevelDeflation(ShiftedLaplacian(cycles=2))),
    # two deflated steps per application: the classical counterpart of learned-def+fgmres (deflated step,
    # network, deflated step)
    "cslp-def2+fgmres": lambda: FGMRES(restart=HELMHOLTZ_RESTART, precond=TwoLevelDeflation(steps=2)),
    "cslp-deflin+fgmres": lambda: FGMRES(restart=HELMHOLTZ_RESTART, precond=TwoLevelDeflation(interpolation="linear")),
    "cslp-sa+fgmres": lambda: FGMRES(restart=HELMHOLTZ_RESTART, precond=ShiftedLaplacian(multigrid="sa")),
    # the same cycle inside GCROT(30, 10), which keeps 10 vectors across restarts: as FGMRES(30) on smooth
    # media, far fewer iterations where slow modes dominate (trapping media; solvers.linear.krylov.gcrot)
    "cslp+gcrot": lambda: GCROT(m=HELMHOLTZ_RESTART, k=10, precond=ShiftedLaplacian()),
    # the shifted Laplacian inverted exactly (sparse LU): the bound of every cycle above, a reference
    "cslp-exact+fgmres": lambda: FGMRES(restart=HELMHOLTZ_RESTART, precond=ShiftedLaplacian(multigrid="exact")),
    # MUMPS's block-low-rank factorization (tolerance 1e-5) as FGMRES's preconditioner: the direct solver's
    # iterative counterpart, cheaper than the exact factorization, a few iterations to 1e-8
    "mumps-blr+fgmres": lambda: FGMRES(restart=HELMHOLTZ_RESTART, precond=DirectPreconditioner(Direct("mumps", options=blr(1e-5)))),
    "direct-superlu": lambda: Direct("superlu"),
    "direct-mumps": lambda: Direct("mumps"),
}

#: methods that run on a distributed (PETSc) problem under mpiexec
DISTRIBUTED = {"petsc-gamg+cg", "petsc-gamg+gmres", "direct-mumps"}


def method(name: str) -> Algorithm:
    """The algorithm registered as ``name``; unknown names raise ``ValueError`` listing the valid ones."""
    try:
        return METHODS[name]()
    except KeyError:
        raise ValueError(f"unknown method {name!r}; choose one of: {', '.join(METHODS)}") from None
