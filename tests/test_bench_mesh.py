"""The mesh rows of ``hybrid bench operators`` and ``hybrid bench hybrid`` (``--domains``), end to end through the
command line at tiny size (``--quick``: coarse meshes, 60 samples), and the two scripts that wrap them."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("dolfinx")
pytest.importorskip("gmsh")

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def hybrid(*args):
    out = subprocess.run([sys.executable, "-m", "hybrid.cli", *map(str, args)], cwd=ROOT, env=ENV,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    return out.stdout


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("mesh")


def test_bench_operators_domains(data_dir):
    """A record per model, each with a test error well below predicting the training mean (and zero)."""
    import torch

    from hybrid.bench import mesh_operators as M
    from hybrid.training.nodal import nodal_relative_l2

    out = data_dir / "operators.json"
    hybrid("bench", "operators", "--domains", "l-shape", "--quick", "--data-dir", data_dir, "--json", out)
    doc = json.loads(out.read_text())
    assert doc["suite"] == "algebraic-mgno" and "--domains l-shape" in doc["command"]
    records = {r["model"]: r for r in doc["records"]}
    assert set(records) == set(M.DEFAULT_MODELS) and len(doc["records"]) == len(M.DEFAULT_MODELS)
    # the same split as the bench: the first 40 samples (36 training), the last 10 for testing
    d = M.domain_data(M.load_bundle(data_dir / "bundle-quick.npz"), "l-shape", 40, 10)
    u, tr, te = d["u"], d["tr"], d["te"]
    mean = nodal_relative_l2(u[tr].mean(0, keepdim=True).expand(len(te), -1, -1), u[te], d["mass"]).mean().item()
    zero = nodal_relative_l2(torch.zeros_like(u[te]), u[te], d["mass"]).mean().item()
    assert 0.1 < mean < zero
    for label, r in records.items():
        assert r["domain"] == "l-shape" and r["n_train"] == 36 and r["n_test"] == 10 and r["params"] > 0
        assert np.isfinite(r["rel_l2_test"]) and r["rel_l2_test"] < 0.9 * mean, (label, r["rel_l2_test"], mean)


def test_bench_hybrid_domains(data_dir):
    """Every classical method and the safeguarded learned V-cycle converge to a true residual of 1e-8."""
    from hybrid.bench import mesh_precond as P

    out = data_dir / "precond.json"
    hybrid("bench", "hybrid", "--domains", "l-shape", "--quick", "--data-dir", data_dir, "--json", out)
    doc = json.loads(out.read_text())
    assert doc["suite"] == "algebraic-mgno-precond"
    records = {r["method"]: r for r in doc["records"]}
    assert set(records) == set(P.CLASSICAL) | set(P.LEARNED)
    for name in P.CLASSICAL:
        assert records[name]["converged"] and records[name]["rel_residual"] <= 1e-8, records[name]
    guarded = records["safeguarded-algebraic-vcycle+fgmres"]
    assert guarded["converged"] and guarded["rel_residual"] <= 1e-8
    assert guarded["accepted"] + guarded["rejected"] > 0 and guarded["matrices"] == 2


def test_scripts_wrap_the_package(data_dir):
    """scripts/algebraic_mgno_comparison.py keeps its arguments (README) and calls the package."""
    bundle = data_dir / "bundle-quick.npz"
    if not bundle.exists():
        from hybrid.bench.mesh_operators import ensure_bundle

        ensure_bundle(data_dir, ["l-shape"], "quick")
    out = data_dir / "script.json"
    subprocess.run([sys.executable, "scripts/algebraic_mgno_comparison.py", "run", "--bundle", bundle, "--domains",
                    "l-shape", "--models", "algebraic-mgno", "--n-train", "20", "--n-test", "5", "--epochs", "1",
                    "--threads", "1", "--json", out], cwd=ROOT, env=ENV, check=True, capture_output=True)
    doc = json.loads(out.read_text())
    assert doc["suite"] == "algebraic-mgno" and [r["model"] for r in doc["records"]] == ["algebraic-mgno"]
    assert np.isfinite(doc["records"][0]["rel_l2_test"])


def test_domains_errors(tmp_path, capsys):
    from hybrid.cli import main

    assert main(["bench", "solvers", "--domains", "l-shape", "--json", str(tmp_path / "x.json")]) == 2
    assert "--domains: only for operators and hybrid" in capsys.readouterr().err
    assert main(["bench", "operators", "--domains", "square", "--data-dir", str(tmp_path),
                 "--json", str(tmp_path / "x.json")]) == 2
    assert "mesh domains are l-shape, plate-holes" in capsys.readouterr().err
    assert main(["bench", "operators", "--domains", "l-shape", "--models", "fno", "--data-dir", str(tmp_path),
                 "--json", str(tmp_path / "x.json")]) == 2
    assert "with --domains the models are" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()
