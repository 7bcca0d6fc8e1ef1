"""Hybrid inversion (issue 10, deliverable 5, Darcy): a learned pressure -> coefficient map alone
(``learned``) and as the adjoint's initial guess (``learned+adjoint``), in the API, ``hybrid invert`` and
``hybrid bench inverse``. Tiny sizes: n = 8, a few samples, a network trained for two epochs."""

import json

import numpy as np
import pytest
import torch

from hybrid.inverse import darcy_problem, invert_darcy
from hybrid.data import additive_noise
from hybrid.inverse.learned import (InverseTrainConfig, LearnedInverse, LearnedInverseError,
                                    invert_hybrid, invert_learned, train_inverse_map)
from solvers.data import generate

N = 8
TINY = {"channels": 4, "layers": 1, "levels": [[1, 0], [1, 0], [1, 0]]}


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    d = tmp_path_factory.mktemp("inv")
    generate("darcy", 24, N, d / "ln.h5", seed=101, params={"coefficient": "log-normal", "sigma": 0.5},
             block=24, progress=False)
    generate("darcy", 24, N, d / "tp.h5", seed=202, params={"coefficient": "two-phase"}, block=24, progress=False)
    cfg = InverseTrainConfig(model="mgno", model_config=TINY, epochs=2, batch_size=8, lr=3e-3, n_val=8)
    s = train_inverse_map([d / "ln.h5", d / "tp.h5"], d / "inv.pt", cfg, log=None)
    assert s["n"] == N and s["samples"] == 48 and np.isfinite(s["best_val_rel_l2_median"])
    return d / "inv.pt"


@pytest.mark.parametrize("spec,noise", [("log-normal:sigma=0.5,seed=7,index=0", 0.01),
                                        ("two-phase:seed=7,index=1", 0.0)])
def test_adjoint_refines_the_learned_estimate(model_path, spec, noise):
    model = LearnedInverse.from_checkpoint(model_path)
    p = darcy_problem(N, spec, noise=noise, seed=1)
    opts = dict(observe=p.observe, solver=p.solver, noise_norm=p.noise_norm or None, truth=p.truth)
    alone = invert_learned(p.data, p.family, model, **opts)
    hybrid = invert_hybrid(p.data, p.family, model, reg="h1", weight=1e-5, maxiter=30, **opts)
    assert np.all(alone.a > 0) and alone.iterations == 0 and alone.seconds > 0
    # the adjoint starts from the network's estimate and never ends fitting the data worse
    assert hybrid.history["misfit"][0] == pytest.approx(alone.misfit, rel=1e-9)
    assert hybrid.history["rel_error"][0] == pytest.approx(alone.history["rel_error"][0], rel=1e-9)
    assert hybrid.misfit <= alone.misfit * (1 + 1e-12)
    assert hybrid.seconds >= hybrid.extra["network_seconds"] > 0
    # the same run as invert_darcy with a0 = the estimate
    plain = invert_darcy(p.data, p.family, a0=alone.a, reg="h1", weight=1e-5, maxiter=30, **opts)
    if hybrid.stopped != "kept-learned":
        assert np.allclose(plain.a, hybrid.a)


def test_randomly_initialised_network_is_refined(tmp_path):
    """An untrained network (random weights, identity normalizer) still gives a positive start that the
    adjoint improves."""
    from hybrid.data import DataProcessor
    from hybrid.operators import build
    from hybrid.training import checkpoint

    torch.manual_seed(0)
    model = build("mgno", {"in_channels": 1, "out_channels": 1, **TINY})
    path = checkpoint.save(tmp_path / "rand.pt", "mgno", model, DataProcessor(1, 1),
                           {"task": "darcy-inverse", "inverse": {"n": N, "target": "log"}})
    p = darcy_problem(N, "log-normal:sigma=0.5,seed=7,index=2", noise=0.0)
    alone = invert_learned(p.data, p.family, path, solver=p.solver, truth=p.truth)
    hybrid = invert_hybrid(p.data, p.family, path, solver=p.solver, truth=p.truth, maxiter=40)
    assert hybrid.misfit < 0.5 * alone.misfit
    assert hybrid.history["rel_error"][-1] < alone.history["rel_error"][-1]


def test_training_noise_is_relative_additive():
    x = torch.ones(200, 1, 33, 33) * torch.linspace(1, 5, 200)[:, None, None, None]
    y = additive_noise(x, 0.01, torch.Generator().manual_seed(0))
    rel = (y - x).flatten(1).norm(dim=1) / x.flatten(1).norm(dim=1)
    assert torch.allclose(rel, torch.full_like(rel, 0.01), rtol=0.1)
    assert additive_noise(x, 0.0) is x


def test_wrong_models_get_clear_errors(model_path, tmp_path):
    from hybrid.data import DataProcessor
    from hybrid.operators import build
    from hybrid.training import checkpoint

    # a forward operator (coefficient -> solution) from `hybrid train`
    fwd = checkpoint.save(tmp_path / "fwd.pt", "mgno", build("mgno", TINY), DataProcessor(1, 1),
                          {"train": {"config": {"inputs": ["coefficient"], "outputs": ["solution"]}}})
    with pytest.raises(LearnedInverseError, match=r"trained \['coefficient'\] -> \['solution'\]\), not a Darcy inverse map"):
        LearnedInverse.from_checkpoint(fwd)
    # a model that does not map a grid to the same grid
    don = checkpoint.save(tmp_path / "don.pt", "deeponet", build("deeponet", {}), None,
                          {"task": "darcy-inverse", "inverse": {"n": N}})
    with pytest.raises(LearnedInverseError, match="not a grid-to-grid model"):
        LearnedInverse.from_checkpoint(don)
    # two input channels
    two = checkpoint.save(tmp_path / "two.pt", "mgno", build("mgno", {**TINY, "in_channels": 2}), DataProcessor(2, 1),
                          {"task": "darcy-inverse", "inverse": {"n": N}})
    with pytest.raises(LearnedInverseError, match="reads 1 channel"):
        LearnedInverse.from_checkpoint(two)
    # not a checkpoint at all
    (tmp_path / "junk.pt").write_bytes(b"not torch")
    with pytest.raises(ValueError, match="cannot be loaded safely|not a hybrid-checkpoint"):
        LearnedInverse.from_checkpoint(tmp_path / "junk.pt")
    # trained at n = 8, used at n = 12; sensor data
    model = LearnedInverse.from_checkpoint(model_path)
    p = darcy_problem(12, "log-normal:sigma=0.5,seed=7,index=0")
    with pytest.raises(LearnedInverseError, match=r"trained on \(9, 9\) pressure grids \(n = 8\).*use --n 8"):
        invert_learned(p.data, p.family, model, solver=p.solver)
    q = darcy_problem(N, "log-normal:sigma=0.5,seed=7,index=0", sensors=20)
    with pytest.raises(LearnedInverseError, match="sensor data"):
        invert_hybrid(q.data, q.family, model, observe=q.observe, solver=q.solver)
    with pytest.raises(ValueError, match="gradient-to-grid|grid-to-grid"):
        InverseTrainConfig(model="deeponet")


def test_cli_learned_methods(model_path, tmp_path, capsys):
    from hybrid.cli import main

    for method in ("learned", "learned+adjoint"):
        out = tmp_path / method
        assert main(["invert", "darcy", "--n", str(N), "--noise", "0.01", "--method", method, "--model",
                     str(model_path), "--maxiter", "20", "--out", str(out), "--no-progress"]) == 0
        s = json.loads((out / "summary.json").read_text())
        assert s["method"] == method and s["model"] == str(model_path)
        assert (out / "coefficient.png").stat().st_size > 0
    learned = json.loads((tmp_path / "learned" / "summary.json").read_text())
    hybrid = json.loads((tmp_path / "learned+adjoint" / "summary.json").read_text())
    assert learned["iterations"] == 0 and learned["stopped"] == "learned"
    assert hybrid["rel_l2_coeff_initial"] == pytest.approx(learned["rel_l2_coeff"], rel=1e-9)
    assert hybrid["misfit"] <= learned["misfit"] * (1 + 1e-12)
    # wrong size, sensors, missing model, --model with adjoint
    assert main(["invert", "darcy", "--n", "12", "--method", "learned", "--model", str(model_path),
                 "--out", str(tmp_path / "x"), "--no-progress"]) == 2
    assert "trained on (9, 9) pressure grids" in capsys.readouterr().err
    assert main(["invert", "darcy", "--n", str(N), "--method", "learned", "--sensors", "20", "--model",
                 str(model_path), "--out", str(tmp_path / "x")]) == 2
    assert "use --sensors all" in capsys.readouterr().err
    assert main(["invert", "darcy", "--n", "5", "--method", "learned+adjoint", "--out", str(tmp_path / "x")]) == 2
    assert "needs --model FILE.pt" in capsys.readouterr().err
    assert main(["invert", "darcy", "--n", str(N), "--model", str(model_path), "--out", str(tmp_path / "x")]) == 2
    assert "--model is for --method learned" in capsys.readouterr().err


def test_bench_inverse_learned_rows(model_path):
    from hybrid.bench import inverse

    recs = inverse.run(N, 2, coefficients=("log-normal",), noises=(0.01,), maxiter=20,
                       methods=inverse.METHODS, model=model_path, log=None)
    by = {r["method"]: r for r in recs}
    assert list(by) == ["adjoint", "learned", "learned+adjoint"]
    assert by["learned"]["iterations"] == 0 and by["learned"]["model"] == str(model_path)
    assert by["learned+adjoint"]["rel_l2_coeff_initial"] == pytest.approx(by["learned"]["rel_l2_coeff"])
    assert "time_ratio_to_adjoint" in by["learned+adjoint"] and "time_ratio_to_adjoint" not in by["adjoint"]
    with pytest.raises(ValueError, match="trained at n = 8; this run has n = 12"):
        inverse.run(12, 1, methods=("learned",), model=model_path, log=None)
    with pytest.raises(ValueError, match="need --model"):
        inverse.run(N, 1, methods=("learned+adjoint",), log=None)
