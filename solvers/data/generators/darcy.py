"""The Darcy family: ``darcy`` (random coefficient), ``poisson`` (random forcing), ``darcy-rhs`` (fixed
coefficient, random right-hand sides)."""

from __future__ import annotations

from ...sampling.params import FINITE
from .base import COEFFICIENT_DEFAULTS, GridProblem
from .reuse import reused_solver
from .samplers import coefficient_grid, grf


class DarcyData(GridProblem):
    """``-div(a grad u) = f`` on the unit square, ``u = 0`` on the boundary; ``a`` random per sample.

    Fields: ``coefficient`` and ``solution`` as ``(n+1, n+1)`` grids (and ``forcing`` when sampled).
    """

    name = "darcy"
    defaults = {**COEFFICIENT_DEFAULTS, "f": 1.0, "forcing": "constant", "mesh": None}
    rules = {"f": FINITE}

    def __init__(self, n, seed, params=None):
        super().__init__(n, seed, params)
        self.B = self.asm.stiffness_operator()
        self.solver = reused_solver(self.template.A, self.params["solver"])
        self.b_const = self.template.b * float(self.params["f"])

    def fields(self) -> dict:
        s = self.view.shape
        f = {"coefficient": s, "solution": s}
        if self.params["forcing"] == "grf":
            f["forcing"] = s
        return f

    def sample(self, index: int) -> dict:
        p = self.params
        a_grid = coefficient_grid(p["coefficient"], self.n, self.seed, index, p, self.view)
        self.solver.factor(self.asm.matrix(self.B @ self.view.to_dofs(a_grid)).data)
        out = {"coefficient": a_grid}
        if p["forcing"] == "grf":
            f_grid = grf(self.view, self.n, self.seed + 1_000_003, index, p)
            b = self.rhs(self.view.to_dofs(f_grid))
            out["forcing"] = f_grid
        else:
            b = self.b_const
        out["solution"] = self.view.to_grid(self.solver.solve(b))
        return self.check(index, out)


class PoissonData(GridProblem):
    """``-Laplace(u) = f`` with a random smooth forcing ``f`` (GRF); one factorization for all samples."""

    name = "poisson"
    defaults = {"alpha": 2.0, "tau": 3.0, "modes": 64, "solver": "auto", "mesh": None}

    def __init__(self, n, seed, params=None):
        super().__init__(n, seed, params)
        self.solver = reused_solver(self.template.A, self.params["solver"])
        self.solver.factor(self.template.A.data)

    def fields(self):
        return {"forcing": self.view.shape, "solution": self.view.shape}

    def sample(self, index):
        p = self.params
        f = grf(self.view, self.n, self.seed, index, p)
        u = self.solver.solve(self.rhs(self.view.to_dofs(f)))
        return self.check(index, {"forcing": f, "solution": self.view.to_grid(u)})


class DarcyRhsData(PoissonData):
    """A *fixed* coefficient (sample 0 of the coefficient sampler) and many random right-hand sides:
    the pairs ``(f, u = A^{-1} f)`` a learned preconditioner trains on."""

    name = "darcy-rhs"
    defaults = {**COEFFICIENT_DEFAULTS, "mesh": None}

    def __init__(self, n, seed, params=None):
        GridProblem.__init__(self, n, seed, params)
        p = self.params
        self.a_grid = coefficient_grid(p["coefficient"], self.n, self.seed, 0, p, self.view)
        A = self.asm.matrix(self.asm.stiffness_operator() @ self.view.to_dofs(self.a_grid))
        self.solver = reused_solver(A, p["solver"])
        self.solver.factor(A.data)

    def fixed_arrays(self) -> dict:
        return {"coefficient": self.a_grid}
