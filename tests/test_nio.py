"""Issue 10, deliverables 3, 4 and 8 (NIO / DeepONet parts): the Neural Inverse Operator is invariant to the order
of the measurements and works with any number of them; EIT files train NIO and DeepONet from the command line
without reshaping (inputs: boundary patterns and Dirichlet-to-Neumann data, output: the conductivity);
checkpoints load with ``weights_only=True``; wrong measurement shapes get clear errors."""

import json

import h5py
import numpy as np
import pytest
import torch

from hybrid.cli import main
from hybrid.data import FieldDataset, default_fields, multiplicative_noise
from hybrid.operators import MODELS, NIO, NIOConfig, build, neuraloperator_available
from hybrid.operators.nio import resample_periodic
from hybrid.training import Trainer, TrainConfig, load
from solvers.data import generate

TINY = {"sensors": 16, "width": 16, "depth": 2, "basis": 4, "lift": 3, "decoder_channels": 4, "decoder_layers": 2}
DECODERS = ["cnn", "mgno"] + (["fno"] if neuraloperator_available() else [])


def tiny(decoder="cnn", **kw):
    torch.manual_seed(0)
    extra = {"modes": 3} if decoder == "fno" else {}
    return NIO(NIOConfig(**{**TINY, "decoder": decoder, **extra, **kw})).double()


def measurements(batch=2, count=8, nb=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 2, count, nb, generator=g, dtype=torch.float64)


def cli(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(scope="module")
def eit(tmp_path_factory):
    """24 EIT samples on a 10 x 10 mesh (11 x 11 conductivity grid, 40 boundary nodes), 8 patterns."""
    path = tmp_path_factory.mktemp("eit") / "eit10.h5"
    generate("eit", 24, 10, path, block=12, progress=False, params={"patterns": 8})
    return path


# -- the operator ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("decoder", DECODERS)
def test_output_invariant_to_the_order_of_measurements(decoder):
    model = tiny(decoder).eval()
    x = measurements()
    perm = torch.randperm(x.shape[2], generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        y, yp = model(x), model(x[:, :, perm])
    assert y.shape == (2, 1, 9, 9)
    torch.testing.assert_close(yp, y, rtol=1e-10, atol=1e-12)
    # a different measurement changes the output (the test above is not vacuous)
    z = x.clone()
    z[:, 1, 0] *= 2
    assert not torch.allclose(model(z), y)


def test_any_number_of_measurements():
    model = tiny().eval()
    x = measurements(count=8)
    with torch.no_grad():
        for count in (1, 3, 7, 8):
            y = model(x[:, :, :count])
            assert y.shape == (2, 1, 9, 9) and torch.isfinite(y).all()
        # the measurements are averaged, not summed: every measurement twice gives the same output
        torch.testing.assert_close(model(torch.cat([x, x], dim=2)), model(x), rtol=1e-10, atol=1e-12)
        # 3 of 8 in any order
        torch.testing.assert_close(model(x[:, :, [5, 0, 2]]), model(x[:, :, [0, 2, 5]]), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("decoder", DECODERS)
def test_shapes_and_gradients(decoder):
    model = tiny(decoder).train()
    x = measurements(batch=3, count=7, nb=48).requires_grad_(True)
    y = model(x, out_shape=(13, 11))
    assert y.shape == (3, 1, 13, 11)
    y.square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert model.config.decoder == decoder


def test_auto_decoder_is_resolved_in_the_config():
    model = NIO(NIOConfig(**TINY))
    assert model.config.decoder == ("fno" if neuraloperator_available() else "mgno")
    assert build("nio", dict(TINY)).config.decoder == model.config.decoder


def test_training_draws_random_subsets_reproducibly():
    model = tiny().train()
    x = measurements(batch=2, count=8)
    seen = set()
    for _ in range(12):
        idx = model._subset(8, x.device)
        assert idx is None or (2 <= len(idx) <= 8 and len(set(idx.tolist())) == len(idx))
        seen.add(8 if idx is None else len(idx))
    assert len(seen) > 2 and int(model.draws) == 12
    # the draws depend only on (seed, draws): a copy with the same state draws the same subsets
    other = tiny().train()
    other.load_state_dict(model.state_dict())
    torch.testing.assert_close(other(x), model(x))
    # evaluation uses every measurement and draws nothing
    model.eval()
    model(x)
    assert int(model.draws) == 13
    fixed = tiny(random_measurements=False).train()
    fixed(x)
    assert int(fixed.draws) == 0


def test_boundary_resampling_is_periodic_and_exact_for_linear_data():
    s = torch.arange(8, dtype=torch.float64) / 8
    u = torch.cos(2 * np.pi * s)
    v = resample_periodic(u[None], 16)[0]
    torch.testing.assert_close(v[::2], u)  # nodes kept
    torch.testing.assert_close(v[15], (u[7] + u[0]) / 2)  # the wrap-around interval
    torch.testing.assert_close(resample_periodic(u[None], 8)[0], u)  # same resolution: unchanged


@pytest.mark.parametrize("shape, message", [
    ((2, 8, 32), r"NIO takes measurements shaped \(batch, 2 channels, measurements, boundary points\), got \(2, 8, 32\)"),
    ((2, 3, 8, 32), r"built for 2 channels per measurement .* got 3"),
    ((2, 2, 0, 32), "at least one measurement"),
    ((2, 2, 8, 1), "at least 2 boundary points"),
    ((2, 2, 8, 30), "30 boundary points are not the 4 n nodes of a unit-square grid: pass out_shape"),
])
def test_wrong_measurement_shape_is_a_clear_error(shape, message):
    with pytest.raises(ValueError, match=message):
        tiny().eval()(torch.zeros(shape, dtype=torch.float64))


@pytest.mark.parametrize("config, message", [
    ({"decoder": "transformer"}, "unknown decoder 'transformer'; use one of: auto, fno, mgno, cnn"),
    ({"lift": 0}, r"lift=0: must be a positive integer"),
    ({"min_measurements": 0}, r"min_measurements=0"),
])
def test_bad_config_is_a_clear_error(config, message):
    with pytest.raises(ValueError, match=message):
        build("nio", {**TINY, **config})


def test_registered_for_the_command_line():
    from hybrid import names

    assert "nio" in MODELS and "nio" in names.MODELS


# -- EIT data into training ----------------------------------------------------------------------------------------
def test_eit_file_feeds_training_without_reshaping(eit):
    assert default_fields(eit) == (("patterns", "dtn"), ("conductivity",))
    ds = FieldDataset(eit, *default_fields(eit))
    x, y = ds.arrays()
    assert x.shape == (24, 2, 8, 40) and y.shape == (24, 1, 11, 11)
    with h5py.File(eit) as f:
        np.testing.assert_allclose(x[3, 0].numpy(), f["fixed/patterns"][...], rtol=1e-6)  # the patterns, per sample
        np.testing.assert_allclose(x[3, 1].numpy(), f["dtn"][3], rtol=1e-6)
    assert ds.measured_inputs == (1,)  # noise goes to the data, not to the known patterns
    with pytest.raises(ValueError, match=r"need one shape per sample; they have conductivity \(11, 11\), dtn \(8, 40\)"):
        FieldDataset(eit, ("conductivity", "dtn"), ("conductivity",))
    with pytest.raises(ValueError, match=r"no field 'coefficient'; it has: conductivity, dtn, .*patterns \(fixed\)"):
        FieldDataset(eit, ("coefficient",), ("conductivity",))


def test_multiplicative_noise():
    x = torch.ones(50, 2, 4, 8)
    y = multiplicative_noise(x, 0.1, channels=[1], seed=5)
    assert torch.equal(y[:, 0], x[:, 0])
    assert abs(float((y[:, 1] - 1).std()) - 0.1) < 0.01
    assert torch.equal(y, multiplicative_noise(x, 0.1, channels=[1], seed=5))
    assert multiplicative_noise(x, 0.0) is x
    with pytest.raises(ValueError, match="noise level must be a non-negative finite number"):
        multiplicative_noise(x, -0.1)
    with pytest.raises(ValueError, match="noise=-1"):
        TrainConfig(noise=-1)


def test_grid_models_refuse_eit_data_up_front(eit, tmp_path, capsys):
    rc, _, err = cli(capsys, "train", "mgno", "--data", eit, "--out", tmp_path / "run", "--epochs", 1, "--no-progress")
    assert rc == 2 and "mgno maps its input grid to the same grid, but the inputs are (8, 40)" in err, err
    assert "use deeponet or nio" in err and not (tmp_path / "run").exists()


@pytest.mark.parametrize("model, config", [
    ("nio", TINY),
    ("deeponet", {"sensors": [8, 40], "width": 16, "depth": 2, "basis": 8}),  # before: tensor a (64) vs b (17)
])
def test_train_and_evaluate_on_eit_from_the_command_line(eit, tmp_path, capsys, model, config):
    run = tmp_path / model
    rc, out, err = cli(capsys, "train", model, "--data", eit, "--out", run, "--epochs", 2, "--batch-size", 8,
                       "--config", json.dumps(config), "--noise", 0.1, "--no-progress")
    assert rc == 0, err
    assert f"{model}:" in out and "test relative L2 mean" in out
    for name in ("best.pt", "last.pt"):
        payload = torch.load(run / name, weights_only=True)
        assert payload["model"] == model and payload["train"]["config"]["inputs"] == ["patterns", "dtn"]
        assert payload["train"]["config"]["noise"] == 0.1
    name, net, processor, _ = load(run / "best.pt")
    # EIT inputs are normalized as difference data: the background DtN map of the 40 boundary nodes (n = 10)
    assert name == model and processor.inputs == "dtn" and tuple(processor.inp.background.shape) == (40, 40)
    summary = json.loads((run / "summary.json").read_text())
    assert np.isfinite(summary["test_rel_l2_mean"])
    for noise in (0.0, 0.1):
        rc, out, err = cli(capsys, "evaluate", run, "--data", eit, "--last", 6, "--noise", noise)
        assert rc == 0, err
        res = json.loads(out)
        assert res["n"] == 6 and res["resolution"] == [11, 11] and np.isfinite(res["rel_l2_mean"])
        assert res["noise"] == noise


def test_deeponet_default_sensors_train_on_eit(eit, tmp_path):
    """The shape error of the issue (DeepONet's output on the input's (patterns, boundary) grid) is gone
    also with the default square sensor grid."""
    t = Trainer("deeponet", {"width": 16, "depth": 2, "basis": 8}, eit, tmp_path / "run",
                TrainConfig(epochs=1, n_train=20, n_test=4, batch_size=10, inputs=("patterns", "dtn"),
                            outputs=("conductivity",)))
    s = t.fit(progress=False)
    assert np.isfinite(s["test_rel_l2_mean"])


def test_nio_resume_matches_uninterrupted(eit, tmp_path, monkeypatch):
    """The random subsets of measurements are part of the saved state (the ``draws`` buffer)."""
    import hybrid.training.trainer as tr

    cfg = TrainConfig(epochs=3, n_train=20, n_test=4, batch_size=8, inputs=("patterns", "dtn"),
                      outputs=("conductivity",))
    full = Trainer("nio", TINY, eit, tmp_path / "a", cfg)
    full.fit(progress=False)
    real_save = tr.checkpoint.save
    calls = {"n": 0}

    def save_then_stop(path, *a, **k):
        out = real_save(path, *a, **k)
        if str(path).endswith("last.pt"):
            calls["n"] += 1
            if calls["n"] == 1:
                raise KeyboardInterrupt
        return out

    monkeypatch.setattr(tr.checkpoint, "save", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        Trainer("nio", TINY, eit, tmp_path / "b", cfg).fit(progress=False)
    monkeypatch.setattr(tr.checkpoint, "save", real_save)
    resumed = Trainer("nio", TINY, eit, tmp_path / "b", cfg)
    assert resumed.resume() and resumed.start_epoch == 1
    resumed.fit(progress=False)
    np.testing.assert_allclose(resumed.history["train_loss"], full.history["train_loss"], rtol=1e-5)
