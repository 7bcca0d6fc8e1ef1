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
from hybrid.training import (CheckpointError, Trainer, TrainConfig, evaluate_model, h1_seminorm, l2_norm, load,
                             relative_h1, relative_l2, save)
from solvers.data import generate

SMALL = {
    "mgno": {"channels": 6, "layers": 2, "levels": [[1, 1], [1, 0], [2, 0]]},
    "unet": {"channels": 4, "depth": 2},
    "deeponet": {"sensors": 5, "width": 16, "basis": 8},
    "fno": {"modes": 4, "channels": 8, "layers": 2},
}


def models():
    # grid -> same grid models; NIO reads measurements (patterns, boundary nodes): tests/test_nio.py;
    # AlgebraicMgNO acts on dof vectors of a mesh: tests/test_algebraic_mgno.py
    return [m for m in MODELS if m not in ("nio", "algebraic-mgno") and (m != "fno" or neuraloperator_available())]


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


#: what each boundary kind must mean for the grid's outside values, in numpy's padding modes
NUMPY_PAD = {"dirichlet": "constant", "neumann": "reflect", "periodic": "wrap"}


def _conv_reference(conv, x, kind):
    """``conv`` (3x3, padding 1, any stride) recomputed with numpy's padding for the boundary ``kind``."""
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), mode=NUMPY_PAD[kind])
    s = conv.stride[0]
    win = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(-2, -1))[:, :, ::s, ::s]
    return np.einsum("bihwkl,oikl->bohw", win, conv.weight.detach().double().numpy())


def _interpolation(n_fine, n_coarse, mode):
    """1-D linear interpolation matrix (fine x coarse) of a vertex grid; the half-step beyond the last
    coarse node (even fine grids) takes its outside value from zero (``dirichlet``), the mirror node
    (``neumann``) or the first node (``periodic``)."""
    m = np.zeros((n_fine, n_coarse))
    for j in range(n_coarse):
        m[2 * j, j] = 1.0
        if 2 * j + 1 < n_fine:
            m[2 * j + 1, j] += 0.5
            if j + 1 < n_coarse:
                m[2 * j + 1, j + 1] += 0.5
            elif mode == "neumann":
                m[2 * j + 1, n_coarse - 2] += 0.5
            elif mode == "periodic":
                m[2 * j + 1, 0] += 0.5
    return m


def test_boundary_kind_from_conditions():
    mesh = meshes.unit_square(4)
    kind = boundary_kind([solvers.Dirichlet(b, 0.0) for b in mesh.boundaries], mesh.boundaries)
    assert kind == "dirichlet" and boundary_kind(None, mesh.boundaries) == "dirichlet"
    assert boundary_kind([solvers.Neumann("left", 0.0)], mesh.boundaries) == "neumann"
    with pytest.raises(ValueError, match="mixed"):
        boundary_kind([solvers.Dirichlet("left", 0.0)], mesh.boundaries)
    with pytest.raises(ValueError, match="unknown boundary kind"):
        MgConv(MgConvConfig(boundary="robin"))


@pytest.mark.parametrize("kind", ["dirichlet", "neumann", "periodic"])
@pytest.mark.parametrize("size", [9, 8])
def test_padding_is_numerically_the_boundary_condition(kind, size):
    """Every convolution of MgConv (smoothers S, A, restrictions R, Pi) against numpy's zero /
    reflect / wrap padding, boundary rows included; and the prolongation with a bilinear kernel against
    linear interpolation whose outside value follows the boundary kind (zero, mirror, wrap)."""
    torch.manual_seed(3)
    m = MgConv(MgConvConfig(in_channels=2, channels=3, levels=[[2, 1], [1, 0]], boundary=kind)).double()
    x = np.random.default_rng(0).standard_normal((2, 3, size, size))
    convs = [c for c in m.modules() if isinstance(c, torch.nn.Conv2d)]
    assert len(convs) >= 6 and any(c.stride[0] == 2 for c in convs)
    for conv in convs:
        xin = torch.from_numpy(x[:, :conv.in_channels].copy())
        got = conv(xin).detach().numpy()
        want = _conv_reference(conv, x[:, :conv.in_channels], kind)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
        # the boundary values are where the modes differ: make sure they are not all trivial
        assert np.abs(want[..., 0, :]).max() > 0.1
    # prolongation: bilinear kernel on a non-symmetric coarse field
    nc = (size + 1) // 2
    coarse = np.add.outer(10.0 * np.arange(1, nc + 1), np.arange(1, nc + 1) ** 2)
    bilinear = torch.tensor([0.5, 1.0, 0.5], dtype=torch.float64)
    with torch.no_grad():
        for p in m.prolong:
            p.weight.zero_()
            for c in range(p.weight.shape[0]):
                p.weight[c, c] = torch.outer(bilinear, bilinear)
    c_t = torch.from_numpy(coarse)[None, None].expand(1, 3, nc, nc).clone()
    got = m._prolong(0, c_t, (size, size)).detach().numpy()
    interp = _interpolation(size, nc, kind)
    want = interp @ coarse @ interp.T
    for c in range(3):
        np.testing.assert_allclose(got[0, c], want, rtol=1e-12, atol=1e-12)


def test_periodic_vcycle_commutes_with_shifts():
    # circular padding: the V-cycle commutes with periodic shifts by multiples of the coarsening factor
    m = MgConv(MgConvConfig(channels=2, levels=[[1, 0], [1, 0]], boundary="periodic"))
    x = torch.randn(1, 1, 16, 16)
    assert torch.allclose(m(torch.roll(x, 4, dims=-1)), torch.roll(m(x), 4, dims=-1), atol=1e-5)
    # ... which zero padding does not do (the check above can fail)
    d = MgConv(MgConvConfig(channels=2, levels=[[1, 0], [1, 0]], boundary="dirichlet"))
    assert not torch.allclose(d(torch.roll(x, 4, dims=-1)), torch.roll(d(x), 4, dims=-1), atol=1e-5)


def test_relative_losses():
    u = torch.rand(2, 1, 17, 17) + 1
    assert relative_l2(u, u).max() == 0 and relative_h1(1.1 * u, u).allclose(torch.full((2,), 0.1), atol=1e-6)
    assert relative_l2(1.1 * u, u).allclose(torch.full((2,), 0.1), atol=1e-6)


def _grid(n):
    x = torch.linspace(0, 1, n, dtype=torch.float64)
    return torch.meshgrid(x, x, indexing="xy")  # X varies along the last axis, Y along the rows


@pytest.mark.parametrize("n", [33, 65, 129])
def test_h1_against_known_gradients(n):
    """u = sin(pi x) sin(pi y): ||u||^2 = 1/4, |u|_H1^2 = pi^2/2; e = sin(2 pi x) sin(pi y) (x-derivative
    twice the y-derivative's frequency): ||e||^2 = 1/4, |e|_H1^2 = 5 pi^2/4. The discrete norms must match to
    second order in h = 1/(n-1) (the fields vanish on the boundary); a wrong scaling by h, a missing or
    doubled direction or a wrong axis fails."""
    X, Y = _grid(n)
    pi, h = np.pi, 1.0 / (n - 1)
    u = (torch.sin(pi * X) * torch.sin(pi * Y))[None, None]
    e = (torch.sin(2 * pi * X) * torch.sin(pi * Y))[None, None]
    tol = 2.0 * h**2
    assert float(l2_norm(u)) == pytest.approx(0.5, rel=tol)
    assert float(h1_seminorm(u)) == pytest.approx(pi / np.sqrt(2), rel=tol)
    assert float(h1_seminorm(e)) == pytest.approx(pi * np.sqrt(5) / 2, rel=4 * tol)
    # both directions weighted alike: transposing the field keeps the seminorm
    assert float(h1_seminorm(e.transpose(-1, -2))) == pytest.approx(float(h1_seminorm(e)), rel=1e-12)
    # a linear field has the exact gradient (1, 2) everywhere: |.|_H1 = sqrt(5), first order at the edges
    lin = (X + 2 * Y)[None, None]
    assert float(h1_seminorm(lin)) == pytest.approx(np.sqrt(5), rel=1.1 * h)
    # relative H1 error of u + 0.1 e against u: sqrt(0.01 (1/4 + 5 pi^2/4) / (1/4 + pi^2/2))
    exact = np.sqrt(0.01 * (0.25 + 5 * pi**2 / 4) / (0.25 + pi**2 / 2))
    assert float(relative_h1(u + 0.1 * e, u)) == pytest.approx(exact, rel=4 * tol)
    assert float(relative_l2(u + 0.1 * e, u)) == pytest.approx(0.1, rel=tol)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "darcy17.h5"
    generate("darcy", 60, 16, path, block=20, progress=False)
    return path


def mean_predictor_error(y_train, y_test):
    """Relative L2 error on ``y_test`` of predicting the training set's per-pixel mean (bilinearly resampled
    to the test grid); predicting zero scores exactly 1."""
    mean = y_train.double().mean(0, keepdim=True)
    if mean.shape[-2:] != y_test.shape[-2:]:
        mean = torch.nn.functional.interpolate(mean, size=y_test.shape[-2:], mode="bilinear", align_corners=True)
    return float(relative_l2(mean.expand_as(y_test).float(), y_test).mean())


@pytest.fixture(scope="module")
def dataset_2x(tmp_path_factory):
    """The same kind of samples (another seed) at twice the resolution, 33 x 33."""
    path = tmp_path_factory.mktemp("data") / "darcy33.h5"
    generate("darcy", 10, 32, path, seed=7, progress=False)
    return path


def test_tiny_training_lowers_the_loss(dataset, dataset_2x, tmp_path):
    """A small MgNO trained for 25 epochs on 40 samples must beat, on the held-out samples, both the zero
    predictor (error 1) and the training set's per-pixel mean (about 0.23 here; the model reaches about
    0.14), and its training loss must fall to under 0.3 of the first epoch's (about 0.2)."""
    t = Trainer("mgno", SMALL["mgno"], dataset, tmp_path / "run", TrainConfig(epochs=25, n_train=40, n_test=10,
                                                                               batch_size=10, lr=3e-3))
    s = t.fit(progress=False)
    loss = t.history["train_loss"]
    assert loss[-1] < 0.3 * loss[0], loss
    baseline = mean_predictor_error(t.ytr, t.yte)
    assert 0.1 < baseline < 0.9  # the bar below is a real one: the mean explains part of the solution
    assert s["test_rel_l2_mean"] < 0.8 * baseline, (s["test_rel_l2_mean"], baseline)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["params"] == t.params and (tmp_path / "run" / "loss.png").exists()
    assert (tmp_path / "run" / "prediction.png").exists()
    assert summary["test_rel_l2_mean"] == pytest.approx(s["test_rel_l2_mean"])
    # resolution transfer: the model trained at 17 x 17 evaluated on FEM solutions at 33 x 33. Today's
    # MgNO (fixed stencils, fixed level count) reaches about 0.42 there, worse than the mean predictor
    # (0.26; issue 13 item 1): the bar is the zero predictor's 1, with a finite, right-shaped answer.
    from hybrid.data import FieldDataset

    x2, y2 = FieldDataset(dataset_2x, ("coefficient",), ("solution",)).arrays()
    r = evaluate_model(t.model, t.processor, x2, y2)
    assert r["pred"].shape == y2.shape and torch.isfinite(r["pred"]).all()
    assert r["rel_l2_mean"] < 0.7, (r["rel_l2_mean"], mean_predictor_error(t.ytr, y2))


@pytest.mark.parametrize("name", models())
def test_models_accept_finer_grids(name):
    """Resolution transfer: one model (same weights) maps 17 x 17, 33 x 33 (2x) and 65 x 65 (4x) grids to the
    same grid; a smooth input sampled on the nested grids gives outputs whose values at the shared nodes stay
    finite and of the same size (within a factor 10 of each other's RMS) -- not a convergence claim."""
    torch.manual_seed(0)
    model = build(name, {"in_channels": 1, "out_channels": 1, **SMALL[name]}).eval()
    outs = {}
    for n in (17, 33, 65):
        X, Y = _grid(n)
        x = (1 + 0.5 * torch.sin(2 * np.pi * X) * torch.cos(np.pi * Y)).float()[None, None]
        with torch.no_grad():
            y = model(x)
        assert y.shape == (1, 1, n, n) and torch.isfinite(y).all()
        outs[n] = y[..., ::(n - 1) // 16, ::(n - 1) // 16]
    rms = {n: float(o.square().mean().sqrt()) for n, o in outs.items()}
    assert all(v > 0 for v in rms.values()) and max(rms.values()) < 10 * min(rms.values()), rms


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


# ---- the implicit layer (hybrid.operators.implicit, Lerer et al. 2024) -------------------------------------
def test_implicit_layer_inverts_its_stencil_and_sees_the_whole_grid():
    """``solve`` inverts the per-channel 3x3 stencil away from the grid's edge (to the regularization);
    at initialization (gamma = 0) the layer is the identity; a weakly screened stencil makes an output
    pixel in one corner depend on the input in the opposite corner (the field of view a stack of 3x3
    convolutions lacks), without periodic wrap-around (the zero padding)."""
    import torch.nn.functional as F

    from hybrid.operators.implicit import ImplicitStencil

    torch.manual_seed(0)
    layer = ImplicitStencil(3, eps=1e-8).double()
    x = torch.randn(2, 3, 17, 17, dtype=torch.float64)
    assert torch.equal(layer(x), x)
    with torch.no_grad():
        layer.kernel.add_(0.05 * torch.randn_like(layer.kernel))
        u = layer.solve(x)
        Ku = F.conv2d(F.pad(u, (1, 1, 1, 1)), layer.kernel.flip(-1, -2)[:, None], groups=3)
    np.testing.assert_allclose(Ku[..., 1:-1, 1:-1], x[..., 1:-1, 1:-1], atol=1e-5)
    weak = ImplicitStencil(1, shift=0.01).double()   # a weakly screened Poisson solve: a long reach
    with torch.no_grad():
        weak.gamma.fill_(1.0)
    xin = torch.zeros(1, 1, 17, 17, dtype=torch.float64, requires_grad=True)
    weak(xin)[0, 0, 0, 0].backward()
    assert xin.grad[0, 0, -1, -1] > 1e-3 * xin.grad[0, 0, 0, 1]     # the far corner is seen
    delta = torch.zeros(1, 1, 17, 17, dtype=torch.float64)
    delta[0, 0, 8, 0] = 1.0
    u = weak.solve(delta)[0, 0, 8]
    assert u[16] < 0.5 * u[1]      # 16 cells away, not 1 across a periodic wrap


def test_helmholtz_net_with_implicit_layer_round_trips(tmp_path):
    from hybrid.operators.helmholtz_net import HelmholtzNet, HelmholtzNetConfig
    from hybrid.precond.helmholtz import load_helmholtz_net, save_helmholtz_net

    torch.manual_seed(0)
    net = HelmholtzNet(HelmholtzNetConfig(channels=4, depth=2, implicit=True))
    with torch.no_grad():
        net.unet.bottleneck.gamma.fill_(0.3)
    r, kh = torch.randn(1, 2, 33, 33), torch.rand(1, 1, 33, 33)
    back = load_helmholtz_net(save_helmholtz_net(tmp_path / "n.pt", net), "cpu")
    assert back.config.implicit
    torch.testing.assert_close(back(r, kh), net.eval()(r, kh))
    plain = HelmholtzNet(HelmholtzNetConfig(channels=4, depth=2))
    assert net.parameter_count() == plain.parameter_count() + 16 * 9 + 16
    # a plain checkpoint loads into the implicit network only where the missing weights are the new layer's
    from hybrid.precond.net_checkpoint import load_net

    path = save_helmholtz_net(tmp_path / "plain.pt", plain)
    grown = load_net(path, "helmholtz-cslp-correction",
                     lambda c: HelmholtzNet(HelmholtzNetConfig(**{**c, "implicit": True})), new_layers="unet.bottleneck.")
    assert float(grown.unet.bottleneck.gamma.detach().abs().max()) == 0.0
    torch.testing.assert_close(grown(r, kh), plain.eval()(r, kh))
    with pytest.raises(ValueError, match="weights do not fit"):
        load_net(path, "helmholtz-cslp-correction", lambda c: HelmholtzNet(HelmholtzNetConfig(**{**c, "implicit": True})))
    with pytest.raises(ValueError, match="weights do not fit"):
        load_net(path, "helmholtz-cslp-correction", lambda c: HelmholtzNet(HelmholtzNetConfig(channels=4, depth=3)))
