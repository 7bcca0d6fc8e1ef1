"""``LinearProblem``: only data, ``A x = b`` with an optional initial guess and parameters ``p``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla


def is_petsc(obj) -> bool:
    """True for petsc4py objects (checked by module name so petsc4py is only imported when used)."""
    return type(obj).__module__.startswith("petsc4py")


def is_complex(A) -> bool:
    """A complex matrix (scipy sparse or array)."""
    return np.iscomplexobj(A.data if sp.issparse(A) else A)


def canonical_csr(A) -> sp.csr_matrix:
    """``A`` as CSR with sorted indices and no duplicates, without touching the caller's arrays: scipy's
    ``csr_matrix(A)`` shares them, and ``sort_indices`` / ``sum_duplicates`` work in place, which corrupts any
    other matrix built on the same index arrays (a user trial found one whose values moved)."""
    C = sp.csr_matrix(A)
    if not C.has_canonical_format:
        C = C.copy()
        C.sum_duplicates()
    return C


@dataclass
class PrecondParams:
    """What a preconditioner may need beyond ``A`` (LinearSolve.jl passes ``p`` to its ``precs``).

    The solver passes ``LinearProblem.p`` to ``setup(A, p)`` untouched, so ``p`` may be any object; this
    small record is the convention the toolkit's own preconditioners read (through
    ``solvers.linear.preconditioners.base.param``, which also accepts a dict with these keys).

    Attributes
    ----------
    coefficient : the PDE coefficient, as a grid array ``(ny+1, nx+1)`` or nodal values (dof order)
    grid : ``meshes.GridView`` (or a shape ``(ny+1, nx+1)`` when dofs are already in grid order)
    constrained : indices of constrained (Dirichlet) dofs, whose rows of ``A`` are identity rows
    device : where learned parts run (``"cpu"``, ``"cuda"``); classical ones ignore it
    operators : named auxiliary matrices (``LinearSystem.aux``; Helmholtz: ``"k2M"``, the
        ``k^2``-weighted mass matrix of the shifted-Laplacian preconditioner)
    """

    coefficient: Any = None
    grid: Any = None
    constrained: Any = None
    device: Any = None
    operators: Any = None

    @classmethod
    def from_system(cls, system, coefficient=None, grid=None, device=None) -> "PrecondParams":
        """Parameters of an assembled ``solvers.LinearSystem``: its constrained dofs, its auxiliary
        operators and, when it has one, its grid view."""
        aux = dict(getattr(system, "aux", None) or {})
        return cls(coefficient=coefficient, grid=grid if grid is not None else aux.get("grid"),
                   constrained=getattr(system, "constrained", None), device=device,
                   operators={k: v for k, v in aux.items() if k != "grid"} or None)


@dataclass(frozen=True, eq=False)
class LinearProblem:
    """``A x = b``.

    Parameters
    ----------
    A : scipy sparse matrix, ndarray, ``scipy.sparse.linalg.LinearOperator`` or PETSc ``Mat``
    b : ndarray (or PETSc ``Vec`` with a PETSc ``Mat``)
    x0 : initial guess (zeros when ``None``)
    p : parameters passed to the preconditioner's ``setup(A, p)`` (a :class:`PrecondParams`, a dict, or
        any object the preconditioner understands)
    nullspace : ``None`` (``A`` is nonsingular), or an orthonormal basis of the null space of ``A`` as an
        ndarray of shape ``(n,)`` or ``(n, k)`` (owned entries of a distributed problem). Kept apart from
        ``p`` because the *solve* uses it, not the preconditioner: ``b`` must be orthogonal to it (within
        the tolerance; otherwise ``InvalidInput`` naming the mismatch, as there is no solution), and the
        solution comes back with its null-space component removed, so every method gives the same ``x``
        (for a pure Neumann Poisson/Darcy problem: the solution with zero mean).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from solvers.linear import LinearProblem, solve, CG
    >>> A = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(50, 50), format="csr")
    >>> sol = solve(LinearProblem(A, np.ones(50)), CG(), rtol=1e-10)
    >>> sol.retcode.name, sol.iterations
    ('Success', 25)
    """

    A: Any
    b: Any
    x0: Any = None
    p: Any = None
    nullspace: Any = None

    @classmethod
    def from_system(cls, system, x0=None, p=None) -> "LinearProblem":
        """The problem of an assembled ``solvers.LinearSystem`` (``p`` defaults to its constrained dofs;
        the null space is the system's)."""
        return cls(system.A, system.b, x0, PrecondParams.from_system(system) if p is None else p,
                   getattr(system, "nullspace", None))

    @property
    def petsc(self) -> bool:
        return is_petsc(self.A)

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.A.getSize()) if self.petsc else tuple(self.A.shape)


def check_problem(A, b, x0, check_matrix_values: bool = True) -> str | None:
    """A message describing what is wrong with ``(A, b, x0)``, or ``None``.

    ``check_matrix_values=False`` skips the O(nnz) scan of ``A`` for non-finite entries (a cache does it
    once per matrix, not once per right-hand side)."""
    if is_petsc(A):
        return None if is_petsc(b) else "a PETSc Mat needs a PETSc Vec right-hand side"
    if not (sp.issparse(A) or isinstance(A, (np.ndarray, spla.LinearOperator))):
        return f"A must be a sparse matrix, ndarray or LinearOperator, got {type(A).__name__}"
    if len(A.shape) != 2 or A.shape[0] != A.shape[1]:
        return f"A must be square, got shape {A.shape}"
    b = np.asarray(b)
    if b.shape != (A.shape[0],):
        return f"b has shape {b.shape}, expected ({A.shape[0]},)"
    if not np.all(np.isfinite(b)):
        return f"b has non-finite entries at {np.flatnonzero(~np.isfinite(b))[:5].tolist()}"
    if check_matrix_values and sp.issparse(A) and not np.all(np.isfinite(A.data)):
        return "A has non-finite entries (NaN or inf)"
    if check_matrix_values and isinstance(A, np.ndarray) and not np.all(np.isfinite(A)):
        return "A has non-finite entries (NaN or inf)"
    if x0 is not None:
        x0 = np.asarray(x0)
        if x0.shape != b.shape:
            return f"x0 has shape {x0.shape}, expected {b.shape}"
        if not np.all(np.isfinite(x0)):
            return "x0 has non-finite entries"
    return None
