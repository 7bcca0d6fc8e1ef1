"""Learned AMG (hybrid.precond.learned_amg): SPD by construction, convergence, checkpoints, P structure.

Tiny sizes (n = 16 / 32 Darcy, pyamg Poisson); the trained-checkpoint test uses
bench/models/learned_amg.pt when it exists.
"""

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

torch = pytest.importorskip("torch")

from hybrid.precond.learned_amg import (LearnedAMG, NetConfig, PNet, TrainConfig, level_features,  # noqa: E402
                                        load_checkpoint, predict_level, rs_level, save_checkpoint,
                                        two_grid_loss, vcycle_loss)
from solvers.linear import AMG, CG, LinearProblem, init  # noqa: E402

CHECKPOINT = Path(__file__).resolve().parents[1] / "bench" / "models" / "learned_amg.pt"


def _darcy(n, kind="contrast", index=0, seed=0):
    import meshes
    import solvers
    from solvers.sampling import make_field

    system = solvers.Darcy(meshes.unit_square(n), a=make_field(kind, seed=seed, index=index), f=1.0).assemble()
    return sp.csr_matrix(system.A), np.asarray(system.b)


@pytest.fixture(scope="module")
def contrast32():
    return _darcy(32, "contrast")


def _random_net(seed=0):
    torch.manual_seed(seed)
    net = PNet(NetConfig(hidden=8))
    with torch.no_grad():  # large random weights: far from RS, still must be SPD and convergent
        for p in net.parameters():
            p.normal_(0.0, 1.0)
    return net.eval()


def _matrix_of(pc, n):
    return np.column_stack([pc.apply(e) for e in np.eye(n)])


@pytest.mark.parametrize("net", [None, "random"])
def test_preconditioner_symmetric_positive(net):
    A, _ = _darcy(16, "contrast")
    pc = LearnedAMG(_random_net() if net == "random" else None, max_coarse=4).setup(A)
    assert pc.linear and pc.symmetric
    rng = np.random.default_rng(1)
    for _ in range(5):
        u, v = rng.standard_normal((2, A.shape[0]))
        mu, mv = pc.apply(u), pc.apply(v)
        assert abs(v @ mu - u @ mv) <= 1e-10 * np.linalg.norm(u) * np.linalg.norm(v) * np.linalg.norm(mu) / np.linalg.norm(u)
        assert u @ mu > 0
    M = _matrix_of(pc, A.shape[0])
    assert np.allclose(M, M.T, atol=1e-10 * np.abs(M).max())
    assert np.linalg.eigvalsh(0.5 * (M + M.T)).min() > 0
    # Galerkin + symmetric smoothing: the V-cycle error I - M A has A-norm < 1 (spectrum of M A in (0, 1])
    lam = np.linalg.eigvals(M @ A.toarray()).real
    assert lam.min() > 0 and lam.max() <= 1 + 1e-8


def test_untrained_network_converges(contrast32):
    """Random weights: P keeps an identity block on the C-points (full column rank), so every P^T A P is
    SPD, and SSOR (0 < omega < 2) before and after with R = P^T makes the V-cycle SPD: CG converges."""
    A, b = contrast32
    sol = init(LinearProblem(A, b), CG(precond=LearnedAMG(_random_net(3))), rtol=1e-8, maxiter=200).solve()
    assert sol.converged and sol.residual <= 1e-8


def test_cg_iterations_not_worse_than_rs(contrast32):
    A, b = contrast32
    net = load_checkpoint(CHECKPOINT) if CHECKPOINT.exists() else None
    rs = init(LinearProblem(A, b), CG(precond=AMG("rs")), rtol=1e-8).solve()
    learned = init(LinearProblem(A, b), CG(precond=LearnedAMG(net)), rtol=1e-8).solve()
    assert rs.converged and learned.converged and learned.residual <= 1e-8
    assert learned.iterations <= rs.iterations


def test_own_rs_path_matches_pyamg(contrast32):
    """No network: this module's hierarchy is pyamg's RS (same levels, same P), omega = 1 SSOR = sym. GS."""
    import pyamg

    A, b = contrast32
    pc = LearnedAMG(None).setup(A)
    ml = pyamg.ruge_stuben_solver(A)
    assert [lvl.A.shape[0] for lvl in pc.ml.levels] == [lvl.A.shape[0] for lvl in ml.levels]
    for mine, ref in zip(pc.ml.levels[:-1], ml.levels[:-1]):
        assert abs(mine.P - sp.csr_matrix(ref.P)).max() < 1e-10
    r = np.random.default_rng(0).standard_normal(A.shape[0])
    assert np.allclose(pc.apply(r), ml.aspreconditioner(cycle="V") @ r, rtol=1e-10, atol=1e-12)


def test_predicted_P_keeps_pattern_and_rowsums(contrast32):
    A, _ = contrast32
    C, splitting, P = rs_level(A)
    lvl = level_features(A, C, splitting, P)
    torch.manual_seed(5)
    Pn, omega = predict_level(PNet(NetConfig(hidden=8)).eval(), lvl)  # default (untrained) init
    assert 0.6 <= omega <= 1.8
    assert np.array_equal(Pn.indptr, P.indptr) and np.array_equal(Pn.indices, P.indices)
    assert not np.allclose(Pn.data, P.data)  # the network changed the weights ...
    assert np.allclose(Pn.sum(axis=1), P.sum(axis=1), rtol=1e-5, atol=1e-6)  # ... not the row sums
    cpts = np.flatnonzero(splitting == 1)
    assert np.array_equal(Pn[cpts].toarray(), np.eye(len(cpts)))  # C-rows: injection
    # where RS reproduces constants (rows summing to 1), so does the learned P
    one = np.isclose(np.asarray(P.sum(axis=1)).ravel(), 1.0)
    assert one.sum() > 0.5 * A.shape[0]
    assert np.allclose((Pn @ np.ones(P.shape[1]))[one], 1.0, atol=1e-5)


def test_checkpoint_round_trip_weights_only(tmp_path):
    net = _random_net(7)
    path = save_checkpoint(tmp_path / "lamg.pt", net, {"note": "test"})
    payload = torch.load(path, weights_only=True)
    assert payload["kind"] == "learned_amg" and payload["config"]["hidden"] == 8
    back = load_checkpoint(path)
    A, _ = _darcy(16, "two-phase")
    C, s, P = rs_level(A)
    lvl = level_features(A, C, s, P)
    assert np.array_equal(predict_level(net, lvl)[0].data, predict_level(back, lvl)[0].data)


def test_losses_differentiable_and_rs_reference():
    A, _ = _darcy(16, "log-normal")
    net = PNet(NetConfig(hidden=8)).double()
    g = torch.Generator().manual_seed(0)
    loss = vcycle_loss(net, A, probes=4, generator=g, power=2)
    loss.backward()
    assert torch.isfinite(loss) and any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())
    from hybrid.precond.learned_amg import _prepare

    rs = PNet(NetConfig(hidden=8, learn_P=False, learn_omega=False)).double()
    tg = two_grid_loss(rs, _prepare(A), probes=8, generator=g, power=0)
    assert 0 < tg.item() < 1  # the two-grid error contracts in the energy norm


def test_train_smoke(tmp_path):
    from hybrid.precond.learned_amg import train

    cfg = TrainConfig(n=8, kinds=("two-phase",), samples_per_kind=2, steps=3, probes=4, power=1, batch=1,
                      net=NetConfig(hidden=4))
    net, info = train(cfg, out=tmp_path / "m.pt", log=None)
    assert np.isfinite(info["final_loss"]) and (tmp_path / "m.pt").exists()
    assert load_checkpoint(tmp_path / "m.pt").config.hidden == 4


def test_refresh_keeps_learned_P_and_matches_galerkin():
    """Solver in the loop: refresh reuses the network's P (no inference) with new Galerkin operators."""
    import numpy as np
    import meshes
    from solvers import DarcyFamily
    from solvers.linear import CG, LinearProblem, init
    from solvers.sampling import rotating_log_normal
    from hybrid.precond.learned_amg import LearnedAMG, PNet

    n = 32
    fam = DarcyFamily(meshes.unit_square(n))
    a0, a1 = list(rotating_log_normal(n, 2))
    s0, s1 = fam.system(a0), fam.system(a1)
    torch.manual_seed(0)
    pc = LearnedAMG(PNet()).setup(s0.A)
    P0 = [lvl.P.copy() for lvl in pc.ml.levels[:-1]]
    pc.refresh(s1.A)
    assert pc.stats["setup_network_s"] == 0.0
    for lvl, P in zip(pc.ml.levels[:-1], P0):
        assert abs(lvl.P - P).max() == 0
    for fine, coarse in zip(pc.ml.levels[:-1], pc.ml.levels[1:]):
        assert abs(coarse.A - fine.P.T @ fine.A @ fine.P).max() <= 1e-12 * abs(coarse.A).max()
    cache = init(LinearProblem.from_system(s0), CG(precond=LearnedAMG(PNet())))
    assert cache.solve().converged
    cache.update(s1.A, reuse="refresh")
    sol = cache.solve(s1.b)
    assert sol.converged and np.linalg.norm(s1.b - s1.A @ sol.x) <= 1e-8 * np.linalg.norm(s1.b)


def test_cli_train_learned_amg_then_solve(tmp_path):
    from hybrid.cli import main

    ck = tmp_path / "l.pt"
    assert main(["train", "learned-amg", "--n", "12", "--samples", "3", "--epochs", "2", "--no-progress",
                 "--out", str(ck)]) == 0
    out = tmp_path / "s.json"
    assert main(["solve", "darcy", "--n", "24", "--method", "learned-amg+cg", "--model", str(ck),
                 "--json", str(out)]) == 0
    import json

    s = json.loads(out.read_text())
    assert s["converged"] and s["rel_residual"] <= 1e-8
    assert main(["train", "learned-amg", "--out", str(tmp_path / "dir"), "--epochs", "1"]) == 2  # not *.pt


# -- learned polynomial smoother / learned coarsening (hybrid.precond.learned_smoother) ---------------------------
from hybrid.precond.learned_smoother import (COARSENING_MENU, LearnedCoarseningAMG, LevelNet,  # noqa: E402
                                             LevelNetConfig, PolyAMG, chebyshev_fractions, contracts,
                                             load_level_checkpoint, save_level_checkpoint)


def _random_level_net(kind, seed=0):
    torch.manual_seed(seed)
    net = LevelNet(LevelNetConfig(kind, degree=3))
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0.0, 2.0)
    return net.eval()


@pytest.mark.parametrize("net", [None, "random"])
def test_poly_smoother_amg_symmetric_positive(net):
    """p(D^-1 A) D^-1 is symmetric and |q| < 1 on (0, Gershgorin], so the V-cycle is SPD for any net."""
    A, _ = _darcy(16, "contrast")
    pc = PolyAMG(_random_level_net("poly") if net else None, max_coarse=4).setup(A)
    M = _matrix_of(pc, A.shape[0])
    assert np.allclose(M, M.T, atol=1e-10 * np.abs(M).max())
    lam = np.linalg.eigvals(M @ A.toarray()).real
    assert lam.min() > 0 and lam.max() <= 1 + 1e-8
    assert contracts(chebyshev_fractions(3, 4.0)) and not contracts([0.1, 0.1])


def test_poly_and_coarsening_converge(contrast32):
    A, b = contrast32
    for pc in (PolyAMG(_random_level_net("poly", 1)), LearnedCoarseningAMG(_random_level_net("coarsening", 2))):
        sol = init(LinearProblem(A, b), CG(precond=pc), rtol=1e-8, maxiter=100).solve()
        assert sol.converged and sol.residual <= 1e-8
    assert tuple(LearnedCoarseningAMG(_random_level_net("coarsening", 2)).setup(A).stats["choices"][0]) in COARSENING_MENU


def test_level_net_checkpoint_round_trip(tmp_path, contrast32):
    A, _ = contrast32
    for kind in ("poly", "coarsening"):
        net = _random_level_net(kind, 4)
        path = save_level_checkpoint(tmp_path / f"{kind}.pt", net, {"seed": 1000})
        back = load_level_checkpoint(path)
        x = torch.randn(3, 10)
        assert torch.equal(net(x), back(x))
    with pytest.raises(ValueError):
        PolyAMG(str(tmp_path / "coarsening.pt"))
    with pytest.raises(ValueError):
        torch.save({"kind": "learned_amg"}, tmp_path / "other.pt")
        load_level_checkpoint(tmp_path / "other.pt")
