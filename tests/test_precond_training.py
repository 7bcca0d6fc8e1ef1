"""Training for preconditioning (issue 8, deliverable 3): the energy-norm loss and its unrolled-CG form, a
few training steps, SPD-ness after training, checkpoints with weights_only=True, and `hybrid train precond`
whose checkpoint NeuralPreconditioner loads for plain CG."""

import numpy as np
import pytest
import torch

from hybrid.cli import main
from hybrid.precond import NeuralPreconditioner
from hybrid.training import CheckpointError, load
from hybrid.training.energy import (energy, energy_loss, matvec, pcg_errors, random_errors, richardson_errors,
                                    unrolled_loss)
from hybrid.training.precond import (PrecondTrainConfig, bind, build_model, darcy_systems, load_model, save,
                                     train_preconditioner)
from solvers.linear import CG, LinearProblem, PrecondParams, ReturnCode, solve


class DenseInverse(torch.nn.Module):
    """The exact inverse of a system's free block, on grids (a 'perfectly trained' linear model)."""

    is_linear = is_symmetric = True

    def __init__(self, system):
        super().__init__()
        A = system.A.to_dense().double()
        f = system.free.bool()
        inv = torch.zeros_like(A)
        inv[torch.outer(f, f)] = torch.linalg.inv(A[f][:, f]).flatten()
        self.register_buffer("inv", inv)

    def forward(self, x):
        return (x.flatten(1).double() @ self.inv).reshape(x.shape).to(x.dtype)


@pytest.fixture(scope="module")
def system64():
    """A {1, 1e4} contrast Darcy matrix on a 17 x 17 grid, float64."""
    systems, raw = darcy_systems(16, ["contrast"], [3], seed=5, dtype=torch.float64)
    return systems[0], raw[0]


def test_energy_loss_is_zero_for_the_exact_inverse_and_one_for_zero(system64):
    s, _ = system64
    g = torch.Generator().manual_seed(0)
    E = random_errors(s.shape, s.free, 24, generator=g, dtype=torch.float64)
    assert torch.all(E[:, s.free == 0] == 0) and E.shape == (24, 17 * 17)
    exact = bind(DenseInverse(s).double(), s)  # through the same grid/Dirichlet/normalisation glue as training
    assert float(energy_loss(exact, s.A, E)) < 1e-20
    assert float(energy_loss(lambda R: torch.zeros_like(R), s.A, E)) == pytest.approx(1.0, abs=1e-14)
    assert float(unrolled_loss(exact, s.A, E, 3)) < 1e-6  # (ratio ~ 1e-30)^(1/3)
    # a scaled exact inverse c A^{-1}: (I - c I) e, loss (1 - c)^2 exactly; PCG is scale-invariant
    half = lambda R: 0.5 * exact(R)  # noqa: E731
    assert float(energy_loss(half, s.A, E)) == pytest.approx(0.25, rel=1e-10)
    assert float(unrolled_loss(half, s.A, E, 1, "richardson")) == pytest.approx(0.25, rel=1e-10)
    assert float(unrolled_loss(half, s.A, E, 2, "pcg")) < 1e-6


def test_pcg_unrolled_is_cg_and_beats_richardson(system64):
    """k PCG steps in torch give the A-norm-optimal error of the Krylov space (checked against a dense
    Galerkin solve there), hence never more than k Richardson steps with the same B."""
    s, _ = system64
    E = random_errors(s.shape, s.free, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    d = torch.where(s.free > 0, s.diag, torch.ones_like(s.diag))
    jacobi = lambda R: R / d  # noqa: E731
    k = 5
    Ek = pcg_errors(jacobi, s.A, E, k)
    Ad = s.A.to_dense()
    for i in range(len(E)):  # reference: x_k = argmin ||e - x||_A over span{(BA)^j B A e}
        v, basis = jacobi(matvec(s.A, E[i:i + 1])), []
        for _ in range(k):
            basis.append(v[0])
            v = jacobi(matvec(s.A, v))
        V = torch.linalg.qr(torch.stack(basis, 1))[0]
        c = torch.linalg.solve(V.T @ Ad @ V, V.T @ Ad @ E[i])
        ref = E[i] - V @ c
        assert float(energy(s.A, Ek[i:i + 1])) == pytest.approx(float(energy(s.A, ref[None])), rel=1e-6)
    rich = richardson_errors(lambda R: 0.5 * jacobi(R), s.A, E, k)
    assert torch.all(energy(s.A, Ek) < energy(s.A, rich))


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    cfg = PrecondTrainConfig(n=16, samples=6, validation=2, epochs=2, probes=8)
    model, info = train_preconditioner(cfg, log=None)
    return cfg, model, info


def test_a_few_training_steps_lower_the_loss(trained):
    cfg, model, info = trained
    # measured: validation energy loss 0.281 -> 0.193 after 2 epochs of 2 steps
    assert info["val_loss"] < 0.85 * info["val_loss_untrained"], info
    assert sum(info["val_cg"]) <= sum(info["val_cg_untrained"]), info
    cfg_u = PrecondTrainConfig(n=16, samples=3, validation=1, epochs=2, probes=6, loss="unrolled", unroll=3,
                               batch_size=3)
    _, info_u = train_preconditioner(cfg_u, log=None)
    assert info_u["val_loss"] < info_u["val_loss_untrained"], info_u


def test_trained_model_stays_spd_and_plain_cg_accepts_it(trained):
    cfg, model, info = trained
    systems, raw = darcy_systems(32, ["contrast"], [0], seed=0)
    s = systems[0]  # another size than trained on
    with torch.no_grad():
        model.set_coefficient(s.coefficient)
        X, Y = torch.randn(2, 20, 1, 33, 33, generator=torch.Generator().manual_seed(0))
        MX, MY = model(X), model(Y)
        xmy, ymx = (X * MY).flatten(1).sum(1), (Y * MX).flatten(1).sum(1)
        scale = X.flatten(1).norm(dim=1) * MY.flatten(1).norm(dim=1)
        assert ((xmy - ymx).abs() / scale).max() < 1e-6
        assert ((X * MX).flatten(1).sum(1) > 0).all()
    A, a, view, constrained = raw[0]
    b = np.ones(A.shape[0])
    b[constrained] = 0.0
    pc = NeuralPreconditioner(model)
    assert pc.linear and pc.symmetric
    lp = LinearProblem(A, b, p=PrecondParams(coefficient=a, grid=view, constrained=constrained))
    sol = solve(lp, CG(precond=pc), rtol=1e-8, maxiter=500)
    assert sol.retcode is ReturnCode.Success and np.linalg.norm(b - A @ sol.x) <= 1e-8 * np.linalg.norm(b)


def test_checkpoint_round_trip_weights_only(trained, tmp_path):
    cfg, model, info = trained
    path = save(tmp_path / "p.pt", model, cfg, {"train": {"config": cfg.plain()}})
    payload = torch.load(path, weights_only=True)
    assert payload["task"] == "precond" and payload["config"] == {"max_levels": 10, "coarsest": 3,
                                                                   "face_weights": "p1"}
    loaded, _ = load_model(path)
    a = torch.exp(torch.randn(17, 17, generator=torch.Generator().manual_seed(2)))
    x = torch.randn(3, 1, 17, 17)
    with torch.no_grad():
        model.set_coefficient(a)
        loaded.set_coefficient(a)
        assert torch.equal(model(x), loaded(x))
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k
    with pytest.raises(CheckpointError, match="preconditioner"):
        load(path)  # an operator loader names what the file is
    torch.save({"format": "hybrid-checkpoint", "model": "mgno", "config": {}, "state_dict": {}}, tmp_path / "o.pt")
    with pytest.raises(CheckpointError, match="not a preconditioner checkpoint"):
        load_model(tmp_path / "o.pt")
    with pytest.raises(ValueError, match="unknown keys"):
        build_model("symmetric-mgconv", {"channels": 3})


def test_cli_train_precond_checkpoint_runs_in_cg(tmp_path, capsys):
    out = tmp_path / "precond"
    assert main(["train", "precond", "--n", "8", "--samples", "3", "--epochs", "1", "--probes", "4",
                 "--out", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "CG iterations (n=8, rtol 1e-8)" in text and (out / "best.pt").exists() and (out / "summary.json").exists()
    pc = NeuralPreconditioner.from_checkpoint(out)  # run directory -> best.pt, weights_only=True
    systems, raw = darcy_systems(16, ["two-phase"], [0], seed=0)
    A, a, view, constrained = raw[0]
    b = np.ones(A.shape[0])
    b[constrained] = 0.0
    lp = LinearProblem(A, b, p=PrecondParams(coefficient=a, grid=view, constrained=constrained))
    sol = solve(lp, CG(precond=pc), rtol=1e-8)
    assert sol.retcode is ReturnCode.Success and sol.iterations < 30, sol
    # misuse is refused with a message, not a traceback
    for argv, msg in ((["--loss", "l2"], "regression loss"), (["--data", "x.h5"], "drop --data")):
        assert main(["train", "precond", "--out", str(tmp_path / "x"), *argv]) == 2
        assert msg in capsys.readouterr().err
    assert main(["train", "unet", "--out", str(tmp_path / "y")]) == 2
    assert "needs --data" in capsys.readouterr().err


def test_cli_inputs_outputs_select_fields(tmp_path, capsys):
    data = tmp_path / "d.h5"
    assert main(["generate", "darcy-rhs", "--samples", "6", "--n", "8", "--out", str(data), "--no-progress"]) == 0
    capsys.readouterr()
    import h5py

    with h5py.File(data) as f:
        fields = [k for k in f if k not in ("mesh", "complete", "fixed")]
    assert "forcing" in fields and "solution" in fields, fields
    run = tmp_path / "run"
    assert main(["train", "unet", "--data", str(data), "--out", str(run), "--epochs", "1", "--inputs", "forcing",
                 "--outputs", "solution", "--config", '{"channels": 4, "depth": 1}', "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "6 samples" in out  # small file: split chosen and said, not refused
    payload = torch.load(run / "best.pt", weights_only=True)
    assert payload["train"]["config"]["inputs"] == ["forcing"] and payload["config"]["in_channels"] == 1
    assert main(["train", "unet", "--data", str(data), "--out", str(tmp_path / "r2"), "--epochs", "1",
                 "--inputs", "nosuch", "--no-progress"]) == 2
    assert "no field 'nosuch'" in capsys.readouterr().err
