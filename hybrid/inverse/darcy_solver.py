"""``DarcySolver``: forward solves, adjoint solves and exact coefficient gradients of a ``DarcyFamily``.

The discrete state equation (P1, nodal coefficient ``a``, Dirichlet dofs ``c`` with values ``g``) is

    sum_j A_full(a)_ij u_j = F_i  on free rows i,      u_c = g_c,

with ``A_full(a)`` the stiffness matrix *before* elimination, whose CSR values are ``B @ a`` (+ a Robin part
that depends on no coefficient). ``u_c`` does not depend on ``a``, and the free block solves
``A_ff u_f = F_f - A_fc g_c``: the lifting term depends on ``a``. For a loss ``L(u)`` with ``gL = dL/du``,
the adjoint ``lam = A(a)^{-1} gL`` (``A(a)`` the eliminated, symmetric matrix; ``gL`` zeroed on the
constrained rows, so ``lam_c = 0`` and ``lam_f = A_ff^{-1} gL_f``) gives

    dL/da_k = -sum_{(i, j) in pattern} lam_i u_j B[(i, j), k] = -(B^T (lam[rows] * u[cols]))_k,

summed over *all* columns ``j`` (the full ``u`` with its boundary values), which is the lifting term's
derivative; constrained rows drop out because ``lam_c = 0``. Exact, so nonzero Dirichlet data is handled.
The adjoint uses the forward's solver setup (one factorization, or one AMG hierarchy) and costs one
solve with it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

#: ``Stalled`` means rounding-limited (the attainable accuracy in double precision): accepted
_ACCEPTED = ("Success", "Stalled")


@dataclass
class SolveCounts:
    """What the solver did: forward and adjoint solves, setups (factorizations / AMG hierarchies), seconds."""

    forward: int = 0
    adjoint: int = 0
    setups: int = 0
    forward_s: float = 0.0
    adjoint_s: float = 0.0

    def as_dict(self) -> dict:
        return dict(forward_solves=self.forward, adjoint_solves=self.adjoint, setups=self.setups,
                    forward_s=self.forward_s, adjoint_s=self.adjoint_s)


@dataclass
class Setup:
    """One coefficient's system with its solver cache (factorization or AMG hierarchy)."""

    a: np.ndarray
    A: sp.csr_matrix
    b: np.ndarray
    cache: object
    extra: dict = field(default_factory=dict)


class DarcySolver:
    """Solves a :class:`solvers.DarcyFamily` for coefficients ``a`` and differentiates through the solve.

    Parameters
    ----------
    family : solvers.DarcyFamily
    method : a name of :data:`solvers.linear.methods.METHODS` (``"direct-superlu"``, the default, or
        ``"pyamg-sa+cg"``, ...) or an algorithm value (``solvers.linear.CG(precond=AMG("sa"))``)
    rtol : true relative residual asked of every forward and adjoint solve (a gradient is as accurate
        as its solves)

    Examples
    --------
    >>> import numpy as np, meshes
    >>> from solvers import DarcyFamily
    >>> s = DarcySolver(DarcyFamily(meshes.unit_square(8)))
    >>> a = np.ones(s.ndofs); u, setup = s.solve(a)
    >>> g = s.coefficient_gradient(s.adjoint(setup, u), u)   # d(0.5 |u|^2)/da
    >>> bool(g.sum() < 0)                                       # a larger coefficient, a smaller u
    True
    """

    def __init__(self, family, method="direct-superlu", rtol: float = 1e-10, maxiter: int | None = None):
        from solvers.linear import Algorithm
        from solvers.linear.methods import method as named_method

        self.family = family
        self.alg = method if isinstance(method, Algorithm) else named_method(method)
        self.method = method if isinstance(method, str) else self.alg.label
        if not 0 < rtol < 1:
            raise ValueError(f"rtol must be in (0, 1), got {rtol}")
        self.rtol, self.maxiter = rtol, maxiter
        asm = family.asm
        self.rows = np.repeat(np.arange(asm.n), np.diff(asm.indptr))
        self.cols = asm.indices
        self.BT = family.B.T.tocsr()
        self.free = family.free
        self.counts = SolveCounts()

    @property
    def ndofs(self) -> int:
        return self.family.ndofs

    @property
    def coordinates(self) -> np.ndarray:
        """``(ndofs, 2)`` coordinates of the nodal values."""
        return self.family.template.space.tabulate_dof_coordinates()[:, :2]

    # -- assembly --------------------------------------------------------------------------------------------
    def values(self, a: np.ndarray) -> np.ndarray:
        """CSR values of ``A_full(a)`` on the family's pattern (before Dirichlet elimination)."""
        return self.family.B @ a + self.family.extra

    def system(self, a) -> tuple[sp.csr_matrix, np.ndarray]:
        """``(A(a), b(a))``: eliminated matrix and lifted right-hand side (as ``DarcyFamily.system``)."""
        fam = self.family
        values = self.values(a)
        b = fam.F.copy()
        if np.any(fam.g):
            b -= self.free * (fam.asm.matrix(values, eliminate=False) @ fam.g)
            b[~self.free] = fam.g[~self.free]
        return fam.asm.matrix(values), b

    # -- solves ----------------------------------------------------------------------------------------------
    def setup(self, a) -> Setup:
        """Assemble ``A(a)`` and make its solver cache (the setup itself runs on the first solve)."""
        from solvers.linear import LinearProblem, init

        a = self.family.nodal(a)  # checks shape, finiteness and positivity, naming the value
        A, b = self.system(a)
        cache = init(LinearProblem(A, b), self.alg, rtol=self.rtol, maxiter=self.maxiter)
        return Setup(a, A, b, cache)

    def _run(self, setup: Setup, b: np.ndarray, what: str) -> np.ndarray:
        before = setup.cache.setup_count
        sol = setup.cache.solve(b)
        self.counts.setups += setup.cache.setup_count - before
        if sol.retcode.name not in _ACCEPTED:
            raise RuntimeError(f"{what} solve failed ({self.alg.label}): {sol.retcode.name}: "
                               f"{sol.stats.get('message', '')}")
        return sol.x

    def solve(self, a) -> tuple[np.ndarray, Setup]:
        """``(u, setup)``: the solution for coefficient ``a`` and the setup the adjoint will reuse."""
        t = time.perf_counter()
        setup = self.setup(a)
        u = self._run(setup, setup.b, "forward")
        self.counts.forward += 1
        self.counts.forward_s += time.perf_counter() - t
        return u, setup

    def solve_with(self, setup: Setup, b: np.ndarray, what: str = "forward") -> np.ndarray:
        """``A(a)^{-1} b`` for another right-hand side, reusing ``setup``'s factorization or hierarchy; counted
        as a forward or adjoint solve (``what``)."""
        t = time.perf_counter()
        x = self._run(setup, b, what)
        if what == "adjoint":
            self.counts.adjoint += 1
            self.counts.adjoint_s += time.perf_counter() - t
        else:
            self.counts.forward += 1
            self.counts.forward_s += time.perf_counter() - t
        return x

    def adjoint(self, setup: Setup, g: np.ndarray) -> np.ndarray:
        """``lam = A(a)^{-1} g`` with ``g`` zeroed on the constrained rows (``A`` is symmetric, so the
        adjoint matrix is ``A`` itself), reusing ``setup``'s factorization or hierarchy."""
        t = time.perf_counter()
        g = np.array(g, dtype=float, copy=True)
        g[~self.free] = 0.0
        if not np.any(g):
            lam = np.zeros_like(g)
        else:
            lam = self._run(setup, g, "adjoint")
            lam[~self.free] = 0.0
        self.counts.adjoint += 1
        self.counts.adjoint_s += time.perf_counter() - t
        return lam

    def coefficient_gradient(self, lam: np.ndarray, u: np.ndarray) -> np.ndarray:
        """``dL/da = -B^T (lam_i u_j)`` over the stored entries (see the module docstring); ``lam`` and
        ``u`` may be ``(ndofs,)`` or ``(ndofs, k)`` (one column per coefficient)."""
        w = lam[self.rows] * u[self.cols]
        return -(self.BT @ w)

    def matrix_product_gradient(self, w: np.ndarray, u: np.ndarray) -> np.ndarray:
        """``d/da (w^T A_full(a) u)`` = ``B^T (w_i u_j)`` (for observations that use ``A_full``, such as
        boundary fluxes)."""
        return self.BT @ (w[self.rows] * u[self.cols])
