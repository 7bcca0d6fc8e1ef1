"""Heat equation ``du/dt - div(kappa grad u) = f`` by implicit Euler: one matrix, many solves."""

from __future__ import annotations

import numpy as np
import scipy.sparse.linalg as spla

import dolfinx.fem as fem
import ufl

from ..system import LinearSystem
from .base import Problem, assemble_matrix, assemble_rhs, assemble_system, constrained_dofs


class Heat(Problem):
    """Implicit Euler for the heat equation.

    Each step solves ``(M + dt K) u^{n+1} = M u^n + dt F`` with the same matrix, so a factorization or
    AMG hierarchy is set up once (:meth:`run` factorizes once with SuperLU; pass ``solve`` to use any
    other solver, e.g. a cache from ``solvers.linear.init``).

    Parameters
    ----------
    kappa : conductivity (positive), f : source (time independent), dt : step (positive),
    u0 : initial condition (number, callable, Function). bcs as for :class:`Darcy`.
    """

    name = "heat"

    def __init__(self, mesh, dt: float, u0=0.0, kappa=1.0, f=0.0, bcs=None, degree: int = 1):
        super().__init__(mesh, bcs, degree)
        if not np.isfinite(dt) or dt <= 0:
            raise ValueError(f"time step dt must be positive and finite, got {dt!r}")
        self.dt = float(dt)
        self.kappa = self.coefficient(kappa, "kappa", positive=True)
        self.f = self.data(f, "f")
        self.u_prev = fem.Function(self.space, name="u_prev")
        init = self.data(u0, "u0")
        self.u_prev.interpolate(fem.Expression(init, self.space.element.interpolation_points))
        self._compiled = None

    def forms(self, u, v):
        dt = self.dt
        a = (u * v + dt * ufl.inner(self.kappa * ufl.grad(u), ufl.grad(v))) * ufl.dx
        L = (self.u_prev * v + dt * self.f * v) * ufl.dx
        return a, L

    def assemble(self) -> LinearSystem:
        """The step matrix and the right-hand side of the first step."""
        a, L = self.full_forms()
        a_form, L_form = fem.form(a), fem.form(L)
        bcs = self.dirichlet_bcs()
        A, b = assemble_system(a_form, L_form, bcs)
        self._compiled = (a_form, L_form, bcs, assemble_matrix(a_form))  # for the lifting of every step
        return LinearSystem(A, b, self.space, constrained_dofs(bcs), self.mesh, (a_form, L_form), bcs, self.name)

    def step_rhs(self, u_prev: np.ndarray) -> np.ndarray:
        """Right-hand side of the step from the state ``u_prev`` (owned dof values)."""
        if self._compiled is None:
            self.assemble()
        a_form, L_form, bcs, A_full = self._compiled
        n = len(u_prev)
        self.u_prev.x.array[:n] = u_prev
        self.u_prev.x.scatter_forward()
        return assemble_rhs(a_form, L_form, bcs, A_full=A_full)

    def run(self, steps: int, solve=None) -> np.ndarray:
        """March ``steps`` steps; returns the states, shape ``(steps + 1, ndofs)`` (row 0 = ``u0``).

        ``solve(b)`` defaults to one SuperLU factorization reused for every step. It may return the
        solution vector or a ``solvers.linear.Solution`` (so ``solve=cache.solve`` of a
        ``solvers.linear.init`` cache works); a ``Solution`` that did not converge stops the march with a
        ``RuntimeError`` naming the step and the return code.
        """
        system = self.assemble()
        if solve is None:
            lu = spla.splu(system.A.tocsc(), permc_spec="MMD_AT_PLUS_A")
            solve = lu.solve
        n = system.A.shape[0]
        states = np.empty((int(steps) + 1, n))
        states[0] = self.u_prev.x.array[:n]
        for k in range(int(steps)):
            states[k + 1] = step_solution(solve(self.step_rhs(states[k])), k + 1, n)
        return states


def step_solution(result, step: int, n: int) -> np.ndarray:
    """The state a user ``solve`` returned: an array of ``n`` values, or a converged ``Solution``'s ``x``."""
    from ..linear.solution import Solution

    if isinstance(result, Solution):
        if not result.converged:
            raise RuntimeError(f"Heat.run: the solve of step {step} returned {result.retcode.name}: "
                               f"{result.message} (true relative residual {result.residual:.3e})")
        result = result.x
    x = np.asarray(result)
    if x.shape != (n,) or not np.issubdtype(x.dtype, np.number):
        raise ValueError(f"Heat.run: solve(b) must return {n} values or a solvers.linear.Solution, got "
                         f"{type(result).__name__} of shape {getattr(x, 'shape', '?')} at step {step}")
    return x
