"""Issue 9, findings 5 and 8: data generation validates its parameters before touching files (one check
shared with ``solve --coefficient``), and training refuses bad data, bad sizes and mismatched runs."""

import json
import math
import shutil
import warnings

import h5py
import numpy as np
import pytest
import torch

from hybrid.cli import main
from solvers.data import generate, make_generator
from solvers.sampling import field_from_spec

UNET = {"channels": 4, "depth": 2}


def cli(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


# -- finding 5: generation parameters ------------------------------------------------------------------------
def gen_cli(capsys, out, *params):
    args = ["generate", "darcy", "--samples", 2, "--n", 8, "--out", out, "--no-progress", "--block", 2]
    for p in params:
        args += ["--param", p]
    return cli(capsys, *args)


def assert_no_files(out):
    assert not out.exists() and not out.with_name(out.name + ".parts").exists(), list(out.parent.iterdir())


@pytest.mark.parametrize("param, message", [
    ("low=-3", "low must be positive and finite, got -3"),
    ("tau=NaN", "tau must be positive and finite, got nan"),
    ("high=Infinity", "high must be positive and finite, got inf"),
    ("alpha=1", "alpha must be a finite number above 1, got 1"),
    ("sigma=0", "sigma must be positive and finite, got 0"),
    ("modes=0", "modes must be a positive integer, got 0"),
    ("modes=2.5", "modes must be a positive integer, got 2.5"),
    ("tau=abc", "tau must be positive and finite, got 'abc'"),
    ("low=20", "low must be below high, got low=20.0, high=12.0"),
    ("f=NaN", "f must be a finite number, got nan"),
])
def test_generate_refuses_bad_parameter_before_creating_files(capsys, tmp_path, param, message):
    out = tmp_path / "x.h5"
    rc, _, err = gen_cli(capsys, out, param)
    assert rc == 2, err
    assert err.startswith("hybrid generate: error: darcy: ") and message in err, err
    assert_no_files(out)


def test_misspelled_coefficient_leaves_nothing_that_blocks_the_corrected_run(capsys, tmp_path):
    out = tmp_path / "x.h5"
    rc, _, err = gen_cli(capsys, out, "coefficient=lognormal")
    assert rc == 2 and "unknown coefficient 'lognormal'; use one of: two-phase, contrast, log-normal" in err, err
    assert_no_files(out)
    rc, stdout, err = gen_cli(capsys, out, "coefficient=log-normal")
    assert rc == 0, err
    assert "generated 2 samples" in stdout
    with h5py.File(out) as f:
        a = f["coefficient"][...]
    assert a.shape == (2, 9, 9) and np.all(a > 0) and len(np.unique(a)) > 2  # smooth log-normal, not two-phase


def test_generator_checks_every_sampler_parameter_at_construction():
    with pytest.raises(ValueError, match=r"darcy: tau must be positive and finite, got nan"):
        make_generator("darcy", 8, 0, {"tau": float("nan")})
    with pytest.raises(ValueError, match=r"eit: count must be a non-negative integer, got -1"):
        make_generator("eit", 8, 0, {"count": -1})
    with pytest.raises(ValueError, match=r"helmholtz: omega must be positive and finite, got nan"):
        make_generator("helmholtz", 8, 0, {"omega": float("nan")})
    with pytest.raises(ValueError, match=r"poisson: alpha must be a finite number above 1, got 0.5"):
        make_generator("poisson", 8, 0, {"alpha": 0.5})
    with pytest.raises(ValueError, match=r"darcy-rhs: unknown coefficient 'gauss'"):
        make_generator("darcy-rhs", 8, 0, {"coefficient": "gauss"})
    # contrast keeps its own defaults for the values not given
    gen = make_generator("darcy", 8, 0, {"coefficient": "contrast", "low": 2.0})
    assert (gen.params["low"], gen.params["high"]) == (2.0, 1e4)
    assert set(np.unique(gen.sample(0)["coefficient"])) <= {2.0, 1e4}


@pytest.mark.parametrize("spec, message", [
    ("two-phase:tau=nan", "two-phase: tau must be positive and finite, got nan"),
    ("two-phase:low=-3", "two-phase: low must be positive and finite, got -3"),
    ("log-normal:sigma=-1", "log-normal: sigma must be positive and finite, got -1"),
    ("inclusions:value=inf", "inclusions: value must be positive and finite, got inf"),
    ("two-phase:seed=-1", "two-phase: seed must be a non-negative integer, got -1"),
    ("contrast:low=1e5", "contrast: low must be below high, got low=100000.0, high=10000.0"),
])
def test_field_spec_shares_the_check(spec, message):
    with pytest.raises(ValueError) as e:
        field_from_spec(spec)
    assert str(e.value) == message


def test_field_spec_unknown_key_names_it_and_the_valid_ones():
    with pytest.raises(ValueError) as e:
        field_from_spec("two-phase:sed=3")
    assert str(e.value) == "unknown parameter 'sed' for two-phase; valid: alpha, high, index, low, modes, seed, tau"


def test_solve_command_refuses_nan_tau(capsys):
    rc, _, err = cli(capsys, "solve", "darcy", "--n", 4, "--coefficient", "two-phase:tau=nan")
    assert rc == 2 and "hybrid solve: error: two-phase: tau must be positive and finite, got nan" in err, err


def test_same_message_from_solve_and_generate():
    with pytest.raises(ValueError) as a:
        field_from_spec("two-phase:low=-3")
    with pytest.raises(ValueError) as b:
        make_generator("darcy", 8, 0, {"low": -3})
    assert str(a.value).split(": ", 1)[1] == str(b.value).split(": ", 1)[1] == "low must be positive and finite, got -3"


# -- finding 8: training ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("hd") / "d.h5"
    generate("darcy", 24, 16, path, block=8, progress=False)
    return path


@pytest.fixture(scope="module")
def other_data(tmp_path_factory):
    path = tmp_path_factory.mktemp("hd2") / "e.h5"
    generate("darcy", 24, 16, path, seed=1, block=8, progress=False)
    return path


def cfg(**kw):
    from hybrid.training import TrainConfig

    return TrainConfig(**{"epochs": 2, "n_train": 12, "n_test": 4, "batch_size": 4, **kw})


def trainer(data, out, model="unet", config=UNET, **kw):
    from hybrid.training import Trainer

    return Trainer(model, config, data, out, cfg(**kw))


def copy_with(data, tmp_path, edit):
    path = tmp_path / "edited.h5"
    shutil.copy(data, path)
    with h5py.File(path, "r+") as f:
        edit(f)
    return path


def test_nan_sample_refused_up_front_naming_index_and_field(data, tmp_path):
    def poison(f):
        a = f["coefficient"][5]
        a[3, 4] = np.nan
        f["coefficient"][5] = a

    bad = copy_with(data, tmp_path, poison)
    with pytest.raises(ValueError, match=r"edited.h5: field 'coefficient' of sample 5 has 1 non-finite value"):
        trainer(bad, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_non_finite_loss_stops_without_saving_nan_weights(data, tmp_path):
    from hybrid.training import load

    t = trainer(data, tmp_path / "run", epochs=3)
    real, calls = t.loss_fn, {"n": 0}
    per_epoch = math.ceil(len(t.xtr) / t.cfg.batch_size)

    def nan_in_second_epoch(pred, y):
        calls["n"] += 1
        loss = real(pred, y)
        return loss * float("nan") if calls["n"] > per_epoch else loss

    t.loss_fn = nan_in_second_epoch
    with pytest.raises(ValueError, match=r"non-finite training loss \(nan\) at epoch 1, batch 0"):
        t.fit(progress=False)
    name, model, _, payload = load(tmp_path / "run" / "last.pt")
    assert payload["train"]["epoch"] == 0
    assert all(torch.isfinite(p).all() for p in model.parameters())
    # NaN in the very first batch: no checkpoint and no empty run directory left behind
    t = trainer(data, tmp_path / "run0")
    t.loss_fn = lambda pred, y: real(pred, y) * float("nan")
    with pytest.raises(ValueError, match=r"at epoch 0, batch 0"):
        t.fit(progress=False)
    assert not (tmp_path / "run0").exists()


def test_run_directory_of_another_model_or_config_refused(data, tmp_path, capsys):
    run = tmp_path / "run"
    trainer(data, run, epochs=1).fit(progress=False)
    with pytest.raises(ValueError, match=r"run holds a unet checkpoint \(last.pt\); this run is mgno"):
        trainer(data, run, model="mgno", config={"channels": 4, "layers": 1, "levels": [[1, 1], [1, 0]]},
                epochs=1).fit(progress=False)
    with pytest.raises(ValueError, match=r"model config differs: channels: checkpoint 4, now 8"):
        trainer(data, run, config={"channels": 8, "depth": 2}, epochs=1).fit(progress=False)
    rc, _, err = cli(capsys, "train", "mgno", "--data", data, "--out", run, "--epochs", 0, "--no-progress")
    assert rc == 2 and "epochs=0" in err, err


@pytest.mark.parametrize("change, message", [
    ({"lr": 1e-2}, "lr: checkpoint 0.001, now 0.01"),
    ({"loss": "h1"}, "loss: checkpoint 'l2', now 'h1'"),
    ({"batch_size": 3}, "batch_size: checkpoint 4, now 3"),
])
def test_resume_with_other_settings_refused(data, tmp_path, change, message):
    run = tmp_path / "run"
    trainer(data, run).fit(progress=False)
    with pytest.raises(ValueError, match="cannot resume") as e:
        trainer(data, run, **change).resume()
    assert message in str(e.value)
    assert trainer(data, run).resume()  # the same settings resume


def test_resume_with_other_data_refused(data, other_data, tmp_path):
    run = tmp_path / "run"
    trainer(data, run).fit(progress=False)
    with pytest.raises(ValueError, match=r"cannot resume .*data: checkpoint .*d\.h5.*, now .*e\.h5"):
        trainer(other_data, run).resume()


@pytest.mark.parametrize("kw, message", [
    ({"n_train": 1}, "n_train=1"),
    ({"n_train": 0}, "n_train=0"),
    ({"batch_size": 0}, "batch_size=0"),
    ({"n_test": 0}, "n_test=0"),
    ({"epochs": 0}, "epochs=0"),
    ({"lr": float("nan")}, "lr=nan"),
])
def test_bad_sizes_are_clear_errors(kw, message):
    with pytest.raises(ValueError, match=message):
        cfg(**kw)


def test_bad_sizes_on_the_command_line(data, tmp_path, capsys):
    out = tmp_path / "run"
    for flag, value in (("--n-train", 1), ("--batch-size", 0), ("--n-train", 0)):
        rc, _, err = cli(capsys, "train", "unet", "--data", data, "--out", out, "--epochs", 1, flag, value,
                         "--config", json.dumps(UNET), "--no-progress")
        assert rc == 2 and f"{flag[2:].replace('-', '_')}={value}" in err, err
        assert not out.exists()


def test_complex_refused_integer_and_half_converted(data, tmp_path):
    from hybrid.data import FieldDataset

    def add(f):
        a = f["coefficient"][...]
        f["coefficient_c"] = a + 1j * a
        f["coefficient_i8"] = a.astype(np.int8)
        f["coefficient_f16"] = a.astype(np.float16)

    path = copy_with(data, tmp_path, add)
    with pytest.raises(ValueError, match=r"field 'coefficient_c' is complex \(complex128\)"):
        FieldDataset(path, inputs=("coefficient_c",))
    ref, _ = FieldDataset(path, indices=range(3)).arrays()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in ("coefficient_i8", "coefficient_f16"):
            ds = FieldDataset(path, inputs=(name,), indices=range(3))
            x, _ = ds.arrays()
            assert x.dtype == torch.float32 and ds[1][0].dtype == torch.float32
            torch.testing.assert_close(x, ref)  # {3, 12} are exact in int8 and float16


def test_small_dataset_gets_a_printed_default_split(data, tmp_path, capsys):
    out = tmp_path / "run"
    rc, stdout, err = cli(capsys, "train", "unet", "--data", data, "--out", out, "--epochs", 1,
                          "--config", json.dumps(UNET), "--no-progress")
    assert rc == 0, err
    assert "24 samples, fewer than n_train=1000 + n_test=100: using n_train=22 (20 training, 2 validation) " \
           "and n_test=2" in stdout, stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["test_n"] == 2 and math.isfinite(summary["test_rel_l2_mean"])


def test_failed_run_leaves_no_empty_directory(data, tmp_path, capsys):
    out = tmp_path / "run"
    rc, _, err = cli(capsys, "train", "unet", "--data", data, "--out", out, "--n-train", 30, "--n-test", 10,
                     "--config", json.dumps(UNET), "--no-progress")
    assert rc == 2 and "the dataset has 24 samples; n_train=30 + n_test=10 exceed it" in err, err
    assert not out.exists()


def test_normalizer_refuses_non_finite_data():
    from hybrid.data import DataProcessor

    x = torch.ones(3, 1, 5, 5)
    x[1, 0, 2, 2] = float("inf")
    with pytest.raises(ValueError, match="cannot fit the normalizer: 1 of 75 values are non-finite"):
        DataProcessor(1, 1).fit(x, torch.ones(3, 1, 5, 5))
