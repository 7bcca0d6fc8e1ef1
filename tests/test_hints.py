"""HINTS-style relaxation and the smoothed warm start: a good correction accelerates, a broken one costs
nothing but its residual check; every answer is checked against the true residual."""

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

import meshes
import solvers
from solvers.linear import AMG, FGMRES, FlexibleCG, LinearProblem, ReturnCode, solve
from solvers.linear.preconditioners.base import Preconditioner
from solvers.sampling import field_from_spec

torch = pytest.importorskip("torch")
from hybrid.precond.hints import HybridRelaxation, SmoothedWarmStart  # noqa: E402


@pytest.fixture(scope="module")
def darcy():
    return solvers.Darcy(meshes.unit_square(32), a=field_from_spec("two-phase:seed=2"), f=1.0).assemble()


class CoarseOracle(Preconditioner):
    """What a trained operator approximates: the exact low-frequency correction ``P (P^T A P)^-1 P^T r``
    on aggregates of 4x4 cells (piecewise constant P, built from the dof coordinates)."""

    def __init__(self, coords):
        self.coords = coords

    def setup(self, A, p=None):
        self.A = A
        cell = np.minimum((self.coords[:, :2] * 8).astype(int), 7)  # 8 x 8 aggregates on the unit square
        agg = cell[:, 1] * 8 + cell[:, 0]
        P = sp.csr_matrix((np.ones(len(agg)), (np.arange(len(agg)), agg)))
        self.P = P
        self.lu = spla.splu((P.T @ A @ P).tocsc())
        return self

    def apply(self, r):
        return self.P @ self.lu.solve(self.P.T @ r)


class Broken(Preconditioner):
    def __init__(self, kind):
        self.kind = kind

    def apply(self, r):
        if self.kind == "nan":
            return np.full_like(r, np.nan)
        if self.kind == "zeros":
            return np.zeros_like(r)
        return np.random.default_rng(0).standard_normal(r.shape)


def _smoother_only(A, b, rtol):
    hr = HybridRelaxation(Broken("zeros"), every=10**9).setup(A)  # never calls the learned part
    return hr.iterate(b, rtol=rtol, maxiter=20000)


def test_hints_with_a_good_correction_beats_the_smoother(darcy):
    A, b = darcy.A, darcy.b
    plain = _smoother_only(A, b, 1e-6)
    hints = HybridRelaxation(CoarseOracle(darcy.space.tabulate_dof_coordinates()), every=3).setup(A).iterate(b, rtol=1e-6, maxiter=20000)
    assert plain.converged and hints.converged
    assert np.linalg.norm(b - A @ hints.x) <= 1e-6 * np.linalg.norm(b)
    assert hints.iterations < plain.iterations / 5, (hints.iterations, plain.iterations)
    assert hints.stats["precond"]["accepted"] > 0


@pytest.mark.parametrize("kind", ["nan", "zeros", "random"])
def test_hints_with_a_broken_model_still_converges_like_the_smoother(darcy, kind):
    A, b = darcy.A, darcy.b
    plain = _smoother_only(A, b, 1e-6)
    hints = HybridRelaxation(Broken(kind), every=5).setup(A).iterate(b, rtol=1e-6, maxiter=20000)
    assert hints.converged and np.linalg.norm(b - A @ hints.x) <= 1e-6 * np.linalg.norm(b)
    assert hints.iterations <= 1.2 * plain.iterations
    assert hints.stats["precond"]["accepted"] == 0


@pytest.mark.parametrize("alg", [FGMRES, FlexibleCG])
@pytest.mark.parametrize("kind", ["oracle", "nan", "random"])
def test_hints_as_a_preconditioner(darcy, alg, kind):
    """Against the same sweeps without learned steps (a model returning zeros, always rejected)."""
    def run(learned):
        pc = HybridRelaxation(learned, every=3, sweeps=7)
        return solve(LinearProblem.from_system(darcy), alg(precond=pc), rtol=1e-10)

    base = run(Broken("zeros"))
    sol = run(CoarseOracle(darcy.space.tabulate_dof_coordinates()) if kind == "oracle" else Broken(kind))
    assert sol.retcode is ReturnCode.Success and sol.residual <= 1e-10
    if kind == "oracle":
        assert sol.iterations <= 0.8 * base.iterations, (sol.iterations, base.iterations)
        assert sol.stats["precond"]["accepted"] > 0
    else:
        assert sol.iterations <= 1.2 * base.iterations and sol.stats["precond"]["accepted"] == 0


def test_hints_refused_by_plain_cg(darcy):
    from solvers.linear import CG

    sol = solve(LinearProblem.from_system(darcy), CG(precond=HybridRelaxation(CoarseOracle(darcy.space.tabulate_dof_coordinates()))))
    assert sol.retcode is ReturnCode.InvalidInput and "FlexibleCG" in sol.message


def test_smoothed_warm_start(darcy):
    A, b = darcy.A, darcy.b
    exact = spla.spsolve(A.tocsc(), b)
    rough = exact * (1 + 0.05 * np.random.default_rng(1).standard_normal(len(b)))  # 5% rough error
    assert np.linalg.norm(b - A @ rough) > np.linalg.norm(b)  # worse than zero, as the issue found
    ws = SmoothedWarmStart(lambda p: rough, sweeps=3)
    x0 = ws(A, b)
    assert np.linalg.norm(b - A @ x0) < 0.2 * np.linalg.norm(b) and ws.stats["accepted"] == 1
    cold = solve(LinearProblem(A, b), FlexibleCG(precond=AMG("rs")), rtol=1e-10)
    warm = solve(LinearProblem(A, b, x0=x0), FlexibleCG(precond=AMG("rs")), rtol=1e-10)
    assert warm.converged and warm.iterations <= cold.iterations
    for bad in (lambda p: np.full(len(b), np.nan), lambda p: np.ones(3), lambda p: 1 / 0):
        ws = SmoothedWarmStart(bad)
        assert not np.any(ws(A, b)) and ws.stats["rejected"] == 1
