"""Solver in the loop: the coefficient-linear family equals dolfinx's assembly, and solve_sequence's
reuse strategies all meet the tolerance on every solve while saving setups and iterations."""

import sys
from pathlib import Path

import numpy as np
import pytest

import meshes
from solvers import Darcy, DarcyFamily, Dirichlet, Neumann, Robin
from solvers.linear import AMG, CG, solve_sequence

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("bcs", [None,
                                 [Dirichlet("left", 1.0), Neumann("top", 2.0), Robin("right", alpha=3.0, value=0.5)],
                                 [Dirichlet("left", lambda x: x[1]), Dirichlet("right", 0.0)]],
                         ids=["zero-dirichlet", "mixed", "varying-dirichlet"])
def test_family_equals_dolfinx_assembly(bcs):
    mesh = meshes.unit_square(12)
    family = DarcyFamily(mesh, f=lambda x: 1 + x[0], bcs=bcs)
    rng = np.random.default_rng(3)
    for _ in range(2):
        a = 0.5 + rng.random(family.ndofs) * 10
        ref = Darcy(mesh, a=a, f=lambda x: 1 + x[0], bcs=bcs).assemble()
        got = family.system(a)
        assert abs(got.A - ref.A).max() < 1e-12 * abs(ref.A).max()
        assert np.abs(got.b - ref.b).max() < 1e-12 * max(1.0, np.abs(ref.b).max())


def test_family_accepts_grids_and_refuses_bad_coefficients():
    mesh = meshes.unit_square(8)
    family = DarcyFamily(mesh)
    grid = np.full((9, 9), 2.0)
    assert abs(family.matrix(grid) - Darcy(mesh, a=2.0).assemble().A).max() < 1e-12
    with pytest.raises(ValueError, match="must be positive everywhere, its minimum is -1"):
        family.matrix(np.full(family.ndofs, -1.0))
    with pytest.raises(ValueError, match="non-finite values at entries \\[3\\]"):
        a = np.ones(family.ndofs)
        a[3] = np.nan
        family.matrix(a)
    with pytest.raises(ValueError, match="grid shape \\(8, 8\\)"):
        family.matrix(np.ones((8, 8)))


def _systems(n=48, solves=12):
    from solvers.sampling import rotating_log_normal

    family = DarcyFamily(meshes.unit_square(n))
    return [family.system(a) for a in rotating_log_normal(n, solves)]


@pytest.mark.parametrize("reuse,warm", [("rebuild", None), ("keep", "previous"), ("refresh", None),
                                        ("refresh", "previous"), ("auto", "projection")])
def test_every_strategy_meets_the_tolerance(reuse, warm):
    systems = _systems()
    res = solve_sequence(systems, CG(precond=AMG("rs")), reuse=reuse, warm_start=warm, rtol=1e-8)
    assert len(res.solutions) == len(systems) and res.converged
    for s, sol in zip(systems, res.solutions):  # independent check of every answer
        assert np.linalg.norm(s.b - s.A @ sol.x) <= 1e-8 * np.linalg.norm(s.b)
    assert res.rebuilds == (len(systems) if reuse == "rebuild" else 1)


def test_projection_warm_start_saves_iterations():
    systems = _systems()
    cold = solve_sequence(systems, CG(precond=AMG("rs")), reuse="refresh", warm_start=None)
    proj = solve_sequence(systems, CG(precond=AMG("rs")), reuse="refresh", warm_start="projection")
    assert proj.iterations < 0.6 * cold.iterations, (proj.iterations, cold.iterations)


def test_auto_rebuilds_when_refresh_degrades():
    """A coefficient whose structure jumps (a new random field each solve) makes the refreshed
    hierarchy worse; 'auto' rebuilds then, and still every solve converges."""
    from solvers.sampling import gaussian_random_field

    n = 48
    family = DarcyFamily(meshes.unit_square(n))
    systems = [family.system(np.exp(3.0 * gaussian_random_field(n, seed=7, index=i))) for i in range(8)]
    res = solve_sequence(systems, CG(precond=AMG("rs")), reuse="auto", warm_start=None, growth=1.2)
    keep = solve_sequence(systems, CG(precond=AMG("rs")), reuse="keep", warm_start=None)
    assert res.converged and keep.converged
    assert res.iterations <= keep.iterations


def test_bad_options_refused():
    with pytest.raises(ValueError, match="reuse must be one of"):
        solve_sequence([], CG(), reuse="sometimes")
    with pytest.raises(ValueError, match="warm_start must be one of"):
        solve_sequence([], CG(), warm_start="guess")


def test_example_solver_in_the_loop():
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import solver_in_the_loop as ex
    finally:
        sys.path.pop(0)
    res = ex.main(n=32, solves=10)
    assert all(r["converged"] and r["max_residual"] <= 1e-8 for r in res.values())
    assert res["rebuild"]["rebuilds"] == 10 and res["refresh"]["rebuilds"] == 1
    ref = res["rebuild"]["last"]
    for r in res.values():  # same final answer to the tolerance, whatever the strategy
        assert np.linalg.norm(r["last"] - ref) <= 1e-6 * np.linalg.norm(ref)
    assert res["refresh+projection"]["iterations"] < res["rebuild"]["iterations"]
