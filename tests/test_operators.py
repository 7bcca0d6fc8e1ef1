"""Learned operators: shapes, gradients, parameter counts, linearity of MgConv, padding by boundary
condition, a tiny training run, checkpoints (round trip, tampered, foreign), resume."""

import json

import numpy as np
import pytest
import torch

import meshes
import solvers
from hybrid.operators import (MODELS, MgConv, MgConvConfig, MgNO, MgNOConfig, boundary_kind, build,
                              neuraloperator_available)
from hybrid.training import CheckpointError, Trainer, TrainConfig, load, relative_h1, relative_l2, save
from solvers.data import generate

SMALL = {
    "mgno": {"channels": 6, "layers": 2, "levels": [[1, 1], [1, 0], [2, 0]]},
    "unet": {"channels": 4, "depth": 2},
    "deeponet": {"sensors": 5, "width": 16, "basis": 8},
    "fno": {"modes": 4, "channels": 8, "layers": 2},
}


def models():
    # grid -> same grid models; NIO reads measurements (patterns, boundary nodes): tests/test_nio.py
    return [m for m in MODELS if m != "nio" and (m != "fno" or neuraloperator_available())]


@pytest.mark.parametrize("name", models())
@pytest.mark.parametrize("size", [17, 32])
def test_shapes_and_gradients(name, size):
    torch.manual_seed(0)
    model = build(name, {"in_channels": 2, "out_channels": 1, **SMALL[name]})
    x = torch.randn(3, 2, size, size, requires_grad=True)
    y = model(x)
    assert y.shape == (3, 1, size, size)
    y.square().mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


def test_mgno_reference_parameter_count():
    """The authors' Darcy configuration (6 levels, 24 channels, 4 layers, 1 pre-smoothing per level,
    2 on the coarsest) has 572,661 parameters in their code; with their even-grid prolongation kernel so
    does ours. The default odd-grid kernel (3x3) gives 492,021."""
    ref = MgNO(MgNOConfig(prolongation_kernel=4))
    assert sum(p.numel() for p in ref.parameters()) == 572_661
    assert ref(torch.randn(1, 1, 64, 64)).shape == (1, 1, 64, 64)
    assert sum(p.numel() for p in MgNO(MgNOConfig()).parameters()) == 492_021


@pytest.mark.parametrize("size", [65, 64, 33])
def test_mgconv_is_linear(size):
    torch.manual_seed(1)
    m = MgConv(MgConvConfig(in_channels=2, channels=5, levels=[[1, 1], [2, 1], [1, 0], [2, 0]])).double()
    a, b = torch.randn(2, 2, size, size, dtype=torch.float64), torch.randn(2, 2, size, size, dtype=torch.float64)
    lhs = m(2.5 * a - 0.7 * b)
    rhs = 2.5 * m(a) - 0.7 * m(b)
    assert torch.allclose(lhs, rhs, rtol=1e-12, atol=1e-12 * float(rhs.abs().max().detach()))
    assert m(torch.zeros_like(a)).abs().max() == 0


def test_padding_follows_boundary_conditions():
    mesh = meshes.unit_square(4)
    kind = boundary_kind([solvers.Dirichlet(b, 0.0) for b in mesh.boundaries], mesh.boundaries)
    assert kind == "dirichlet" and boundary_kind(None, mesh.boundaries) == "dirichlet"
    assert boundary_kind([solvers.Neumann("left", 0.0)], mesh.boundaries) == "neumann"
    with pytest.raises(ValueError, match="mixed"):
        boundary_kind([solvers.Dirichlet("left", 0.0)], mesh.boundaries)
    for kind, mode in [("dirichlet", "zeros"), ("neumann", "reflect"), ("periodic", "circular")]:
        m = MgConv(MgConvConfig(channels=2, levels=[[1, 0], [1, 0]], boundary=kind))
        convs = [c for c in m.modules() if isinstance(c, torch.nn.Conv2d)]
        assert convs and all(c.padding_mode == mode for c in convs)
    # circular padding: the V-cycle commutes with periodic shifts by multiples of the coarsening factor
    m = MgConv(MgConvConfig(channels=2, levels=[[1, 0], [1, 0]], boundary="periodic"))
    x = torch.randn(1, 1, 16, 16)
    assert torch.allclose(m(torch.roll(x, 4, dims=-1)), torch.roll(m(x), 4, dims=-1), atol=1e-5)
    with pytest.raises(ValueError, match="unknown boundary kind"):
        MgConv(MgConvConfig(boundary="robin"))


def test_relative_losses():
    u = torch.rand(2, 1, 17, 17) + 1
    assert relative_l2(u, u).max() == 0 and relative_h1(1.1 * u, u).allclose(torch.full((2,), 0.1), atol=1e-6)
    assert relative_l2(1.1 * u, u).allclose(torch.full((2,), 0.1), atol=1e-6)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "darcy17.h5"
    generate("darcy", 60, 16, path, block=20, progress=False)
    return path


def test_tiny_training_lowers_the_loss(dataset, tmp_path):
    t = Trainer("mgno", SMALL["mgno"], dataset, tmp_path / "run", TrainConfig(epochs=25, n_train=40, n_test=10,
                                                                               batch_size=10, lr=3e-3))
    s = t.fit(progress=False)
    assert t.history["train_loss"][-1] < 0.5 * t.history["train_loss"][0], t.history["train_loss"]
    assert s["test_rel_l2_mean"] < 0.6
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["params"] == t.params and (tmp_path / "run" / "loss.png").exists()
    assert (tmp_path / "run" / "prediction.png").exists()


def test_checkpoint_round_trip_and_refusals(dataset, tmp_path):
    model = build("unet", SMALL["unet"])
    from hybrid.data import DataProcessor

    proc = DataProcessor(1, 1).fit(torch.rand(4, 1, 9, 9), torch.rand(4, 1, 9, 9))
    path = save(tmp_path / "c.pt", "unet", model, proc)
    name, loaded, lproc, payload = load(path)
    x = torch.randn(2, 1, 17, 17)
    assert name == "unet" and torch.equal(model.eval()(x), loaded.eval()(x))
    assert torch.equal(lproc.out.std, proc.out.std) and payload["version"]
    torch.save(model.state_dict(), tmp_path / "bare.pt")
    with pytest.raises(CheckpointError, match="not a hybrid-checkpoint"):
        load(tmp_path / "bare.pt")
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["head.weight"] = torch.zeros(3, 3)
    torch.save(payload, tmp_path / "tampered.pt")
    with pytest.raises(CheckpointError, match="do not match"):
        load(tmp_path / "tampered.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot be loaded safely"):
        load(tmp_path / "junk.pt")


def test_resume_matches_uninterrupted(dataset, tmp_path, monkeypatch):
    cfg = TrainConfig(epochs=4, n_train=30, n_test=10, batch_size=10)
    full = Trainer("unet", SMALL["unet"], dataset, tmp_path / "a", cfg)
    full.fit(progress=False)
    part = Trainer("unet", SMALL["unet"], dataset, tmp_path / "b", cfg)
    calls = {"n": 0}
    # interrupt (Ctrl-C) right after the checkpoint of epoch 2 is written
    import hybrid.training.trainer as tr

    real_save = tr.checkpoint.save

    def save_then_maybe_stop(path, *a, **k):
        out = real_save(path, *a, **k)
        if str(path).endswith("last.pt"):
            calls["n"] += 1
            if calls["n"] == 2:
                raise KeyboardInterrupt
        return out

    monkeypatch.setattr(tr.checkpoint, "save", save_then_maybe_stop)
    with pytest.raises(KeyboardInterrupt):
        part.fit(progress=False)
    monkeypatch.setattr(tr.checkpoint, "save", real_save)
    resumed = Trainer("unet", SMALL["unet"], dataset, tmp_path / "b", cfg)
    assert resumed.resume() and resumed.start_epoch == 2
    resumed.fit(progress=False)
    np.testing.assert_allclose(resumed.history["train_loss"], full.history["train_loss"], rtol=1e-5)
    with pytest.raises(ValueError, match="run of 4 epochs"):
        Trainer("unet", SMALL["unet"], dataset, tmp_path / "b", TrainConfig(epochs=9, n_train=30, n_test=10)).resume()
