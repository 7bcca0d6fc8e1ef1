"""AlgebraicMgNO: shapes, gradients, linearity of its V-cycle, transfers equal to pyamg's, checkpoint round trip,
training on a tiny nodal dataset beats the mean predictor, and `hybrid train algebraic-mgno` on mesh data."""

import json

import numpy as np
import pyamg
import pytest
import scipy.sparse as sp
import torch

from hybrid.operators import AlgebraicMgNO, build
from hybrid.operators.algebraic_mgconv import AlgebraicMgConv, AlgebraicMgConvConfig, amg_levels
from hybrid.operators.algebraic_mgno import boundary_nodes, p1_laplacian


def square_mesh(k: int, jitter: float = 0.0, seed: int = 0):
    """A (k+1) x (k+1) node triangulation of the unit square, interior nodes moved by ``jitter`` cells."""
    X, Y = np.meshgrid(np.linspace(0, 1, k + 1), np.linspace(0, 1, k + 1))
    xy = np.c_[X.ravel(), Y.ravel()]
    inner = (xy > 0).all(1) & (xy < 1).all(1)
    xy[inner] += jitter / k * (np.random.default_rng(seed).random((inner.sum(), 2)) - 0.5)
    n = np.arange((k + 1) ** 2).reshape(k + 1, k + 1)[:-1, :-1].ravel()
    cells = np.vstack([np.c_[n, n + 1, n + k + 2], np.c_[n, n + k + 2, n + k + 1]])
    return xy, cells


@pytest.fixture(scope="module")
def mesh():
    return square_mesh(16, jitter=0.4)


def test_p1_laplacian_and_boundary(mesh):
    xy, cells = mesh
    b = boundary_nodes(cells, len(xy))
    assert len(b) == 4 * 16
    A = p1_laplacian(xy, cells, b)
    assert abs(A - A.T).max() < 1e-12
    free = np.setdiff1d(np.arange(len(xy)), b)
    # no Dirichlet rows: constants are in the kernel; with them, the constrained rows are identity rows
    assert np.abs(p1_laplacian(xy, cells) @ np.ones(len(xy))).max() < 1e-12
    assert np.allclose(A[b][:, b].toarray(), np.eye(len(b))) and np.all(np.linalg.eigvalsh(A[free][:, free].toarray()) > 0)


@pytest.mark.parametrize("kind", ["sa", "rs"])
def test_transfers_equal_pyamg(mesh, kind):
    xy, cells = mesh
    A = p1_laplacian(xy, cells, boundary_nodes(cells, len(xy)))
    levels = amg_levels(A, kind, max_levels=4)
    np.random.seed(0)
    solver = pyamg.smoothed_aggregation_solver if kind == "sa" else pyamg.ruge_stuben_solver
    ml = solver(A, max_levels=4, max_coarse=10)
    assert len(levels) == len(ml.levels) >= 3
    for ours, theirs in zip(levels, ml.levels):
        assert abs(ours.A - theirs.A).max() < 1e-12
        if ours.P is not None:
            assert abs(ours.P - theirs.P).max() < 1e-12 and abs(ours.R - theirs.R).max() < 1e-12
    # and the model's sparse tensors are those matrices (R with rows scaled to sum one)
    mg = AlgebraicMgConv(levels, AlgebraicMgConvConfig(1, 4, [[1, 0]] * 4))
    P0 = sp.csr_matrix(mg.P0.to_dense().double().numpy())
    assert abs(P0 - levels[0].P).max() < 1e-6
    R0 = levels[0].R.toarray()
    assert np.allclose(mg.R0.to_dense().double().numpy(), R0 / R0.sum(1, keepdims=True), atol=1e-6)


def test_vcycle_is_linear_and_shapes(mesh):
    xy, cells = mesh
    A = p1_laplacian(xy, cells, boundary_nodes(cells, len(xy)))
    torch.manual_seed(0)
    mg = AlgebraicMgConv(amg_levels(A, "sa", 3), AlgebraicMgConvConfig(2, 6, [[1, 1], [1, 1], [2, 0]], stencils=2))
    f, g = torch.randn(3, 2, len(xy)), torch.randn(3, 2, len(xy))
    out = mg(2.0 * f - 3.0 * g)
    assert out.shape == (3, 6, len(xy))
    assert torch.allclose(out, 2.0 * mg(f) - 3.0 * mg(g), atol=1e-4 * out.abs().max().item())
    with pytest.raises(ValueError, match="dof vectors"):
        mg(torch.randn(3, 2, len(xy) + 1))


def test_model_shapes_gradients_boundary_and_checkpoint_config(mesh):
    xy, cells = mesh
    torch.manual_seed(0)
    m = AlgebraicMgNO.for_mesh(xy, cells, channels=8, layers=2, levels=[[1, 0], [1, 0], [2, 0]])
    m.init_boundary_value(torch.tensor([0.25]))
    x = torch.randn(4, 1, len(xy), requires_grad=True)
    y = m(x)
    assert y.shape == (4, 1, len(xy))
    b = boundary_nodes(cells, len(xy))
    assert torch.all(y[..., b] == 0.25)
    y.square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())
    # rebuilt from its config (as a checkpoint does): same hierarchy, same function
    from dataclasses import asdict

    m2 = build("algebraic-mgno", json.loads(json.dumps(asdict(m.config))))
    m2.load_state_dict(m.state_dict())
    with torch.no_grad():
        assert torch.allclose(m(x), m2(x), atol=1e-6)
    assert m2.levels == m.levels


def test_training_on_tiny_nodal_data_beats_mean(mesh):
    """Poisson on the mesh, u = A^{-1} M f for random smooth sources f: a short training run must get well
    below the relative error of predicting the training mean."""
    from hybrid.data import DataProcessor
    from hybrid.training.nodal import evaluate_nodal, fit_nodal, lumped_mass
    from hybrid.training.trainer import TrainConfig

    xy, cells = mesh
    b = boundary_nodes(cells, len(xy))
    rng = np.random.default_rng(0)
    modes = rng.standard_normal((48, 6))
    a = np.stack([np.sin(np.pi * (k + 1) * xy[:, 0] / 2) * np.cos(np.pi * k * xy[:, 1] / 2) for k in range(6)], 1)
    coef = modes @ a.T
    A = p1_laplacian(xy, cells, b)
    M = sp.diags(lumped_mass(xy, cells))
    rhs = M @ coef.T
    rhs[b] = 0
    u = sp.linalg.spsolve(A.tocsc(), rhs).T
    x = torch.tensor(coef, dtype=torch.float32)[:, None]
    y = torch.tensor(u, dtype=torch.float32)[:, None]
    cfg = TrainConfig(epochs=25, batch_size=8, lr=3e-3, n_train=40, n_test=8)
    torch.manual_seed(0)
    m = AlgebraicMgNO.for_mesh(xy, cells, channels=8, layers=2, levels=[[1, 0], [1, 0], [2, 0]])
    proc = DataProcessor(1, 1).fit(x[:36], y[:36])
    m.init_boundary_value(proc.out.encode(torch.zeros(1, 1, 1)))
    mass = torch.tensor(lumped_mass(xy, cells), dtype=torch.float32)
    fit_nodal(m, proc, x[:36], y[:36], x[36:40], y[36:40], mass, cfg)
    err = evaluate_nodal(m, proc, x[40:], y[40:], mass)["rel_l2_mean"]
    from hybrid.training.nodal import nodal_relative_l2

    mean = nodal_relative_l2(y[:36].mean(0, keepdim=True).expand(8, -1, -1), y[40:], mass).mean().item()
    assert err < 0.3 * mean, (err, mean)


def test_cli_trains_algebraic_mgno_on_mesh_data(tmp_path, capsys):
    from conftest import make_plate_with_hole
    from hybrid.cli import main

    mesh = make_plate_with_hole(tmp_path / "plate.msh", h=0.2)
    data = tmp_path / "d.h5"
    assert main(["generate", "darcy", "--samples", "12", "--mesh", str(mesh), "--out", str(data),
                 "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["train", "unet", "--data", str(data), "--out", str(tmp_path / "u"), "--epochs", "1"]) == 2
    assert "algebraic-mgno" in capsys.readouterr().err
    run = tmp_path / "run"
    assert main(["train", "algebraic-mgno", "--data", str(data), "--out", str(run), "--epochs", "2", "--no-progress",
                 "--config", '{"channels": 4, "layers": 1, "levels": [[1, 0], [2, 0]]}']) == 0
    assert "test relative L2" in capsys.readouterr().out
    summary = json.loads((run / "summary.json").read_text())
    assert summary["model"] == "algebraic-mgno" and np.isfinite(summary["test_rel_l2_mean"])
    from hybrid.training import load

    name, model, processor, _ = load(run / "best.pt")
    assert name == "algebraic-mgno" and model.levels == summary["levels"]
    assert main(["evaluate", str(run), "--data", str(data), "--last", "3"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["model"] == "algebraic-mgno" and np.isfinite(res["rel_l2_mean"])


def test_vcycle_preconditioner_trains_and_is_safeguarded(mesh):
    """The linear V-cycle trained on the energy norm contracts better than at its (best-scaled) start, runs on
    another matrix's hierarchy, and inside Safeguarded + FGMRES every solve converges (a bad step falls back)."""
    from hybrid.operators.algebraic_mgno import boundary_nodes, p1_laplacian
    from hybrid.precond import Safeguarded
    from hybrid.precond.algebraic import AlgebraicVCycle, AlgebraicVCyclePreconditioner, train_vcycle
    from solvers.linear import AMG, CG, FGMRES, LinearProblem, solve

    xy, cells = mesh
    b_nodes = boundary_nodes(cells, len(xy))
    rng = np.random.default_rng(1)
    mats = [p1_laplacian(xy, cells, b_nodes, coefficient=np.where(rng.random(len(xy)) > 0.5, 12.0, 3.0))
            for _ in range(3)]
    torch.manual_seed(0)
    v = AlgebraicVCycle(mats[0], channels=4, levels=((1, 1), (1, 1), (2, 0)))
    losses = train_vcycle(v, mats[:2], steps=25, batch=8, lr=1e-2)
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])
    rhs = np.ones(len(xy))
    rhs[b_nodes] = 0.0
    classical = solve(LinearProblem(mats[2], rhs), CG(precond=AMG("sa")), rtol=1e-8)
    learned = solve(LinearProblem(mats[2], rhs), FGMRES(precond=AlgebraicVCyclePreconditioner(v)), rtol=1e-8,
                    maxiter=300)
    guarded = solve(LinearProblem(mats[2], rhs), FGMRES(precond=Safeguarded(AlgebraicVCyclePreconditioner(v),
                                                                             AMG("sa"))), rtol=1e-8)
    assert learned.converged and guarded.converged and classical.converged
    assert guarded.iterations <= 1.2 * classical.iterations + 1


def test_predict_nodal_applies_a_saved_run(mesh, tmp_path):
    """predict_nodal on a run directory, a checkpoint file or a loaded run equals the normalize -> model ->
    denormalize pipeline, for one vector, (channels, n) and a batch; wrong shapes and grid models are refused."""
    from hybrid.data import DataProcessor
    from hybrid.training import load, save
    from hybrid.training.nodal import predict_nodal

    xy, cells = mesh
    torch.manual_seed(0)
    model = AlgebraicMgNO.for_mesh(xy, cells, channels=4, layers=2, levels=[[1, 0], [2, 0]])
    x = 3.0 + 9.0 * torch.rand(5, 1, len(xy))
    proc = DataProcessor(1, 1).fit(x, 0.01 * torch.rand(5, 1, len(xy)) + 0.02)
    model.init_boundary_value(proc.out.encode(torch.zeros(1, 1, 1)))
    save(tmp_path / "best.pt", "algebraic-mgno", model, proc)
    with torch.no_grad():
        ref = proc.postprocess(model(proc.preprocess(x)[0])).double().numpy()
    loaded = load(tmp_path / "best.pt")
    for source in (tmp_path, tmp_path / "best.pt", loaded):
        batch = predict_nodal(source, x.numpy())
        assert batch.shape == (5, 1, len(xy)) and batch.dtype == np.float64
        assert np.allclose(batch, ref, rtol=1e-5, atol=1e-7)
    one = predict_nodal(loaded, x[2, 0].numpy().astype(np.float64))
    assert one.shape == (len(xy),) and np.allclose(one, ref[2, 0], rtol=1e-5, atol=1e-7)
    assert np.allclose(predict_nodal(loaded, x[2].numpy()), ref[2], rtol=1e-5, atol=1e-7)
    assert np.abs(one[boundary_nodes(cells, len(xy))]).max() < 1e-6  # u = 0 at the Dirichlet nodes
    with pytest.raises(ValueError, match=f"mesh of {len(xy)} nodes"):
        predict_nodal(loaded, np.ones(len(xy) + 1))
    with pytest.raises(ValueError, match="non-finite"):
        predict_nodal(loaded, np.full(len(xy), np.nan))
    grid = build("mgno", {"channels": 4, "levels": [[1, 0], [2, 0]]})
    save(tmp_path / "grid.pt", "mgno", grid, DataProcessor(1, 1))
    with pytest.raises(ValueError, match="not an operator on a mesh's nodes"):
        predict_nodal(tmp_path / "grid.pt", np.ones(len(xy)))
