"""Learned preconditioners: NeuralPreconditioner's grid map and traits, the SPD SymmetricMgConv in plain
CG, and Safeguarded keeping bad models (untrained, NaN, zero, random) from slowing or breaking a solve."""

import numpy as np
import pytest
import torch

import meshes
import solvers
from hybrid.operators import MgNO, MgNOConfig
from hybrid.precond import NeuralPreconditioner, Safeguarded, SymmetricMgConv, identity_rows
from solvers.linear import (AMG, CG, FGMRES, FlexibleCG, Jacobi, LinearProblem, PrecondParams, ReturnCode,
                            init, solve)
import solvers.linear as linear

RTOL = 1e-8


@pytest.fixture(scope="module")
def darcy():
    """Darcy on a 65 x 65 node grid, contrast 10 in a checkerboard-like pattern; Dirichlet all round."""
    mesh = meshes.unit_square(64)
    g = meshes.GridView(mesh)
    X, Y = g.coordinates()
    a = 1.0 + 9.0 * (np.sin(6 * X) * np.cos(5 * Y) > 0)
    s = solvers.Darcy(mesh, a=a).assemble()
    p = PrecondParams.from_system(s, coefficient=a, grid=g)
    return s, g, a, LinearProblem(s.A, s.b, p=p)


class Constant(torch.nn.Module):
    """Returns a fixed grid whatever the input (to check the dof <-> grid orientation)."""

    def __init__(self, grid):
        super().__init__()
        self.register_buffer("grid", torch.as_tensor(grid, dtype=torch.float32))

    def forward(self, x):
        return self.grid.expand(x.shape[0], 1, *self.grid.shape)


class Bad(torch.nn.Module):
    is_linear = True  # lies: the safeguard must not trust declarations

    def __init__(self, kind):
        super().__init__()
        self.kind = kind
        self.gen = torch.Generator().manual_seed(0)

    def forward(self, x):
        if self.kind == "nan":
            return x * float("nan")
        if self.kind == "zeros":
            return torch.zeros_like(x)
        return torch.randn(x.shape, generator=self.gen, dtype=x.dtype)


class Oracle(torch.nn.Module):
    """The exact inverse of the grid-ordered free block (a 'perfectly trained' linear model)."""

    is_linear = True
    is_symmetric = True

    def __init__(self, A, g, constrained):
        super().__init__()
        n = A.shape[0]
        free = np.setdiff1d(np.arange(n), constrained)
        Ainv = np.zeros((n, n))
        Ainv[np.ix_(free, free)] = np.linalg.inv(A.toarray()[np.ix_(free, free)])
        perm = g.grid_of_dof  # dof -> grid
        G = np.zeros((n, n))
        G[np.ix_(perm, perm)] = Ainv
        self.register_buffer("G", torch.as_tensor(G, dtype=torch.float64))
        self.shape = g.shape

    def forward(self, x):
        y = x.reshape(x.shape[0], -1) @ self.G.T  # G is float32 after NeuralPreconditioner.setup
        return y.reshape(x.shape).to(x.dtype)


def test_symmetric_mgconv_is_spd_for_any_parameters():
    torch.manual_seed(0)
    m = SymmetricMgConv()
    with torch.no_grad():
        for trial in range(3):
            coef = None if trial == 0 else torch.exp(2 * torch.randn(65, 65))
            if trial == 2:  # arbitrary learned values: SPD must not depend on training
                for prm in m.parameters():
                    prm.add_(torch.randn_like(prm))
                coef = None
            m.set_coefficient(coef)
            X, Y = torch.randn(50, 1, 65, 65), torch.randn(50, 1, 65, 65)
            MX, MY = m(X), m(Y)
            xmy, ymx = (X * MY).flatten(1).sum(1), (Y * MX).flatten(1).sum(1)
            scale = X.flatten(1).norm(dim=1) * MY.flatten(1).norm(dim=1)
            assert ((xmy - ymx).abs() / scale).max() < 1e-6, trial
            assert ((X * MX).flatten(1).sum(1) > 0).all(), trial
            # linear: superposition to float32 round-off
            lin = m(2.0 * X + Y) - 2.0 * MX - MY
            assert lin.abs().max() < 1e-5 * MX.abs().max()
    assert m.levels_for((65, 65)) == 6 and m.levels_for((64, 64)) == 1


def test_neural_preconditioner_grid_map_dirichlet_rows_scaling_batching(darcy):
    s, g, a, lp = darcy
    X, Y = g.coordinates()
    pc = NeuralPreconditioner(Constant(X + 10 * Y)).setup(s.A, lp.p)
    np.testing.assert_array_equal(np.sort(identity_rows(s.A)), np.sort(s.constrained))
    rng = np.random.default_rng(0)
    r = rng.standard_normal(s.A.shape[0])
    z = pc.apply(r)
    free = np.setdiff1d(np.arange(len(r)), s.constrained)
    xy = s.space.tabulate_dof_coordinates()[:, :2]
    rnorm = np.linalg.norm(r[free])
    np.testing.assert_allclose(z[free], (xy[free, 0] + 10 * xy[free, 1]) * rnorm, rtol=1e-6)  # orientation
    np.testing.assert_array_equal(z[s.constrained], r[s.constrained] / s.A.diagonal()[s.constrained])
    # a real model: batches equal columns, and positive scaling passes through exactly
    pc = NeuralPreconditioner(MgNO(MgNOConfig(channels=4, layers=2, levels=[[1, 0]] * 3 + [[1, 0]]))).setup(s.A, lp.p)
    R = rng.standard_normal((len(r), 3))
    Z = pc.apply(R)
    for j in range(3):
        np.testing.assert_allclose(Z[:, j], pc.apply(R[:, j]), rtol=1e-5, atol=1e-6 * np.abs(Z[:, j]).max())
    np.testing.assert_allclose(pc.apply(1e6 * r), 1e6 * pc.apply(r), rtol=1e-6, atol=1e-9 * np.abs(1e6 * z).max())
    assert not pc.linear and not pc.symmetric and pc.stats["vectors"] == 3 + 3 + 2
    assert np.array_equal(pc.apply(np.zeros_like(r)), np.zeros_like(r))


def test_nonlinear_model_refused_by_cg_accepted_by_fgmres(darcy):
    s, g, a, lp = darcy
    model = MgNO(MgNOConfig(channels=4, layers=2, levels=[[1, 0]] * 3 + [[1, 0]]))
    sol = solve(lp, CG(precond=NeuralPreconditioner(model)))
    assert sol.retcode is ReturnCode.InvalidInput and "FlexibleCG" in sol.message and "FGMRES" in sol.message


def test_symmetric_mgconv_in_plain_cg_untrained(darcy):
    s, g, a, lp = darcy
    jac = solve(lp, CG(precond=Jacobi()), rtol=RTOL, maxiter=2000)
    res = {}
    for name, kw in {"coefficient": {}, "learned-ops": {"coefficient": "ignore"}}.items():
        pc = NeuralPreconditioner(SymmetricMgConv(), **kw)
        assert pc.linear and pc.symmetric
        sol = solve(lp, CG(precond=pc), rtol=RTOL, maxiter=2000)
        assert sol.retcode is ReturnCode.Success and sol.residual <= RTOL, (name, sol.message)
        res[name] = sol.iterations
        assert sol.stats["precond"]["name"] == "NeuralPreconditioner"
        assert sol.stats["precond"]["calls"] == sol.iterations
    # measured: Jacobi 239, set by the coefficient 38, constant learned operators 72
    assert res["coefficient"] < res["learned-ops"] < jac.iterations / 2, (res, jac.iterations)
    # several right-hand sides at once: the batched apply is the column-wise one
    pc = NeuralPreconditioner(SymmetricMgConv()).setup(s.A, lp.p)
    R = np.random.default_rng(1).standard_normal((s.A.shape[0], 4))
    Q = R.T @ pc.apply(R)
    assert np.abs(Q - Q.T).max() < 1e-6 * np.abs(Q).max() and np.all(np.linalg.eigvalsh(0.5 * (Q + Q.T)) > 0)


@pytest.fixture(scope="module")
def classical(darcy):
    s, g, a, lp = darcy
    return {cls: solve(lp, cls(precond=AMG("rs")), rtol=RTOL).iterations for cls in (FGMRES, FlexibleCG)}


BAD = {
    "untrained-mgno": lambda: MgNO(MgNOConfig(channels=8, layers=2, levels=[[1, 0]] * 4 + [[2, 0]])),
    "untrained-symmetric-mgconv": lambda: SymmetricMgConv(),
    "nan": lambda: Bad("nan"), "zeros": lambda: Bad("zeros"), "random": lambda: Bad("random"),
}


@pytest.mark.parametrize("alg_cls", [FGMRES, FlexibleCG])
@pytest.mark.parametrize("name", list(BAD))
def test_safeguard_bad_models_still_converge_within_1_2x(name, alg_cls, darcy, classical):
    s, g, a, lp = darcy
    torch.manual_seed(0)
    pc = Safeguarded(NeuralPreconditioner(BAD[name]()), fallback=AMG("rs"))
    sol = solve(lp, alg_cls(precond=pc), rtol=RTOL, maxiter=500)
    true = np.linalg.norm(s.b - s.A @ sol.x) / np.linalg.norm(s.b)
    assert sol.retcode is ReturnCode.Success and true <= RTOL, (sol.message, true)
    assert sol.iterations <= 1.2 * classical[alg_cls], (sol.iterations, classical[alg_cls])
    st = sol.stats["precond"]
    assert st["rejected"] >= 1 and st["switched"] == 1 and st["fallback_calls"] >= sol.iterations
    assert st["learned"]["calls"] == st["accepted"] + st["rejected"]
    # a tight budget must give MaxIters, never a wrong Success
    short = solve(lp, alg_cls(precond=Safeguarded(NeuralPreconditioner(BAD[name]()), AMG("rs"))), rtol=RTOL,
                  maxiter=2)
    assert short.retcode is ReturnCode.MaxIters and short.residual > RTOL


def test_safeguard_accepts_a_good_learned_step_and_resets_per_solve():
    mesh = meshes.unit_square(16)
    g = meshes.GridView(mesh)
    s = solvers.Darcy(mesh, a=lambda x: 1 + 10 * (x[0] > 0.5)).assemble()
    p = PrecondParams.from_system(s, grid=g)
    lp = LinearProblem(s.A, s.b, p=p)
    ref = solve(lp, FGMRES(precond=AMG("rs")), rtol=RTOL).iterations
    cache = init(lp, FGMRES(precond=Safeguarded(NeuralPreconditioner(Oracle(s.A, g, s.constrained)), Jacobi())),
                 rtol=RTOL)
    for _ in range(2):
        sol = cache.solve()
        st = sol.stats["precond"]
        assert sol.converged and sol.residual <= RTOL
        assert st["accepted"] >= 1 and st["rejected"] == 0 and st["switched"] == 0, st
        assert sol.iterations <= min(ref, 3)  # float32 inference of the exact inverse: 1e-7 per step
    b = np.random.default_rng(3).standard_normal(s.A.shape[0])
    assert cache.solve(b).stats["precond"]["accepted"] >= 1  # per solve, not once for the cache


def test_learned_preconditioners_through_petsc_pcpython(darcy):
    s, g, a, lp = darcy
    sym = solve(lp, linear.PETScKSP("cg", NeuralPreconditioner(SymmetricMgConv())), rtol=RTOL, maxiter=500)
    assert sym.converged and sym.residual <= RTOL and sym.stats["precond"]["calls"] >= sym.iterations
    ours = solve(lp, CG(precond=NeuralPreconditioner(SymmetricMgConv())), rtol=RTOL)
    assert abs(sym.iterations - ours.iterations) <= 2
    guarded = Safeguarded(NeuralPreconditioner(Bad("random")), AMG("rs"))
    sol = solve(lp, linear.PETScKSP("fgmres", guarded), rtol=RTOL, maxiter=500)
    assert sol.converged and sol.residual <= RTOL
    assert sol.stats["precond"]["rejected"] >= 1 and sol.stats["precond"]["switched"] == 1
    refused = solve(lp, linear.PETScKSP("cg", guarded))
    assert refused.retcode is ReturnCode.InvalidInput and "linear=False" in refused.message
