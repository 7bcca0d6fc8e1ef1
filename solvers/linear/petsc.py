"""Everything that touches petsc4py: conversions, the ``PCPYTHON`` socket, ``GAMG``, ``PETScKSP``, MUMPS.

Kept in one module (as dolfinx keeps ``fem/petsc.py``) so the rest of ``solvers.linear`` stays
scipy-only. PETSc here is real (float64, int32 indices) and has GAMG, ILU/ICC, LU/Cholesky with
MUMPS and SuperLU_dist, but no hypre.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field

import numpy as np

from meshes import _mpi  # noqa: F401  (MPI first)
from petsc4py import PETSc

from .algorithm import Algorithm, RunResult, Tolerances
from .preconditioners.base import Preconditioner, check_traits, refresh_precond, setup_precond
from .problem import canonical_csr, is_complex, is_petsc
from .solution import ReturnCode

_prefix_counter = itertools.count()


def to_petsc_mat(A, comm=None) -> PETSc.Mat:
    """A serial PETSc AIJ matrix holding a copy of scipy ``A`` (real only)."""
    if is_complex(A):
        raise ValueError("PETSc here is real-only: cannot take a complex matrix")
    A = canonical_csr(A)
    M = PETSc.Mat().createAIJ(A.shape, csr=(A.indptr.astype(PETSc.IntType), A.indices.astype(PETSc.IntType),
                                            A.data.astype(PETSc.ScalarType)), comm=comm or PETSc.COMM_SELF)
    M.assemble()
    return M


def to_petsc_vec(x, comm=None) -> PETSc.Vec:
    return PETSc.Vec().createWithArray(np.array(x, dtype=PETSc.ScalarType), comm=comm or PETSc.COMM_SELF)


def to_petsc_options(options: dict, prefix: str) -> None:
    """Write a nested options dict into PETSc's database under ``prefix``."""
    opts = PETSc.Options()
    for key, value in options.items():
        opts[f"{prefix}{key}"] = "" if value is None else value


def clear_options(options: dict, prefix: str) -> None:
    """Remove options written by :func:`to_petsc_options` once an object has read them."""
    opts = PETSc.Options()
    for key in options:
        opts.delValue(f"{prefix}{key}")


# -- PCPYTHON: a Python preconditioner inside any PETSc KSP ---------------------------------------------
class PythonPC:
    """Context for ``PC.Type.PYTHON`` wrapping an object with the preconditioner protocol.

    ``setUp`` is called by PETSc; the wrapped preconditioner must already be set up (serial vectors:
    ``apply`` sees the whole local array).
    """

    def __init__(self, precond: Preconditioner):
        self.precond = precond

    def setUp(self, pc):  # noqa: N802 (PETSc's name)
        pass

    def apply(self, pc, x, y):
        y.array[:] = self.precond(x.array_r.copy())  # counted in precond.stats


def attach_python_pc(ksp: PETSc.KSP, precond: Preconditioner) -> None:
    pc = ksp.getPC()
    pc.setType(PETSc.PC.Type.PYTHON)
    pc.setPythonContext(PythonPC(precond))


# -- GAMG as a preconditioner object (serial scipy matrices) -----------------------------------------
class GAMG(Preconditioner):
    """PETSc's smoothed-aggregation AMG (``PCGAMG``), applied once per call.

    ``options`` are PETSc options without the prefix, e.g. ``{"pc_gamg_threshold": 0.02}``.
    """

    def __init__(self, **options):
        self.options = options

    def setup(self, A, p=None):
        super().setup(A, p)
        self._mat = to_petsc_mat(A)
        self._pc = PETSc.PC().create(PETSc.COMM_SELF)
        prefix = f"hybrid_gamg{next(_prefix_counter)}_"
        self._pc.setOptionsPrefix(prefix)
        to_petsc_options(self.options, prefix)
        self._pc.setType(PETSc.PC.Type.GAMG)
        self._pc.setOperators(self._mat)
        self._pc.setFromOptions()
        clear_options(self.options, prefix)
        self._pc.setUp()
        self._x, self._y = self._mat.createVecs()
        return self

    def apply(self, r):
        self._x.array[:] = r
        self._pc.apply(self._x, self._y)
        return self._y.array.copy()

    def __del__(self):
        for name in ("_pc", "_mat", "_x", "_y"):
            obj = getattr(self, name, None)
            if obj is not None:
                obj.destroy()


def _mumps_estimate(pc) -> str:
    """MUMPS's own estimate of the memory its factorization needs (INFOG(17): MB, all processes, in core),
    known after the analysis even when the numerical factorization ran out of memory; "" otherwise."""
    try:
        mb = pc.getFactorMatrix().getMumpsInfog(17)
    except Exception:  # noqa: BLE001 - not MUMPS, or the analysis did not run
        return ""
    return f"; MUMPS estimated {mb} MB for the factorization" if mb > 0 else ""


# -- KSP as an algorithm ---------------------------------------------------------------------------------
_REASONS = {
    PETSc.KSP.ConvergedReason.DIVERGED_MAX_IT: ReturnCode.MaxIters,
    PETSc.KSP.ConvergedReason.DIVERGED_DTOL: ReturnCode.Diverged,
    PETSc.KSP.ConvergedReason.DIVERGED_NANORINF: ReturnCode.Diverged,
}
_RIGHT_PC = {"gmres", "fgmres", "lgmres", "bcgs", "fbcgs", "gcr", "pipefgmres"}
#: PETSc Krylov types that accept a preconditioner varying between iterations (nonlinear, learned)
_FLEXIBLE = {"fgmres", "pipefgmres", "fcg", "pipefcg", "gcr", "pipegcr", "fbcgs", "fbcgsr", "richardson"}
#: PETSc Krylov types whose theory needs a symmetric (positive definite) preconditioner
_NEEDS_SYMMETRIC = {"cg", "pipecg", "pipecgrr", "groppcg", "cr", "pipecr", "minres", "symmlq", "nash", "stcg", "gltr"}


@dataclass(frozen=True)
class PETScKSP(Algorithm):
    """A PETSc Krylov solver: ``ksp_type`` with ``pc`` (a PETSc PC type name such as ``"gamg"``,
    ``"ilu"``, ``"jacobi"``, ``"lu"``, or any object with the preconditioner protocol, which runs
    through ``PCPYTHON``) and extra PETSc ``options`` (without prefix).

    The stopping test uses the *unpreconditioned* residual norm (right preconditioning for GMRES-type
    methods), so ``rtol`` means the same as for the scipy-side methods. Works on scipy matrices
    (serial) and on PETSc ``Mat``/``Vec`` problems (distributed, e.g. ``LinearSystem.to_petsc()``).

    >>> alg = PETScKSP("cg", "gamg")
    """

    ksp_type: str = "cg"
    pc: object = "gamg"
    options: dict = field(default_factory=dict)
    petsc = True

    def setup(self, A, p=None):
        mat = A if is_petsc(A) else to_petsc_mat(A)
        ksp = PETSc.KSP().create(mat.getComm())
        prefix = f"hybrid_ksp{next(_prefix_counter)}_"
        ksp.setOptionsPrefix(prefix)
        opts = dict(self.options)
        opts.setdefault("ksp_type", self.ksp_type)
        if self.ksp_type != "preonly":
            opts.setdefault("ksp_norm_type", "unpreconditioned")
            if self.ksp_type in _RIGHT_PC:
                opts.setdefault("ksp_pc_side", "right")
        python_pc = None
        if isinstance(self.pc, str):
            opts.setdefault("pc_type", self.pc)
        elif self.pc is not None:
            if is_petsc(A):
                raise ValueError("a Python preconditioner inside PETScKSP needs a serial scipy matrix")
            python_pc = setup_precond(copy.copy(self.pc), A, p)
            check_traits(python_pc, self.ksp_type not in _FLEXIBLE, self.ksp_type in _NEEDS_SYMMETRIC,
                         f"PETScKSP({self.ksp_type!r})")
        to_petsc_options(opts, prefix)
        ksp.setOperators(mat)
        ksp.setFromOptions()
        if python_pc is not None:
            attach_python_pc(ksp, python_pc)
        ksp.setConvergenceHistory()
        try:  # the factorization's own options (``mat_mumps_icntl_*``) are read in setUp, not setFromOptions
            ksp.setUp()
        finally:
            clear_options(opts, prefix)
        return ksp, mat, python_pc

    def precond_of(self, state):
        return state[2]

    def update(self, state, A, p=None, reuse: str = "rebuild"):
        """With a Python preconditioner, ``keep``/``refresh`` act on it as in :class:`Preconditioned` and
        the KSP gets the new operator; with a PETSc PC type every mode sets up afresh."""
        if reuse == "rebuild" or state is None or state[2] is None or is_petsc(A):
            return self.setup(A, p)
        ksp, mat, pc = state
        if reuse == "refresh":
            pc = refresh_precond(pc, A, p)
            attach_python_pc(ksp, pc)
        elif reuse != "keep":
            raise ValueError(f"reuse must be 'keep', 'refresh' or 'rebuild', got {reuse!r}")
        new = to_petsc_mat(A)
        ksp.setOperators(new)
        mat.destroy()
        return ksp, new, pc

    def run(self, state, A, b, x0, tol: Tolerances, callback):
        ksp, mat = state[0], state[1]
        petsc_input = is_petsc(b)
        bv = b if petsc_input else to_petsc_vec(b)
        xv = mat.createVecRight()
        if x0 is not None:
            if petsc_input:
                x0.copy(xv)
            else:
                xv.array[:] = x0
        bnorm = bv.norm()
        target = tol.target(bnorm)
        ksp.setInitialGuessNonzero(x0 is not None)
        ksp.setTolerances(rtol=0.0, atol=target, max_it=tol.maxiter)
        ksp.setConvergenceHistory()
        if callback is not None:
            ksp.setMonitor(lambda k, its, rnorm: callback(its, None, rnorm))
        ksp.solve(bv, xv)
        reason = ksp.getConvergedReason()
        its = ksp.getIterationNumber()
        hist = list(ksp.getConvergenceHistory())
        if reason > 0:
            code = ReturnCode.Success
        else:
            code = _REASONS.get(reason, ReturnCode.Breakdown)
        name = {v: k for k, v in vars(PETSc.KSP.ConvergedReason).items() if isinstance(v, int)}.get(reason, reason)
        if petsc_input:
            x = xv
        else:  # scipy callers get a copy; free the PETSc vectors
            x = xv.array.copy()
            xv.destroy()
            bv.destroy()
        message = f"PETSc KSP reason {name}"
        if name == "DIVERGED_PCSETUP_FAILED":  # say why: out of memory, zero pivot (PETSc's PCFailedReason)
            failed = ksp.getPC().getFailedReason()
            why = {v: k for k, v in vars(PETSc.PC.FailedReason).items() if isinstance(v, int)}.get(failed, failed)
            message += f" (PC failed: {why}{_mumps_estimate(ksp.getPC())})"
        return RunResult(x, code, its, hist, message)

    @property
    def label(self) -> str:
        pc = self.pc if isinstance(self.pc, str) else type(self.pc).__name__
        return f"PETScKSP({self.ksp_type}+{pc})"
