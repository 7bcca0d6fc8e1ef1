"""The command line, the demo, the benchmark command, MPI runs, and the examples (at small sizes)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hybrid.cli import main

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_solve_json(tmp_path):
    out = tmp_path / "s.json"
    assert main(["solve", "darcy", "--n", "16", "--coefficient", "two-phase:seed=2", "--json", str(out),
                 "--out", str(tmp_path / "u.vtu")]) == 0
    s = json.loads(out.read_text())
    assert s["dofs"] == 289 and s["converged"] and s["rel_residual"] < 1e-8 and s["iterations"] < 20
    assert (tmp_path / "u.vtu").exists()


def test_solve_unknown_boundary_is_a_clear_error(capsys):
    assert main(["solve", "poisson", "--n", "4", "--bc", "inlet=1"]) == 2
    err = capsys.readouterr().err
    assert "unknown boundary name 'inlet'" in err and "bottom, left, right, top" in err


def test_solve_unknown_field_spec(capsys):
    assert main(["solve", "darcy", "--n", "4", "--coefficient", "three-phase"]) == 2
    assert "unknown field 'three-phase'" in capsys.readouterr().err


def test_solve_gmsh_mesh_with_named_bcs(tmp_path):
    """Laplace on a plate with a hole: u = 1 on the hole, 0 outside; max principle gives max u = 1."""
    from conftest import make_plate_with_hole

    path = make_plate_with_hole(tmp_path / "plate.msh")
    out = tmp_path / "s.json"
    assert main(["solve", "poisson", "--mesh", str(path), "--f", "0", "--bc", "hole=1", "--bc", "outer=0",
                 "--json", str(out)]) == 0
    s = json.loads(out.read_text())
    assert s["converged"] and s["u_max_abs"] == pytest.approx(1.0, abs=1e-6)


def test_demo_small(tmp_path, capsys):
    assert main(["demo", "--n", "32", "--out", str(tmp_path), "--samples", "60", "--train-n", "16",
                 "--epochs", "25"]) == 0
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["dofs"] == 33 * 33 and s["rel_residual"] < 1e-8 and 3 < s["iterations"] < 25
    assert (tmp_path / "darcy.png").stat().st_size > 10_000
    learning = s["learning"]
    # the learned MgNO must beat predicting zero (error 1) and the training set's per-pixel mean on the same
    # held-out samples (the demo's split: 20 test samples, the first 40 train/validate); about 0.13 vs 0.24
    from hybrid.data import FieldDataset
    from hybrid.training import TrainConfig, relative_l2, split_indices

    train, _, test = split_indices(60, TrainConfig(n_train=40, n_test=20))
    _, y = FieldDataset(tmp_path / "darcy16.h5", ("coefficient",), ("solution",)).arrays()
    mean_error = float(relative_l2(y[train].mean(0, keepdim=True).expand_as(y[test]), y[test]).mean())
    assert learning["epochs_run"] == 25 and 0.1 < mean_error < 0.9
    assert learning["test_rel_l2_mean"] < 0.8 * mean_error, (learning, mean_error)
    assert (tmp_path / "mgno" / "best.pt").exists()
    hybrid = s["hybrid"]  # part 3: learned beside classical on an unseen coefficient, and the loop
    assert {"pyamg-rs+cg", "pyamg-sa+cg", "petsc-gamg+cg", "learned-amg+cg"} <= set(hybrid["single"])
    assert all(r["converged"] and r["rel_residual"] <= 1e-8 for r in hybrid["single"].values())
    assert all(r["converged"] for r in hybrid["loop"].values()) and "rebuild" in hybrid["loop"]
    out = capsys.readouterr().out
    assert "true relative residual" in out and "never seen in training" in out


def test_bench_solvers_tiny(tmp_path):
    out = tmp_path / "b.json"
    assert main(["bench", "solvers", "--sizes", "16", "--problems", "poisson,helmholtz", "--repeats", "1",
                 "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["suite"] == "solvers" and doc["machine"]["cores"] >= 1 and doc["versions"]["dolfinx"]
    recs = doc["records"]
    assert {r["problem"] for r in recs} == {"poisson", "helmholtz"}
    for r in recs:
        assert r["spmv_s"] > 0 and r["spmv_equiv"] == pytest.approx(r["total_s"] / r["spmv_s"])
    direct = [r for r in recs if r["method"] == "direct-superlu"]
    assert all(r["converged"] and r["rel_residual"] < 1e-10 for r in direct)


@pytest.mark.mpi
def test_mpi_two_processes_match_serial(tmp_path):
    mpiexec = BIN / "mpiexec"
    if not mpiexec.exists():
        mpiexec = shutil.which("mpiexec")
    assert mpiexec, "mpiexec not found (it ships with the dolfinx-solver-real wheel)"
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    results = {}
    for nproc in (1, 2):
        out = tmp_path / f"s{nproc}.json"
        cmd = [str(mpiexec), "-n", str(nproc), str(BIN / "hybrid"), "solve", "darcy", "--n", "48",
               "--coefficient", "two-phase", "--method", "petsc-gamg+cg", "--rtol", "1e-11",
               "--json", str(out), "--out", str(tmp_path / f"u{nproc}.xdmf")]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        results[nproc] = json.loads(out.read_text())
    assert results[2]["processes"] == 2 and results[1]["dofs"] == results[2]["dofs"]
    assert results[2]["converged"] and results[2]["rel_residual"] < 1e-10
    assert results[2]["u_l2"] == pytest.approx(results[1]["u_l2"], rel=1e-9)
    assert results[2]["u_max_abs"] == pytest.approx(results[1]["u_max_abs"], rel=1e-8)


def test_example_named_boundaries():
    """Flux balance (f = 0): the inflow through the window (length 0.5, flux a du/dn = 1, so 0.5) leaves
    through the right wall (u = 0) and the top (Robin, outflow 2 u). The right wall's outflow is the
    reaction of the unconstrained system (assembled from the problem's forms without Dirichlet rows) summed
    over its dofs; the top's is the integral of 2 u; both must add up to the analytic 0.5."""
    import dolfinx.fem as fem
    import numpy as np
    import ufl

    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import named_boundaries
    finally:
        sys.path.pop(0)
    system, sol = named_boundaries.main(n=32)
    assert sol.converged and sol.residual < 1e-10
    assert "window" in system.mesh.boundaries
    mesh, ds = system.mesh, system.mesh.ds
    one = fem.Constant(mesh.mesh, 1.0)
    assert fem.assemble_scalar(fem.form(one * ds(mesh.tag("window")))) == pytest.approx(0.5, abs=1e-12)
    a_form, L_form = system.forms
    K = fem.assemble_matrix(a_form).to_scipy()          # no Dirichlet elimination: the full operator
    r = K @ sol.x - fem.assemble_vector(L_form).array   # zero on free dofs, the reaction on constrained ones
    free = np.setdiff1d(np.arange(len(sol.x)), system.constrained)
    right = fem.locate_dofs_topological(system.space, 1, mesh.facets("right"))
    assert np.array_equal(np.sort(right), np.sort(system.constrained))
    assert np.abs(r[free]).max() < 1e-9
    uh = system.function(sol.x)
    out_right = -float(r[right].sum())
    out_top = fem.assemble_scalar(fem.form(2.0 * uh * ds(mesh.tag("top"))))
    assert out_right > 0.1 and out_top > 0.01 and sol.x.min() > -1e-12  # heat leaves through both sides
    assert out_right + out_top == pytest.approx(0.5, abs=1e-8)
    # the same outflow from the flux -a du/dn on the right wall (first order in h, a = 10 above y = 1/2)
    X, normal = ufl.SpatialCoordinate(mesh.mesh), ufl.FacetNormal(mesh.mesh)
    a = 1 + 9 * ufl.conditional(ufl.gt(X[1], 0.5), 1.0, 0.0)
    direct = fem.assemble_scalar(fem.form(-a * ufl.dot(ufl.grad(uh), normal) * ds(mesh.tag("right"))))
    assert direct == pytest.approx(out_right, rel=0.1)


def test_example_helmholtz():
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import helmholtz_direct
    finally:
        sys.path.pop(0)
    assert helmholtz_direct.main(n=64, k=10.0) < 2e-2
