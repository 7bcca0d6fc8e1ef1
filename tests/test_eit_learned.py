"""Issue 10, NIO on EIT: difference-data normalization (order- and number-invariant), the randomized
heart-and-lungs family, noise augmentation, the learned EIT inverse map alone and as the adjoint's start,
and the ``hybrid bench inverse --problems eit-learned`` rows."""

import json

import h5py
import numpy as np
import pytest
import torch

from hybrid.cli import main
from hybrid.data import DataProcessor, training_noise
from hybrid.data.normalize import DtNNormalizer
from hybrid.inverse import LearnedEIT, eit_from_file, invert_eit_hybrid, invert_eit_learned
from hybrid.inverse.darcy_inversion import mass_matrix, relative_l2_error
from hybrid.inverse.learned import LearnedInverseError
from hybrid.training import Trainer, TrainConfig
from meshes import GridView
from solvers.data import generate
from solvers.sampling import make_field
from solvers.sampling.phantoms import heart_lungs_at


def _eit_batch(N=6, K=5, nb=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    patterns = torch.randn(K, nb, generator=g, dtype=torch.float64)
    L = torch.randn(nb, nb, generator=g, dtype=torch.float64)
    resp = patterns @ L.T + 0.05 * torch.randn(N, K, nb, generator=g, dtype=torch.float64)
    return torch.stack([patterns.expand(N, K, nb), resp], 1), L


def test_dtn_normalizer_removes_the_background_map_and_is_order_invariant():
    x, L = _eit_batch()
    norm = DtNNormalizer(12).fit(x)
    # the background map reproduces the mean response to every training pattern
    assert torch.allclose(x[:, 0, 0] @ norm.background.T.double(), x[:, 1].mean(0)[0], atol=1e-5)
    enc = norm.encode(x)
    assert abs(float(enc[:, 1].std()) - 1.0) < 1e-3 and abs(float(enc[:, 1].mean())) < 1e-3
    # a measurement's encoding depends on that measurement only: reordering or dropping measurements commutes
    perm = torch.tensor([3, 0, 4])
    assert torch.allclose(norm.encode(x[:, :, perm]), enc[:, :, perm])
    assert torch.allclose(norm.decode(enc), x, atol=1e-5)
    with pytest.raises(ValueError, match="12 boundary points"):
        norm.encode(torch.zeros(2, 2, 5, 10))


def test_processor_kinds_and_bad_names():
    with pytest.raises(ValueError, match="unknown input normalizer 'pixel'"):
        DataProcessor(2, 1, "pixel")
    with pytest.raises(ValueError, match="2 input channels"):
        DataProcessor(3, 1, "dtn", boundary_points=8)


def test_heart_lungs_family():
    pts = np.array([[0.5, 0.75, 0.5], [0.5, 0.55, 0.4]])  # background, a lung, the heart
    assert heart_lungs_at(pts).tolist() == [1.0, 0.5, 2.0]
    X, Y = np.meshgrid(np.linspace(0, 1, 33), np.linspace(0, 1, 33))
    xy = np.vstack([X.ravel(), Y.ravel()])
    a, b = (make_field("heart-lungs", seed=0, index=i)(xy) for i in (0, 1))
    assert not np.array_equal(a, b)                      # samples differ
    assert np.array_equal(a, make_field("heart-lungs", seed=0, index=0)(xy))  # and are reproducible
    for v in (a, b):  # heart in 2 exp([-0.5, 0.5]), lungs in 0.5 exp([-0.5, 0.5]), background 1
        vals = set(np.round(v, 12)) - {1.0}
        assert len(vals) == 3 and all(0.5 * np.exp(-0.5) - 1e-9 <= x <= 2 * np.exp(0.5) + 1e-9 for x in vals)
    with pytest.raises(ValueError, match="spread must be a number in"):
        make_field("heart-lungs", spread=2.0)


def test_training_noise_levels_are_bounded_and_seeded():
    x = torch.ones(200, 2, 3, 4)
    y = training_noise(x, 0.1, [1], seed=5)
    assert torch.equal(y, training_noise(x, 0.1, [1], seed=5)) and torch.equal(y[:, 0], x[:, 0])
    rel = (y[:, 1] - 1).flatten(1).std(dim=1)            # per-sample level ~ U(0, 0.1)
    assert float(rel.max()) < 0.2 and float(rel.min()) < 0.03 and float(rel.max()) > 0.06
    with pytest.raises(ValueError, match="train_noise"):
        TrainConfig(train_noise=-0.1)


@pytest.fixture(scope="module")
def eit_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("eit_learned")
    data = d / "hl.h5"
    generate("eit", 120, 8, data, seed=0, params={"coefficient": "heart-lungs", "patterns": 6}, progress=False)
    cfg = TrainConfig(epochs=4, n_train=100, n_test=10, inputs=("patterns", "dtn"), outputs=("conductivity",),
                      train_noise=0.1)
    Trainer("nio", {"decoder": "cnn", "width": 32, "basis": 8, "lift": 4, "decoder_channels": 8,
                    "decoder_layers": 2, "sensors": 32}, data, d / "run", cfg).fit(progress=False)
    return data, d / "run"


def test_learned_eit_alone_and_as_the_adjoint_start(eit_run):
    data, run = eit_run
    model = LearnedEIT.from_checkpoint(run)  # a run directory reads its best.pt
    p = eit_from_file(data, 115, noise=0.01, noise_model="multiplicative", seed=3)
    M = mass_matrix(p.solver.darcy)
    alone = invert_eit_learned(p.data, p.solver, model, truth=p.truth)
    est = model(p.data, p.solver)
    assert alone.history["rel_error"][0] == pytest.approx(relative_l2_error(est, p.truth, M))
    with h5py.File(data) as f:  # the estimate is the network on the file's stacked measurements
        x = torch.as_tensor(np.stack([f["fixed/patterns"][:], p.data])[None], dtype=torch.float32)
    with torch.no_grad():
        grid = model.processor.postprocess(model.model(model.processor.preprocess(x)[0], out_shape=(9, 9)))
    assert np.allclose(est, np.maximum(GridView(p.solver.family.mesh).to_dofs(grid[0, 0].double().numpy()), 1e-3),
                       atol=1e-6)
    hyb = invert_eit_hybrid(p.data, p.solver, model, truth=p.truth, noise_norm=p.noise_norm, reg="tv", weight=1e-7,
                            maxiter=15)
    # the adjoint refines the estimate: it starts there, and never ends with a worse data fit
    assert hyb.history["rel_error"][0] == pytest.approx(alone.history["rel_error"][0])
    assert hyb.misfit <= alone.misfit + 1e-12 and hyb.seconds >= alone.seconds * 0.5
    with pytest.raises(LearnedInverseError, match="expects patterns and data of equal shape"):
        model.predict_grid(np.zeros((6, 40)), np.zeros((6, 40)), (11, 11))


def test_learned_eit_refuses_a_darcy_operator(tmp_path):
    data = tmp_path / "darcy.h5"
    generate("darcy", 12, 8, data, seed=0, progress=False)
    Trainer("mgno", {"channels": 4, "levels": [[1, 0], [1, 0]]}, data, tmp_path / "run",
            TrainConfig(epochs=1, n_train=10, n_test=2)).fit(progress=False)
    with pytest.raises(LearnedInverseError, match="patterns dtn -> conductivity"):
        LearnedEIT.from_checkpoint(tmp_path / "run" / "best.pt")


def test_bench_eit_learned_rows(tmp_path, capsys):
    out = tmp_path / "eit.json"
    rc = main(["bench", "inverse", "--quick", "--problems", "eit-learned", "--models", "nio,deeponet",
               "--samples", "60", "--data-dir", str(tmp_path / "data"), "--json", str(out)])
    assert rc == 0
    recs = json.loads(out.read_text())["records"]
    methods = {(r["method"], r["noise"]) for r in recs}
    for noise in (0.0, 0.01, 0.05, 0.1):
        for m in ("linear", "nio", "deeponet", "adjoint", "adjoint-prior", "nio+adjoint", "deeponet+adjoint",
                  "nio+adjoint-prior", "nio+adjoint-fixed"):
            assert (m, noise) in methods
    for r in recs:
        assert np.isfinite(r["rel_l2_coeff"]) and 0 < r["rel_l2_coeff"] < 2
    hyb = [r for r in recs if r["method"] == "nio+adjoint"]
    assert all(r["rel_l2_coeff"] <= r["rel_l2_coeff_initial"] + 0.05 for r in hyb)


def test_learned_regularizer_from_a_prior_denoiser(tmp_path):
    from hybrid.inverse import eit_problem, invert_eit
    from hybrid.inverse.prior import LearnedRegularizer, PriorDenoiser, train_denoiser

    X, Y = np.meshgrid(np.linspace(0, 1, 9), np.linspace(0, 1, 9))
    xy = np.vstack([X.ravel(), Y.ravel()])
    fields = np.log([make_field("heart-lungs", seed=0, index=i)(xy).reshape(9, 9) for i in range(64)])
    path = train_denoiser(fields, tmp_path / "prior.pt", epochs=3, log=None)
    den = PriorDenoiser.from_checkpoint(path)  # weights_only checkpoint, task checked
    p = eit_problem("square", 8, "heart-lungs", patterns=6, refine=1)
    view = GridView(p.solver.family.mesh)
    reg = LearnedRegularizer(den, view, sigma=0.1)
    m = torch.as_tensor(np.log(p.truth) + 0.1 * np.random.default_rng(0).standard_normal(p.truth.size))
    m.requires_grad_(True)
    R = reg(m)
    R.backward()
    # R = mean (D(m) - m)^2 / 2 with D the trained denoiser; its gradient is autograd's, checked by differences
    assert float(R.detach()) >= 0 and torch.isfinite(m.grad).all()
    v = torch.as_tensor(np.random.default_rng(1).standard_normal(m.numel()))
    with torch.no_grad():
        fd = (reg(m + 1e-3 * v) - reg(m - 1e-3 * v)) / 2e-3
    assert float(fd) == pytest.approx(float(m.grad @ v), rel=0.05, abs=1e-6)
    r = invert_eit(p.data, p.solver, reg=reg, weight=3e-2, maxiter=10, truth=p.truth)
    assert r.history["misfit"][-1] < r.history["misfit"][0] and r.extra["reg"] == "LearnedRegularizer"
    with pytest.raises(ValueError, match="trained for levels in"):
        LearnedRegularizer(den, view, sigma=5.0)
    with pytest.raises(ValueError, match="not a prior denoiser"):
        PriorDenoiser.from_checkpoint(_operator_checkpoint(tmp_path))


def _operator_checkpoint(tmp_path):
    from hybrid.operators import build
    from hybrid.training import checkpoint

    return checkpoint.save(tmp_path / "op.pt", "unet", build("unet", {"channels": 4, "depth": 1}), None,
                           config={"channels": 4, "depth": 1})


def test_invert_eit_with_a_learned_model_from_the_command_line(eit_run, tmp_path, capsys):
    data, run = eit_run
    out = tmp_path / "inv"
    rc = main(["invert", "eit", "--data", str(data), "--sample", "112", "--noise", "0.01", "--method",
               "learned+adjoint", "--model", str(run), "--maxiter", "10", "--out", str(out), "--no-progress"])
    assert rc == 0
    s = json.loads((out / "summary.json").read_text())
    p = eit_from_file(data, 112, noise=0.01, seed=0)
    alone = invert_eit_learned(p.data, p.solver, LearnedEIT.from_checkpoint(run), truth=p.truth)
    assert s["rel_l2_coeff_initial"] == pytest.approx(alone.history["rel_error"][0], rel=1e-6)
    assert s["misfit"] <= alone.misfit + 1e-12 and (out / "coefficient.png").exists()
    capsys.readouterr()
    rc = main(["invert", "eit", "--data", str(data), "--method", "learned", "--out", str(tmp_path / "x")])
    assert rc != 0 and "needs --model RUN" in capsys.readouterr().err
