"""Data generation: correctness against an independent solve, determinism across workers and MPI,
resume after interruption (Ctrl-C and kill -9), refusal of mismatched files, NaN reporting."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

import meshes
import solvers
from solvers.data import DatasetMismatch, GenerationError, generate, make_generator
from solvers.data.store import parts_dir
from solvers.linear import Direct, LinearProblem, solve

BIN = Path(sys.executable).parent


def read(path, name="solution"):
    with h5py.File(path, "r") as f:
        return f[name][...], f["complete"][...]


def test_darcy_sample_matches_independent_solve():
    gen = make_generator("darcy", 24, seed=5)
    out = gen.sample(3)
    system = solvers.Darcy(meshes.unit_square(24), a=out["coefficient"], f=1.0).assemble()
    x = solve(LinearProblem(system.A, system.b), Direct()).x
    ref = meshes.GridView(system.space).to_grid(x)
    assert np.abs(out["solution"] - ref).max() <= 1e-12 * np.abs(ref).max()
    assert set(np.unique(out["coefficient"])) == {3.0, 12.0}


@pytest.mark.parametrize("problem", ["poisson", "darcy-rhs"])
def test_rhs_problems_solve_the_pde(problem):
    gen = make_generator(problem, 16, seed=1)
    out = gen.sample(2)
    a = gen.a_grid if problem == "darcy-rhs" else 1.0
    f = gen.view.function(out["forcing"])
    system = solvers.Darcy(gen.mesh, a=a, f=f).assemble()
    x = solve(LinearProblem(system.A, system.b), Direct()).x
    np.testing.assert_allclose(out["solution"], gen.view.to_grid(x), atol=1e-12 * np.abs(x).max())


def test_amg_and_direct_agree():
    a = make_generator("darcy", 32, 0, {"solver": "direct"}).sample(4)["solution"]
    b = make_generator("darcy", 32, 0, {"solver": "amg"}).sample(4)["solution"]
    assert np.abs(a - b).max() < 1e-8 * np.abs(a).max()


def test_workers_give_identical_arrays(tmp_path):
    s1 = generate("darcy", 40, 16, tmp_path / "one.h5", seed=2, block=8, progress=False)
    s2 = generate("darcy", 40, 16, tmp_path / "two.h5", seed=2, block=8, workers=2, progress=False)
    assert s1["generated"] == s2["generated"] == 40
    for name in ("coefficient", "solution"):
        a, ca = read(tmp_path / "one.h5", name)
        b, cb = read(tmp_path / "two.h5", name)
        assert np.array_equal(a, b) and ca.all() and cb.all()
    assert not parts_dir(tmp_path / "one.h5").exists()
    with h5py.File(tmp_path / "one.h5") as f:
        assert f.attrs["problem"] == "darcy" and int(f.attrs["seed"]) == 2 and f["solution"].chunks == (1, 17, 17)
        assert f["mesh/coordinates"].shape == (17 * 17, 2) and "petsc" in json.loads(f.attrs["versions"])


@pytest.mark.mpi
def test_mpiexec_gives_identical_arrays(tmp_path):
    generate("darcy", 24, 16, tmp_path / "one.h5", seed=4, block=4, progress=False)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([str(BIN / "mpiexec"), "-n", "2", str(BIN / "hybrid"), "generate", "darcy", "--samples",
                           "24", "--n", "16", "--seed", "4", "--block", "4", "--out", str(tmp_path / "mpi.h5"),
                           "--no-progress"], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    assert np.array_equal(read(tmp_path / "one.h5")[0], read(tmp_path / "mpi.h5")[0])


def test_ctrl_c_leaves_valid_file_and_resume_completes(tmp_path, monkeypatch):
    path = tmp_path / "d.h5"
    ref_path = tmp_path / "ref.h5"
    generate("darcy", 30, 16, ref_path, block=5, progress=False)
    from solvers.data import generators

    original = generators.DarcyData.sample

    def interrupted(self, index):
        if index == 17:
            raise KeyboardInterrupt
        return original(self, index)

    monkeypatch.setattr(generators.DarcyData, "sample", interrupted)
    with pytest.raises(KeyboardInterrupt):
        generate("darcy", 30, 16, path, block=5, progress=False)
    # the interrupted file is valid: blocks 0-2 complete and readable, the rest NaN
    u, complete = read(path)
    assert complete.tolist() == [True] * 15 + [False] * 15
    ref, _ = read(ref_path)
    assert np.array_equal(u[:15], ref[:15]) and np.isnan(u[15:]).all()
    monkeypatch.setattr(generators.DarcyData, "sample", original)
    s = generate("darcy", 30, 16, path, block=5, progress=False)
    assert s["generated"] == 15  # only the missing samples
    u, complete = read(path)
    assert complete.all() and np.array_equal(u, ref)


def test_kill_9_loses_nothing_written(tmp_path):
    path = tmp_path / "k.h5"
    cmd = [str(BIN / "hybrid"), "generate", "darcy", "--samples", "3000", "--n", "48", "--block", "10",
           "--out", str(path), "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        time.sleep(0.05)
        try:
            if read(path)[1].sum() >= 20:  # the index (replaced atomically) lists finished blocks
                break
        except (OSError, KeyError):
            pass  # not created yet
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    u, complete = read(path)  # a valid file after kill -9
    done = int(complete.sum())
    assert 20 <= done < 3000
    assert np.isfinite(u[complete]).all()
    assert not list(parts_dir(path).glob("block_*.h5.tmp"))  # temporary names never count as shards
    gen = make_generator("darcy", 48, 0)
    first = np.flatnonzero(complete)[0]
    assert np.array_equal(u[first], gen.sample(int(first))["solution"])


def test_mismatched_parameters_refused(tmp_path):
    path = tmp_path / "m.h5"
    generate("darcy", 8, 8, path, block=4, progress=False)
    with pytest.raises(DatasetMismatch, match="seed: file 0 vs now 1"):
        generate("darcy", 8, 8, path, seed=1, block=4, progress=False)
    with pytest.raises(DatasetMismatch, match="params"):
        generate("darcy", 8, 8, path, params={"high": 20.0}, block=4, progress=False)
    s = generate("darcy", 8, 8, path, block=4, progress=False)
    assert s.get("note") == "already complete"
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = 1
    with pytest.raises(DatasetMismatch, match="not a hybrid-dataset"):
        generate("darcy", 8, 8, foreign, progress=False)


def test_non_finite_sample_names_index_and_seed(tmp_path):
    with pytest.raises(GenerationError, match=r"sample 0 \(seed 3\).*non-finite"):
        generate("darcy", 4, 8, tmp_path / "nan.h5", seed=3, params={"coefficient": "log-normal", "sigma": 1e4},
                 progress=False)


def test_unknown_problem_and_parameter():
    with pytest.raises(ValueError, match="unknown problem 'stokes'"):
        make_generator("stokes", 8, 0)
    with pytest.raises(ValueError, match=r"unknown parameters \['hgih'\]"):
        make_generator("darcy", 8, 0, {"hgih": 3})


def test_torch_dataset_and_normalizer(tmp_path):
    torch = pytest.importorskip("torch")
    from hybrid.data import DataProcessor, FieldDataset

    path = tmp_path / "t.h5"
    generate("darcy", 12, 8, path, block=4, progress=False)
    ds = FieldDataset(path, indices=range(2, 10))
    assert len(ds) == 8
    x, y = ds[0]
    assert x.shape == (1, 9, 9) and y.dtype == torch.float32
    u, _ = read(path)
    np.testing.assert_allclose(y[0].numpy(), u[2], rtol=1e-6)
    X, Y = ds.arrays()
    proc = DataProcessor(1, 1).fit(X, Y)
    xn, yn = proc.preprocess(X, Y)
    assert abs(float(yn.mean())) < 1e-5 and abs(float(yn.std()) - 1) < 1e-3
    torch.testing.assert_close(proc.postprocess(yn), Y, rtol=1e-5, atol=1e-7)
    restored = DataProcessor(1, 1)
    restored.load_state_dict(proc.state_dict())
    torch.testing.assert_close(restored.postprocess(yn), Y, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="no field 'permeability'"):
        FieldDataset(path, inputs=("permeability",))


def test_helmholtz_data_matches_problem_class_for_constant_speed():
    gen = make_generator("helmholtz", 24, 0, {"sigma": 0.0, "omega": 15.0})
    out = gen.sample(0)
    assert np.allclose(out["wave_speed"], 1.0)
    bump = lambda x: np.exp(-((x[0] - 0.5) ** 2 + (x[1] - 0.5) ** 2) / (2 * 0.05**2))  # noqa: E731
    system = solvers.Helmholtz(gen.mesh, k=15.0, f=bump, absorbing=list(gen.mesh.boundaries), bcs=[]).assemble()
    x = solve(LinearProblem(system.A, system.b), Direct()).x
    ref = gen.view.to_grid(x)
    assert np.abs(out["solution_re"] + 1j * out["solution_im"] - ref).max() < 1e-12 * np.abs(ref).max()


def test_eit_dtn_is_symmetric_and_conservative():
    gen = make_generator("eit", 24, 1, {"patterns": 8})
    out = gen.sample(3)
    assert out["dtn"].shape == (8, 4 * 24)
    D = out["dtn"] @ gen.patterns.T  # <g_l, Lambda g_m>: the DtN map is self-adjoint
    assert np.abs(D - D.T).max() < 1e-10 * np.abs(D).max()
    assert np.abs(out["dtn"].sum(axis=1)).max() < 1e-10 * np.abs(out["dtn"]).max()  # no net current
    assert np.all(np.diag(D) > 0)  # energy: <g, Lambda g> = int sigma |grad u|^2 > 0


def test_generate_on_an_unstructured_mesh(tmp_path):
    """A gmsh plate with a hole: nodal arrays, u = 0 on both named boundaries, checked against Darcy."""
    from conftest import make_plate_with_hole

    msh = make_plate_with_hole(tmp_path / "plate.msh", h=0.08)
    out = tmp_path / "plate.h5"
    generate("darcy", 6, 0, out, params={"mesh": str(msh)}, block=3, progress=False)
    with h5py.File(out) as f:
        coeff, sol = f["coefficient"][4], f["solution"][4]
        coords = f["mesh/coordinates"][...]
        assert "grid_of_dof" not in f["mesh"] and sol.shape == (coords.shape[0],)
        assert "plate.msh" in f.attrs["mesh"]
    mesh = meshes.read(msh)
    system = solvers.Darcy(mesh, a=coeff, f=1.0).assemble()
    np.testing.assert_allclose(system.space.tabulate_dof_coordinates()[:, :2], coords)
    x = solve(LinearProblem(system.A, system.b), Direct()).x
    assert np.abs(x - sol).max() <= 1e-12 * np.abs(x).max()
    assert set(np.unique(coeff)) <= {3.0, 12.0}
