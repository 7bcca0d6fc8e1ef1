"""EIT adjoint inversion (issue 10): the DtN forward map and its adjoint gradient, phantoms, recovery of a
known conductivity, the discrepancy principle, bad inputs, ``hybrid invert eit`` and examples/eit_nio.py."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import meshes
from hybrid.inverse import EITSolver, eit_forward, eit_problem, invert_eit, phantom
from hybrid.inverse.eit_inversion import transfer_dtn

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def small():
    return EITSolver(meshes.unit_square(6), patterns=4)


def test_patterns_and_data_match_the_generator(tmp_path):
    """Boundary order and patterns equal `hybrid generate eit`'s; its data equal our forward map."""
    import h5py

    from hybrid.inverse import eit_from_file
    from solvers.data.generate import generate

    path = tmp_path / "eit.h5"
    generate("eit", samples=2, n=6, out=path, params={"patterns": 4}, progress=False)
    p = eit_from_file(path, 1)
    with h5py.File(path) as f:
        assert np.array_equal(f["fixed/boundary_dofs"][:], p.solver.bdofs)
    D, _ = p.solver.forward(p.truth)
    assert np.abs(D - p.clean).max() < 1e-10 * np.abs(D).max()
    ours = EITSolver(meshes.unit_square(6), patterns=4)
    assert np.abs(ours.patterns - p.solver.patterns).max() < 1e-12


def test_gradcheck_and_central_differences(small):
    rng = np.random.default_rng(0)
    sigma = torch.tensor(np.exp(0.3 * rng.standard_normal(small.ndofs)), requires_grad=True)
    assert torch.autograd.gradcheck(lambda s: eit_forward(s, small), (sigma,), eps=1e-6, atol=1e-6)
    # the inversion's misfit, central differences along a random direction, n = 16 and 16 patterns
    s16 = EITSolver(meshes.unit_square(16), patterns=16)
    d = rng.standard_normal(s16.patterns.shape)
    m = torch.tensor(0.3 * rng.standard_normal(s16.ndofs), requires_grad=True)

    def misfit(m):
        return 0.5 * ((eit_forward(torch.exp(m), s16) - torch.as_tensor(d)) ** 2).sum()

    misfit(m).backward()
    v, eps = rng.standard_normal(s16.ndofs), 1e-5
    with torch.no_grad():
        fd = (misfit(m + eps * torch.as_tensor(v)) - misfit(m - eps * torch.as_tensor(v))) / (2 * eps)
    assert abs(float(fd) - float(m.grad @ torch.as_tensor(v))) < 1e-6 * abs(float(fd))


def test_one_setup_serves_all_patterns(small):
    before = (small.counts.forward, small.counts.adjoint, small.counts.setups)
    sigma = torch.ones(small.ndofs, dtype=torch.float64, requires_grad=True)
    eit_forward(sigma, small).sum().backward()
    f, a, s = (small.counts.forward - before[0], small.counts.adjoint - before[1], small.counts.setups - before[2])
    assert (f, a, s) == (4, 4, 1)


def test_phantoms():
    xy = np.array([[0.5, 0.75, 0.25, 0.5], [0.5, 0.55, 0.55, 0.4]])
    assert phantom("heart-lungs")(xy).tolist() == [1.0, 0.5, 0.5, 2.0]
    a, b = phantom("inclusions:seed=3")(xy), phantom("inclusions:seed=3")(xy)
    assert np.array_equal(a, b) and np.all(a > 0)
    disk_xy = np.array([[0.0, 0.5], [0.0, 0.1]])  # the unit disk's box
    assert phantom("heart-lungs", box=((-1, -1), (1, 1)))(disk_xy).tolist() == [1.0, 0.5]
    for bad in ("heart", "heart-lungs:lungs=-1", "inclusions:colour=1", "inclusions:count=x"):
        with pytest.raises(ValueError):
            phantom(bad)


def test_noise_free_recovery_square():
    """Noise-free data on the inversion mesh (refine=1): TV-regularized L-BFGS lowers the error of the best
    constant by more than a third."""
    p = eit_problem("square", 12, "heart-lungs", patterns=8, refine=1)
    r = invert_eit(p.data, p.solver, truth=p.truth, reg="tv", weight=1e-7, maxiter=60)
    e0, e1 = r.history["rel_error"][0], r.history["rel_error"][-1]
    assert r.misfit < 0.1 * r.history["misfit"][0]
    assert e1 < 0.65 * e0 and e1 < 0.17, (e0, e1)


def test_disk_and_discrepancy_principle():
    p = eit_problem("disk", 8, "inclusions:seed=1", patterns=8, noise=0.05, refine=2)
    assert p.solver.nboundary > 16 and np.ptp(np.linalg.norm(p.solver.coordinates[p.solver.bdofs], axis=1)) < 1e-6
    r = invert_eit(p.data, p.solver, truth=p.truth, noise_norm=p.noise_norm, reg="tv", weight=1e-6, maxiter=100)
    assert r.stopped == "discrepancy" and r.misfit <= r.target + 1e-12


def test_transfer_is_exact_for_linear_densities():
    coarse, fine = (EITSolver(meshes.unit_square(k), patterns=2) for k in (4, 8))
    density = np.vstack([np.cos(2 * np.pi * fine.t), 1 + 0 * fine.t])  # piecewise linear in t on the fine mesh
    out = transfer_dtn(density * fine.boundary_mass, fine, coarse)
    expect = np.vstack([np.interp(coarse.t, fine.t, density[0], period=1.0), np.ones(coarse.nboundary)])
    assert np.allclose(out / coarse.boundary_mass, expect)


def test_bad_inputs(small):
    with pytest.raises(ValueError, match=r"expected \(K, 24\)"):
        EITSolver(meshes.unit_square(6), patterns=np.ones((3, 5)))
    with pytest.raises(ValueError, match="positive integer"):
        EITSolver(meshes.unit_square(6), patterns=0)
    with pytest.raises(ValueError, match=r"expected \(4, 24\)"):
        invert_eit(np.ones((4, 23)), small)
    with pytest.raises(ValueError, match="non-finite"):
        invert_eit(np.full((4, 24), np.nan), small)
    with pytest.raises(ValueError, match="non-negative"):
        invert_eit(np.ones((4, 24)), small, noise_level=-0.01)
    with pytest.raises(ValueError, match="non-negative"):
        eit_problem("square", 4, noise=-0.1)
    with pytest.raises(ValueError, match="unknown EIT domain"):
        eit_problem("triangle", 4)
    with pytest.raises(ValueError, match="expected \\(49,\\)"):
        eit_forward(torch.ones(7, dtype=torch.float64), small)
    with pytest.raises(ValueError, match="positive"):
        small.forward(-np.ones(small.ndofs))


def test_cli_invert_eit(tmp_path, capsys):
    from hybrid.cli import main
    from solvers.data.generate import generate

    data = tmp_path / "eit.h5"
    generate("eit", samples=2, n=8, out=data, params={"patterns": 4}, progress=False)
    out = tmp_path / "inv"
    assert main(["invert", "eit", "--data", str(data), "--sample", "1", "--noise", "0", "--maxiter", "20",
                 "--out", str(out), "--no-progress"]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["patterns"] == 4 and s["n"] == 8 and s["reg"] == "tv"
    assert s["rel_l2_coeff"] < s["rel_l2_coeff_initial"]
    assert (out / "coefficient.png").stat().st_size > 0 and (out / "misfit.png").stat().st_size > 0
    out2 = tmp_path / "disk"
    assert main(["invert", "eit", "--domain", "disk", "--n", "6", "--patterns", "4", "--noise", "0.05",
                 "--maxiter", "10", "--out", str(out2), "--no-progress"]) == 0
    assert json.loads((out2 / "summary.json").read_text())["domain"] == "disk"
    capsys.readouterr()
    assert main(["invert", "eit", "--noise", "-0.1", "--out", str(out)]) == 2
    assert "non-negative" in capsys.readouterr().err
    assert main(["invert", "eit", "--data", str(tmp_path / "missing.h5"), "--out", str(out)]) == 2
    assert main(["invert", "eit", "--data", str(data), "--sample", "5", "--out", str(out)]) == 2
    assert "samples 0..1" in capsys.readouterr().err


def test_example_eit_nio(tmp_path):
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import eit_nio
    finally:
        sys.path.pop(0)
    torch.set_num_threads(1)
    s = eit_nio.main(n=8, samples=60, patterns=6, epochs=8, noise=0.0, maxiter=20, workdir=tmp_path,
                     out=tmp_path / "eit.png")
    assert s["train_loss_last"] < s["train_loss_first"]
    assert s["errors"]["adjoint"] < 0.9 * s["constant_error"]
    # the hybrid starts at the network's estimate and never ends with a worse data fit
    assert s["misfits"]["nio+adjoint"] <= s["misfits"]["nio"] + 1e-12
    assert all(np.isfinite(v) for v in s["errors"].values())
    assert (tmp_path / "eit.png").stat().st_size > 0 and (tmp_path / "eit.json").exists()


def test_bench_eit_rows():
    from hybrid.bench.inverse import run

    rows = run(16, 1, coefficients=("eit-disk-inclusions",), noises=(0.0, 0.1), maxiter=5, log=None)
    assert [r["noise"] for r in rows] == [0.0, 0.1] and all(r["problem"] == "eit" and r["n"] == 8 for r in rows)
    assert rows[0]["rel_l2_coeff"] <= rows[0]["rel_l2_coeff_initial"] and rows[0]["data_refine"] == 1
    assert rows[1]["stopped"] == ["discrepancy"]  # 10% noise hides the inclusions: the constant fits
    with pytest.raises(ValueError, match="eit-inclusions"):
        run(16, 1, coefficients=("eit-circles",))
