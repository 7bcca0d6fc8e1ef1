"""``hybrid bench hybrid`` at tiny size: classical rows beside the learned ones, loop rows, the figure."""

import json

import numpy as np
import pytest

pytest.importorskip("torch")


def test_bench_hybrid_tiny(tmp_path):
    from hybrid.bench import hybrid as H

    recs = H.run([24], repeats=1, model=None, loop_n=24, loop_solves=6, plot=tmp_path / "conv.png", log=lambda *a: None)
    single = [r for r in recs if r["problem"] != "loop-sweep"]
    loop = {r["strategy"]: r for r in recs if r["problem"] == "loop-sweep"}
    assert {r["method"] for r in single} == set(H.CLASSICAL)
    for r in single:
        assert r["converged"] and r["rel_residual"] <= 1e-8 and r["spmv_equiv"] > 0
    assert set(loop) == set(H.LOOP_STRATEGIES)
    assert all(r["converged"] and r["solves"] == 6 for r in loop.values())
    assert loop["rebuild"]["rebuilds"] == 6 and loop["refresh"]["rebuilds"] == 1
    assert loop["rebuild"]["vs_rebuild"] == pytest.approx(1.0)
    assert (tmp_path / "conv.png").stat().st_size > 10_000
    json.dumps(recs)  # serializable


def test_history_is_the_true_residual():
    import meshes
    import solvers
    from hybrid.bench import hybrid as H
    from solvers.linear import method

    system = solvers.Darcy(meshes.unit_square(16), a=2.0).assemble()
    h = H.history(system, lambda: method("pyamg-rs+cg"))
    assert h["residual"][0] == 1.0 and h["residual"][-1] <= 1e-8
    assert np.all(np.diff(h["seconds"]) >= 0)


def test_learned_method_needs_a_model():
    from hybrid.precond.methods import learned_method

    with pytest.raises(ValueError, match="needs a trained model: pass --model"):
        learned_method("learned-amg+cg", None)
    with pytest.raises(ValueError, match="unknown learned method 'magic'"):
        learned_method("magic", "x.pt")


MODEL = __import__("pathlib").Path(__file__).resolve().parents[1] / "bench" / "models" / "learned_amg.pt"


def test_cli_learned_solve_and_bench(tmp_path):
    """`hybrid solve --method learned-amg+cg --model` (the issue's Done-when) and `hybrid bench hybrid`."""
    from hybrid.cli import main

    out = tmp_path / "s.json"
    assert main(["solve", "darcy", "--n", "32", "--coefficient", "contrast:seed=9", "--method", "learned-amg+cg",
                 "--model", str(MODEL), "--json", str(out)]) == 0
    s = json.loads(out.read_text())
    assert s["converged"] and s["rel_residual"] <= 1e-8 and s["method"] == "learned-amg+cg"
    assert s["model"] == str(MODEL)  # the summary names the network it ran
    assert main(["solve", "darcy", "--n", "8", "--method", "learned-amg+cg"]) == 2  # no --model
    assert main(["solve", "darcy", "--n", "8", "--method", "pyamg-rs+cg", "--model", str(MODEL)]) == 2
    bench = tmp_path / "h.json"
    assert main(["bench", "hybrid", "--sizes", "24", "--repeats", "1", "--loop-n", "24", "--loop-solves", "4",
                 "--methods", "learned-amg+cg", "--json", str(bench)]) == 0
    doc = json.loads(bench.read_text())
    methods = {r["method"] for r in doc["records"]}
    assert {"pyamg-rs+cg", "pyamg-rs2+cg", "petsc-gamg+cg", "learned-amg+cg",
            "learned-amg+refresh+projection"} <= methods
    learned = [r for r in doc["records"] if r["method"] == "learned-amg+cg"]
    assert all(r["converged"] and r["infer_s"] > 0 and r["model"] for r in learned)
    assert (tmp_path / "h-convergence.png").exists()
