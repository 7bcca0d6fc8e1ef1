"""Direct solvers: SuperLU (scipy) and MUMPS (through PETSc)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .algorithm import Algorithm, RunResult
from .problem import canonical_csr, is_complex, is_petsc
from .solution import ReturnCode


class FactorFailed(NamedTuple):
    """Setup state when the factorization failed (singular matrix, zero pivot): the solve is a Breakdown."""

    error: str


class MumpsState(NamedTuple):
    """Setup state of ``Direct("mumps")``: the PETSc KSP (preonly + MUMPS), its state, and whether the
    factorized matrix is the real equivalent of a complex ``A``."""

    ksp: Any
    ksp_state: Any
    complex_input: bool


@dataclass(frozen=True)
class Direct(Algorithm):
    """Sparse direct solve; the factorization is the setup, reused by ``init(...).solve(b)``.

    ``backend="superlu"`` (scipy ``splu``) or ``"mumps"`` (PETSc LU, or Cholesky when ``symmetric=True``;
    also distributed). A singular factor gives ``Breakdown``. PETSc here is real, so a complex matrix
    ``A = Ar + i Ai`` goes to MUMPS as the equivalent real system of twice the size, unknown by unknown
    ``[[ar, ai], [ai, -ar]] [xr; -xi] = [br; bi]`` (:func:`real_equivalent`: the 2 x 2 blocks interleaved,
    so MUMPS analyses the graph of ``A`` with ``ICNTL(15) = -2``: METIS on half the nodes, the
    analysis of the Helmholtz matrix at n = 1024 in 5.3 instead of 10.1 s, the whole factorization 21.1
    instead of 24.7 s, at 2% more flops). When ``A`` is
    complex symmetric (``A = A^T``, as every Helmholtz matrix with absorbing boundaries), that system is
    real symmetric indefinite and MUMPS factors it as ``L D L^T`` (PETSc's Cholesky with MUMPS on a matrix
    not marked positive definite: MUMPS's general symmetric mode, with pivoting): 0.64x the memory of LU
    at the same time and residual (Helmholtz at n = 1024, 1.05M unknowns: 3.0 against 4.75 GB added by
    the factorization, 31 against 34 s).

    ``options``: extra PETSc options of the MUMPS factorization (without prefix), e.g. :func:`blr` for a
    block-low-rank factorization with a relative compression threshold: an approximate solve, for use as a
    preconditioner (:class:`~solvers.linear.preconditioners.DirectPreconditioner`), not as a direct solver.

    SuperLU defaults suit FEM matrices, whose sparsity pattern is symmetric: the ``MMD_AT_PLUS_A``
    ordering (3x faster than scipy's default COLAMD at 1M dofs here) and ``symmetric_mode`` with
    ``pivot_threshold=0.1`` (prefer diagonal pivots, so the fill-reducing ordering survives). On the
    indefinite Helmholtz matrix at n=256 the latter cut the factorization from 27 s to 0.4 s (10x
    less fill) at the same residual.
    """

    backend: str = "superlu"
    ordering: str = "MMD_AT_PLUS_A"
    symmetric: bool = False
    symmetric_mode: bool = True
    pivot_threshold: float = 0.1
    options: dict = field(default_factory=dict)
    needs_matrix = True
    iterative = False

    @property
    def petsc(self) -> bool:
        """MUMPS runs on PETSc Mat/Vec too (distributed under mpiexec); SuperLU is scipy only."""
        return self.backend == "mumps"

    def setup(self, A, p=None):
        if self.options and self.backend != "mumps":
            raise ValueError(f"Direct: options are MUMPS options; backend {self.backend!r} takes none")
        if self.backend == "superlu":
            if is_petsc(A):
                raise ValueError("Direct(backend='superlu') needs a scipy matrix; use backend='mumps'")
            try:
                return spla.splu(sp.csc_matrix(A), permc_spec=self.ordering,
                                 diag_pivot_thresh=self.pivot_threshold,
                                 options={"SymmetricMode": self.symmetric_mode})
            except RuntimeError as e:  # "Factor is exactly singular"
                return FactorFailed(str(e))
        if self.backend == "mumps":
            from .petsc import PETScKSP

            if sp.issparse(A):
                A = canonical_csr(A)  # a copy where it must be sorted or summed: the caller's A stays as it is
            complex_input = not is_petsc(A) and is_complex(A)
            # a complex-symmetric A (A = A^T) has a real-symmetric equivalent: L D L^T
            pc = "cholesky" if (self.symmetric and not complex_input) or (complex_input and complex_symmetric(A)) \
                else "lu"
            opts = {"pc_factor_mat_solver_type": "mumps", **({"mat_mumps_icntl_15": -2} if complex_input else {}),
                    **self.options}
            ksp = PETScKSP("preonly", pc, opts)
            M = real_equivalent(A) if complex_input else A
            try:
                st = ksp.setup(M)
            except Exception as e:  # PETSc error 71 / 76: zero pivot, singular
                if getattr(e, "ierr", None) in (62, 63):  # PETSC_ERR_ARG_WRONG / _OUTOFRANGE: an option, not A
                    raise ValueError(f"Direct: MUMPS rejected the options {self.options}: {e}") from None
                return FactorFailed(str(e))
            if not is_petsc(A):  # MUMPS reports a zero pivot (or no memory) as the PC's failure, not an error
                reason = st[0].getPC().getFailedReason()
                if reason:
                    from petsc4py import PETSc

                    names = {v: k for k, v in vars(PETSc.PC.FailedReason).items() if not k.startswith("_")}
                    return FactorFailed(f"MUMPS: {names.get(reason, reason)}")
            return MumpsState(ksp, st, complex_input)
        raise ValueError(f"Direct: unknown backend {self.backend!r}; use 'superlu' or 'mumps'")

    def run(self, state, A, b, x0, tol, callback):
        if isinstance(state, FactorFailed):
            x = np.zeros_like(b) if not is_petsc(b) else b.duplicate()
            return RunResult(x, ReturnCode.Breakdown, 0, [], f"factorization failed: {state.error}")
        if not is_petsc(b):
            b = np.asarray(b)
            if np.iscomplexobj(b) and not is_complex(A):  # a real factorization: real and imaginary parts
                parts = [self.run(state, A, np.ascontiguousarray(v), None, tol, None) for v in (b.real, b.imag)]
                bad = next((r for r in parts if r.retcode is not ReturnCode.Success), parts[0])
                return RunResult(parts[0].x + 1j * parts[1].x, bad.retcode, 1, [], bad.message)
            if b.ndim == 2 and self.backend == "mumps":  # a block of right-hand sides, one solve per column
                cols = [self.run(state, A, np.ascontiguousarray(b[:, j]), None, tol, None) for j in range(b.shape[1])]
                bad = next((r for r in cols if r.retcode is not ReturnCode.Success), cols[0])
                return RunResult(np.column_stack([r.x for r in cols]), bad.retcode, 1, [], bad.message)
        if self.backend == "superlu":
            x = state.solve(b)
        else:
            ksp, st, complex_input = state.ksp, state.ksp_state, state.complex_input
            if complex_input:
                # interleaved (br, bi) pairs are the complex vector's own memory; (xr, -xi) pairs likewise
                rhs = np.ascontiguousarray(b, dtype=np.complex128).view(np.float64)
                res = ksp.run(st, None, rhs, None, tol._replace(maxiter=1), None)
                x = np.ascontiguousarray(res.x, dtype=np.float64).view(np.complex128)
                np.conjugate(x, out=x)
            else:
                res = ksp.run(st, A, b, None, tol._replace(maxiter=1), None)
                x = res.x
            if res.retcode is ReturnCode.Breakdown:
                return RunResult(x, ReturnCode.Breakdown, 1, [], res.message)
        ok = bool(np.all(np.isfinite(x))) if not is_petsc(x) else np.isfinite(x.norm())
        return RunResult(x, ReturnCode.Success if ok else ReturnCode.Breakdown, 1, [],
                         "" if ok else "direct solve produced non-finite values")

    @property
    def label(self) -> str:
        return f"Direct({self.backend})"


def blr(tolerance: float = 1e-5) -> dict:
    """MUMPS options of a block-low-rank factorization (ICNTL(35) = 1, CNTL(7) = ``tolerance``): blocks of
    the factors compressed to that relative accuracy. On the Helmholtz coarse operator of two-level deflation
    at n = 1024 (263k unknowns) ``1e-5`` took the factorization from 19.0 to 11.4 s with a solve residual of
    2e-4; on the fine operator (1.05M) from 25.5 to 22.7 s with 1.5e-3."""
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float, np.floating)) \
            or not (np.isfinite(tolerance) and 0 < tolerance < 1):
        raise ValueError(f"blr: tolerance must be a number in (0, 1), got {tolerance!r}")
    return {"mat_mumps_icntl_35": 1, "mat_mumps_cntl_7": float(tolerance)}


def complex_symmetric(A, tol: float = 1e-13) -> bool:
    """``A = A^T`` entry by entry, each difference judged against the larger of its row's and its column's
    largest entry: a test relative to ``max |A|`` passed a non-symmetric block beside a symmetric one 1e14
    times larger, whose L D L^T factorization was then wrong (a user trial)."""
    A = canonical_csr(A)
    D = abs(A - A.T).tocoo()
    if D.nnz == 0:
        return True
    rowmax = np.zeros(A.shape[0])
    rows = np.flatnonzero(np.diff(A.indptr))
    rowmax[rows] = np.maximum.reduceat(np.abs(A.data), A.indptr[rows])
    return bool(np.all(D.data <= tol * np.maximum(rowmax[D.row], rowmax[D.col])))


def real_equivalent(A) -> sp.csr_matrix:
    """The real matrix of twice the size that solves ``A x = b`` unknown by unknown: entry ``a = ar + i ai``
    becomes the 2 x 2 block ``[[ar, ai], [ai, -ar]]`` at rows and columns ``2i, 2i + 1``, the unknowns are the
    pairs ``(xr, -xi)`` and the right-hand side the pairs ``(br, bi)`` (``b.view(float64)``). Symmetric when
    ``A`` is complex symmetric. Built as a block-sparse matrix on ``A``'s own CSR structure (no
    intermediate of the result's size beyond its blocks)."""
    A = canonical_csr(A)
    blocks = np.empty((A.nnz, 2, 2))
    blocks[:, 0, 0] = A.data.real
    blocks[:, 0, 1] = blocks[:, 1, 0] = A.data.imag
    blocks[:, 1, 1] = -A.data.real
    n = A.shape[0]
    return sp.bsr_matrix((blocks, A.indices, A.indptr), shape=(2 * n, 2 * n)).tocsr()
