"""examples/mesh_learned.py at small size: a gmsh file read with its boundary names, nodal Darcy data, AlgebraicMgNO
trained, an unseen coefficient solved with named Dirichlet conditions and predicted, the fields written and read
back (the meshes issue's "done when": read a gmsh file, solve classically and with a learned operator, write)."""

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from scipy.spatial import cKDTree

import meshes

ROOT = Path(__file__).resolve().parents[1]
FIELDS = {"coefficient", "fem", "learned", "difference"}


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import mesh_learned
    finally:
        sys.path.remove(str(ROOT / "examples"))
    out = tmp_path_factory.mktemp("mesh_learned")
    return out, mesh_learned.main(h=0.2, samples=60, epochs=30, out=out)


def rel_l2(mass, pred, true):
    return float(np.sqrt(mass @ (pred - true) ** 2 / (mass @ true ** 2)))


def test_files_exist_and_read_back(example):
    out, summary = example
    for name in ("l_shape.msh", "darcy.h5", "run/best.pt", "result.xdmf", "result.h5", "result.vtu", "result.png",
                 "summary.json"):
        assert (out / name).stat().st_size > 100, name
    assert json.loads((out / "summary.json").read_text())["rel_l2"] == pytest.approx(summary["rel_l2"])
    assert sorted(meshes.read(out / "l_shape.msh").boundaries) == ["notch", "outer"]
    values = {}
    for suffix in (".xdmf", ".vtu"):
        mesh = meshes.read(out / f"result{suffix}")
        assert sorted(mesh.boundaries) == ["notch", "outer"] and mesh.num_vertices == summary["nodes"]
        fields = meshes.read_fields(out / f"result{suffix}", mesh)
        assert set(fields) == FIELDS
        x = fields["fem"].function_space.tabulate_dof_coordinates()[:, :2]
        order = np.lexsort(x.T)
        values[suffix] = {k: f.x.array[order] for k, f in fields.items()}
    for k in FIELDS:  # the two formats hold the same nodal values
        assert np.allclose(values[".xdmf"][k], values[".vtu"][k], rtol=1e-6, atol=1e-12), k


def test_prediction_beats_zero_and_mean_and_fem_satisfies_the_boundary_condition(example):
    import dolfinx.fem as fem

    from hybrid.training.checkpoint import read_payload
    from hybrid.training.nodal import lumped_mass
    from hybrid.training.split import validation_count

    out, summary = example
    mesh = meshes.read(out / "result.xdmf")
    fields = meshes.read_fields(out / "result.xdmf", mesh)
    V = fields["fem"].function_space
    u, pred, a = fields["fem"].x.array, fields["learned"].x.array, fields["coefficient"].x.array
    assert np.allclose(fields["difference"].x.array, pred - u, atol=1e-12)
    assert set(np.round(a, 12)) <= {3.0, 12.0} and len(set(np.round(a, 12))) == 2  # two-phase, nodal
    # the dataset's nodes, matched to the written mesh's dofs by position
    with h5py.File(out / "darcy.h5", "r") as f:
        coords, cells = f["mesh/coordinates"][...][:, :2], f["mesh/cells"][...]
        solutions = f["solution"][...]
    dist, idx = cKDTree(coords).query(V.tabulate_dof_coordinates()[:, :2])
    assert dist.max() < 1e-12 and len(set(idx)) == len(idx) == len(coords)
    mass = lumped_mass(coords, cells)[idx]
    err = rel_l2(mass, pred, u)
    assert np.isfinite(err) and err == pytest.approx(summary["rel_l2"], rel=1e-6)
    # predicting zero: error 1; predicting the mean of the training solutions (the split the run trained on)
    cfg = read_payload(out / "run" / "best.pt")["train"]["config"]
    n_fit = cfg["n_train"] - validation_count(cfg["n_train"], cfg["val_fraction"])
    mean = solutions[:n_fit].mean(0)[idx]
    err_zero, err_mean = rel_l2(mass, 0 * u, u), rel_l2(mass, mean, u)
    assert err < err_zero and err < 0.7 * err_mean, (err, err_zero, err_mean)  # measured: 0.081, 1, 0.243
    # the classical solution: u = 0 on every named boundary's nodes, positive inside (f = 1, a > 0)
    for name in ("notch", "outer"):
        dofs = fem.locate_dofs_topological(V, 1, mesh.facets(name))
        assert len(dofs) > 3 and np.abs(u[dofs]).max() < 1e-12, name
        assert np.abs(pred[dofs]).max() < 1e-6, name  # AlgebraicMgNO sets its Dirichlet nodes to zero
    assert u.max() > 0 and u.min() > -1e-12


def test_classical_solve_matches_the_data_generator(example):
    """The unseen sample solved with Darcy + Dirichlet on the named boundaries is what `hybrid generate` would
    store as that sample: same coefficient, same solution (up to the linear solvers' tolerances)."""
    from solvers.data.generators import make_generator

    out, summary = example
    gen = make_generator("darcy", 0, 0, {"mesh": str(out / "l_shape.msh")})
    sample = gen.sample(summary["unseen_index"])
    mesh = meshes.read(out / "result.xdmf")
    fields = meshes.read_fields(out / "result.xdmf", mesh)
    dist, idx = cKDTree(gen.view.points.T).query(fields["fem"].function_space.tabulate_dof_coordinates()[:, :2])
    assert dist.max() < 1e-12
    assert np.array_equal(sample["coefficient"][idx], fields["coefficient"].x.array)
    u = fields["fem"].x.array
    assert np.abs(sample["solution"][idx] - u).max() < 1e-7 * np.abs(u).max()


def test_command_line(tmp_path):
    """``python examples/mesh_learned.py h samples epochs`` writes into ./out/mesh_learned."""
    run = subprocess.run([sys.executable, str(ROOT / "examples" / "mesh_learned.py"), "0.3", "30", "2"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "relative L2 error of the prediction" in run.stdout and "Info" not in run.stdout + run.stderr
    summary = json.loads((tmp_path / "out" / "mesh_learned" / "summary.json").read_text())
    assert (summary["h"], summary["samples"], summary["epochs"]) == (0.3, 30, 2) and np.isfinite(summary["rel_l2"])
