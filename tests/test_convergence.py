"""Manufactured solutions: measured L2/H1 convergence rates (scikit-fem style base class)."""

import numpy as np
import pytest
import scipy.sparse.linalg as spla
import ufl

import meshes
import solvers
from solvers import Dirichlet, Neumann, Robin
from solvers.errors import error_norms, rates


def direct(system):
    return spla.splu(system.A.tocsc(), permc_spec="MMD_AT_PLUS_A").solve(system.b)


class ConvergenceCase:
    """Subclasses define ``exact(x)`` (UFL), ``problem(mesh, x)``, the degree and expected rates."""

    ns = (8, 16, 32)
    degree = 1
    l2_rate = 2.0
    h1_rate = 1.0
    tol = 0.15

    def exact(self, x):
        raise NotImplementedError

    def problem(self, mesh, x):
        raise NotImplementedError

    def make_mesh(self, n):
        return meshes.unit_square(n)

    def test_rates(self):
        l2, h1, hs = [], [], []
        for n in self.ns:
            mesh = self.make_mesh(n)
            x = ufl.SpatialCoordinate(mesh.mesh)
            system = self.problem(mesh, x).assemble()
            uh = system.function(direct(system))
            e0, e1 = error_norms(uh, self.exact(x))
            l2.append(e0)
            h1.append(e1)
            hs.append(1.0 / n)
        r0, r1 = rates(l2, hs), rates(h1, hs)
        assert r0[-1] == pytest.approx(self.l2_rate, abs=self.tol), (l2, r0)
        assert r1[-1] == pytest.approx(self.h1_rate, abs=self.tol), (h1, r1)


def _sinsin(x):
    return ufl.sin(np.pi * x[0]) * ufl.sin(2 * np.pi * x[1])


class TestPoissonP1(ConvergenceCase):
    def exact(self, x):
        return _sinsin(x)

    def problem(self, mesh, x):
        return solvers.Poisson(mesh, f=-ufl.div(ufl.grad(self.exact(x))))


class TestPoissonP2(TestPoissonP1):
    degree = 2
    l2_rate, h1_rate = 3.0, 2.0
    ns = (4, 8, 16)

    def problem(self, mesh, x):
        return solvers.Poisson(mesh, f=-ufl.div(ufl.grad(self.exact(x))), degree=2)


class TestDarcyVariableCoefficient(ConvergenceCase):
    """Nonzero Dirichlet data from a callable, coefficient from a callable."""

    def exact(self, x):
        return ufl.exp(x[0]) * ufl.cos(np.pi * x[1])

    def problem(self, mesh, x):
        a_ufl = 1 + x[0] ** 2 + 0.5 * ufl.sin(3 * x[1])
        u = self.exact(x)
        g = lambda X: np.exp(X[0]) * np.cos(np.pi * X[1])  # noqa: E731
        return solvers.Darcy(mesh, a=a_ufl, f=-ufl.div(a_ufl * ufl.grad(u)),
                             bcs=[Dirichlet(b, g) for b in ("left", "right", "bottom", "top")])


class TestDarcyGridCoefficientP2(TestDarcyVariableCoefficient):
    """Coefficient given as a nodal grid array (P1 through GridView), solution in P2.

    The P1 coefficient is exact here (a is bilinear... affine), so the P2 rates are not polluted.
    """

    degree = 2
    l2_rate, h1_rate = 3.0, 2.0
    ns = (4, 8, 16)

    def problem(self, mesh, x):
        view = meshes.GridView(mesh)
        X, Y = view.coordinates()
        a_grid = 2.0 + X + 0.5 * Y
        a_ufl = 2.0 + x[0] + 0.5 * x[1]
        u = self.exact(x)
        return solvers.Darcy(mesh, a=a_grid, f=-ufl.div(a_ufl * ufl.grad(u)), degree=2,
                             bcs=[Dirichlet(b, u) for b in ("left", "right", "bottom", "top")])


class TestNeumannRobin(ConvergenceCase):
    """Dirichlet left, Neumann flux right and top, Robin bottom, with exact data."""

    def exact(self, x):
        return ufl.cos(x[0]) * ufl.exp(x[1]) + x[0] * x[1]

    def problem(self, mesh, x):
        u = self.exact(x)
        a = 1.0 + x[1]
        q = a * ufl.grad(u)
        n = ufl.FacetNormal(mesh.mesh)
        alpha = 3.0
        return solvers.Darcy(mesh, a=a, f=-ufl.div(q), bcs=[
            Dirichlet("left", u),
            Neumann("right", ufl.dot(q, n)),
            Neumann("top", ufl.dot(q, n)),
            # q.n + alpha (u - g) = 0  =>  g = u + q.n / alpha
            Robin("bottom", alpha, u + ufl.dot(q, n) / alpha),
        ])


class TestElasticityP1(ConvergenceCase):
    ns = (8, 16, 32)

    def exact(self, x):
        return ufl.as_vector([ufl.sin(np.pi * x[0]) * x[1], 0.1 * ufl.cos(x[0]) * ufl.sin(np.pi * x[1])])

    def problem(self, mesh, x):
        p = solvers.Elasticity(mesh, E=10.0, nu=0.3, degree=self.degree)
        u = self.exact(x)
        traction_n = ufl.FacetNormal(mesh.mesh)
        return solvers.Elasticity(mesh, E=10.0, nu=0.3, degree=self.degree,
                                  body_force=-ufl.div(p.sigma(u)),
                                  bcs=[Dirichlet("left", u), Dirichlet("bottom", u), Dirichlet("top", u),
                                       Neumann("right", ufl.dot(p.sigma(u), traction_n))])


class TestElasticityP2(TestElasticityP1):
    degree = 2
    l2_rate, h1_rate = 3.0, 2.0
    ns = (4, 8, 16)


class TestConvectionDiffusion(ConvergenceCase):
    """Non-symmetric operator, moderate Peclet number; Galerkin rates."""

    def exact(self, x):
        return ufl.sin(np.pi * x[0]) * x[1] * (1 - x[1])

    def problem(self, mesh, x):
        u, eps, w = self.exact(x), 0.1, ufl.as_vector([1.0, 0.5])
        return solvers.ConvectionDiffusion(mesh, eps=eps, velocity=(1.0, 0.5),
                                           f=-eps * ufl.div(ufl.grad(u)) + ufl.dot(w, ufl.grad(u)))


class TestPoisson3D(ConvergenceCase):
    ns = (4, 8)
    tol = 0.25

    def make_mesh(self, n):
        return meshes.unit_cube(n)

    def exact(self, x):
        return ufl.sin(np.pi * x[0]) * x[1] * (1 - x[1]) * ufl.cos(x[2])

    def problem(self, mesh, x):
        u = self.exact(x)
        return solvers.Poisson(mesh, f=-ufl.div(ufl.grad(u)),
                               bcs=[Dirichlet(b, u) for b in mesh.boundaries])


def test_helmholtz_plane_wave_converges():
    """exp(i k x): Dirichlet 1 on the left, absorbing right (exact there), natural top/bottom."""
    k, errs, hs = 6.0, [], []
    for n in (16, 32, 64):
        mesh = meshes.unit_square(n)
        system = solvers.Helmholtz(mesh, k=k, absorbing=["right"], bcs=[Dirichlet("left", 1.0)]).assemble()
        x = spla.spsolve(system.A.tocsc(), system.b)
        X = system.space.tabulate_dof_coordinates()
        errs.append(np.abs(x - np.exp(1j * k * X[:, 0])).max())
        hs.append(1.0 / n)
        assert system.relative_residual(x) < 1e-10
    r = rates(errs, hs)
    assert r[-1] == pytest.approx(2.0, abs=0.2), (errs, r)
    assert errs[-1] < 5e-3


def test_helmholtz_oblique_wave_complex_dirichlet():
    """An oblique plane wave with complex Dirichlet data on three sides, absorbing on none."""
    k, d = 8.0, np.array([np.cos(0.3), np.sin(0.3)])
    exact = lambda X: np.exp(1j * k * (d[0] * X[0] + d[1] * X[1]))  # noqa: E731
    mesh = meshes.unit_square(48)
    system = solvers.Helmholtz(mesh, k=k, degree=2, bcs=[Dirichlet(b, exact) for b in mesh.boundaries]).assemble()
    x = spla.spsolve(system.A.tocsc(), system.b)
    X = system.space.tabulate_dof_coordinates().T
    assert np.abs(x - exact(X)).max() < 1e-4


def test_heat_implicit_euler_first_order():
    """Eigenfunction decay exp(-2 pi^2 t): time error halves with dt (P2 keeps space error small)."""
    mesh = meshes.unit_square(24)
    T, errs = 0.05, []
    for steps in (5, 10, 20):
        heat = solvers.Heat(mesh, dt=T / steps, degree=2,
                            u0=lambda X: np.sin(np.pi * X[0]) * np.sin(np.pi * X[1]))
        states = heat.run(steps)
        uh = heat.assemble().function(states[-1])
        x = ufl.SpatialCoordinate(mesh.mesh)
        exact = np.exp(-2 * np.pi**2 * T) * ufl.sin(np.pi * x[0]) * ufl.sin(np.pi * x[1])
        errs.append(error_norms(uh, exact)[0])
    r = rates(errs, [T / 5, T / 10, T / 20])
    assert r[-1] == pytest.approx(1.0, abs=0.15), (errs, r)


def test_error_norms_against_a_callable_and_a_finer_solution():
    """solvers.errors: a callable exact solution, and a reference solution on a refined (nested) mesh give
    the same rates (Poisson, u = sin(pi x) sin(2 pi y), P1)."""
    from solvers.errors import RateTable

    def solve_on(mesh):
        x = ufl.SpatialCoordinate(mesh.mesh)
        system = solvers.Poisson(mesh, f=-ufl.div(ufl.grad(_sinsin(x)))).assemble()
        return system.function(direct(system))

    exact = lambda x: np.sin(np.pi * x[0]) * np.sin(2 * np.pi * x[1])  # noqa: E731
    levels = [meshes.unit_square(8)]
    for _ in range(3):
        levels.append(meshes.refine(levels[-1]))
    solutions = [solve_on(m) for m in levels]
    hs = [m.num_vertices ** -0.5 for m in levels[:3]]
    against_exact = [error_norms(u, exact) for u in solutions[:3]]
    against_fine = [error_norms(u, solutions[3]) for u in solutions[:3]]
    table = RateTable(hs, {"L2": [e.l2 for e in against_exact], "H1": [e.h1 for e in against_exact],
                           "H1 vs finest": [e.h1 for e in against_fine]}, {"L2": 2.0, "H1": 1.0})
    print(table)
    assert table.final_rate("L2") == pytest.approx(2.0, abs=0.15)
    assert table.final_rate("H1") == pytest.approx(1.0, abs=0.1)
    assert table.final_rate("H1 vs finest") == pytest.approx(1.0, abs=0.25)  # the reference's own error shows
    assert against_fine[0].l2 == pytest.approx(against_exact[0].l2, rel=0.1)
