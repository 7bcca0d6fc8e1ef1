"""Issue 9, "From the command line" and the rest of item 10: every bad input gets a message about that
input (before any mesh, assembly or file), pure Neumann problems have one answer, Heat takes a cache."""

import numpy as np
import pytest

import meshes
import solvers
from hybrid.cli import main
from solvers import Neumann
from solvers.linear import AMG, CG, Direct, LinearProblem, PETScKSP, ReturnCode, init, solve


def cli(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def no_mesh(monkeypatch):
    """Building a mesh fails the test: the refusal must come before any work."""
    def boom(*a, **k):
        raise AssertionError("a mesh was built before the input was refused")
    monkeypatch.setattr(meshes, "unit_square", boom)
    monkeypatch.setattr(meshes, "read", boom)


# -- --bc ------------------------------------------------------------------------------------------------------
def test_explicit_dirichlet_kind(capsys, tmp_path):
    rc, out, err = cli(capsys, "solve", "poisson", "--n", 8, "--bc", "left=dirichlet:1", "--bc", "right=0",
                       "--json", tmp_path / "s.json")
    assert rc == 0, err
    import json
    assert json.loads((tmp_path / "s.json").read_text())["u_max_abs"] == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("spec, message", [
    ("left=neumann:abc", "--bc 'left=neumann:abc': the Neumann flux G 'abc' is not usable: unknown field 'abc'"),
    ("left=robin:1", "--bc 'left=robin:1': a Robin condition needs ALPHA and G: NAME=robin:ALPHA:G"),
    ("left=robin:x:1", "Robin ALPHA 'x' is not a number"),
    ("left=dirichlet:", "the Dirichlet value is missing"),
    ("left=neuman:1", "unknown condition 'neuman'; use dirichlet, neumann, robin or absorbing"),
    ("left=", "expected NAME=VALUE, NAME=dirichlet:VALUE"),
    ("left=absorbing", "only helmholtz has absorbing boundaries"),
])
def test_bad_bc_names_what_is_wrong(capsys, spec, message):
    rc, out, err = cli(capsys, "solve", "poisson", "--n", 4, "--bc", spec)
    assert rc == 2 and message in err, err
    assert "Traceback" not in err and "unknown field 'dirichlet'" not in err


def test_helmholtz_needs_k(capsys, no_mesh):
    rc, out, err = cli(capsys, "solve", "helmholtz", "--n", 8)
    assert rc == 2 and "--k is required for helmholtz" in err, err


@pytest.mark.parametrize("argv, message", [
    (["--out", "u.png"], "unknown format '.png' (use .xdmf, .vtu or .msh)"),
    (["--out", "{tmp}"], "it is a directory"),
    (["--n", "0"], "--n must be a positive integer, got 0"),
    (["--n", "100000"], "--n 100000: 1e+10 unknowns would need about 1e+05 GB of memory"),
])
def test_refused_before_any_work(capsys, tmp_path, no_mesh, argv, message):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    rc, out, err = cli(capsys, "solve", "darcy", *argv)
    assert rc == 2 and message in err, err
    assert "nx" not in err


def test_memory_estimate_names_the_machine():
    from solvers.limits import check_memory

    check_memory("--n 64", 65 ** 2, total=10**9)
    with pytest.raises(ValueError, match=r"--n 2000: 4e\+06 unknowns would need about 40 GB .* this machine has 8 GB"):
        check_memory("--n 2000", 2001 ** 2, total=8 * 10**9)


# -- generate -----------------------------------------------------------------------------------------------------
def test_generate_huge_samples_refused_with_disk_estimate(capsys, tmp_path):
    out = tmp_path / "d.h5"
    rc, _, err = cli(capsys, "generate", "darcy", "--samples", 10**12, "--n", 8, "--out", out, "--no-progress")
    assert rc == 2 and "the dataset would take about 1.3e+06 GB on disk" in err and "GB are free at" in err, err
    assert not out.exists() and not (tmp_path / "d.h5.parts").exists()


def test_generate_huge_n_refused_with_memory_estimate(capsys, tmp_path):
    rc, _, err = cli(capsys, "generate", "darcy", "--samples", 2, "--n", 100000, "--out", tmp_path / "d.h5")
    assert rc == 2 and "n=100000: 1e+10 unknowns would need about" in err, err


def test_generate_n_with_mesh_refused(capsys, tmp_path):
    from conftest import make_plate_with_hole

    msh = make_plate_with_hole(tmp_path / "plate.msh")
    rc, _, err = cli(capsys, "generate", "darcy", "--samples", 2, "--n", 32, "--mesh", msh, "--out", tmp_path / "d.h5")
    assert rc == 2 and "--n 32 does not apply with --mesh" in err, err
    from solvers.data import generate
    with pytest.raises(ValueError, match="n=32 does not apply to a mesh file"):
        generate("darcy", 2, 32, tmp_path / "e.h5", params={"mesh": str(msh)}, progress=False)


@pytest.mark.parametrize("argv, message", [
    (["generate", "darcy", "--samples", "0", "--out", "x.h5"], "--samples must be a positive integer, got 0"),
    (["generate", "darcy", "--samples", "2", "--n", "1", "--out", "x.h5"], "--n must be an integer >= 2, got 1"),
    (["generate", "darcy", "--samples", "2", "--param", "solver=lu", "--out", "x.h5"], "unknown solver 'lu'"),
    (["train", "mgno", "--data", "missing.h5", "--out", "run"], "missing.h5"),
    (["evaluate", "no-such-run", "--data", "missing.h5"], "no-such-run"),
    (["bench", "solvers", "--problems", "nope", "--sizes", "8", "--json", "b.json"], "unknown benchmark problem 'nope'"),
    (["bench", "solvers", "--report", "--json", "missing.json"], "missing.json"),
    (["solve", "elasticity", "--n", "4", "--f", "abc"], "elasticity takes a number"),
    (["solve", "convection-diffusion", "--n", "4", "--velocity", "a,b"], "--velocity 'a,b'"),
    (["solve", "darcy", "--n", "4", "--k", "3"], "--k applies to helmholtz only"),
])
def test_no_traceback_for_user_errors(capsys, tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    rc, _, err = cli(capsys, *argv)
    assert rc == 2 and message in err and "Traceback" not in err, err
    assert err.startswith(f"hybrid {argv[0]}: error: "), err


# -- pure Neumann ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def neumann():
    """-Laplace u = 1 with flux -1/4 on each side: sources and fluxes balance."""
    m = meshes.unit_square(32)
    return solvers.Poisson(m, f=1.0, bcs=[Neumann(n, -0.25) for n in m.boundaries]).assemble()


def test_pure_neumann_has_a_nullspace_and_one_answer(neumann):
    """Before: Success from all four with u_l2 0.289 / 0.336 / 0.298 / 0.289 (and RS broke down)."""
    assert neumann.nullspace is not None and np.allclose(neumann.nullspace * np.sqrt(len(neumann.b)), 1.0)
    xs = {}
    for name, alg in {"sa": CG(precond=AMG("sa")), "rs": CG(precond=AMG("rs")), "gamg": PETScKSP("cg", "gamg"),
                      "direct": Direct()}.items():
        sol = solve(LinearProblem.from_system(neumann), alg, rtol=1e-10)
        assert sol.retcode is ReturnCode.Success, (name, sol.message)
        assert abs(sol.x.mean()) < 1e-12
        xs[name] = sol.x
    for name, x in xs.items():
        assert np.abs(x - xs["direct"]).max() < 1e-6, name


def test_inconsistent_pure_neumann_refused():
    m = meshes.unit_square(16)
    system = solvers.Poisson(m, f=1.0, bcs=[Neumann("left", 0.0)]).assemble()
    sol = solve(LinearProblem.from_system(system), CG(precond=AMG("sa")))
    assert sol.retcode is ReturnCode.InvalidInput
    assert "b is inconsistent with the null space of A" in sol.message and "9.715e-01 of ||b||" in sol.message, sol.message


def test_dirichlet_or_robin_means_no_nullspace():
    m = meshes.unit_square(8)
    assert solvers.Poisson(m).assemble().nullspace is None
    assert solvers.Poisson(m, bcs=[solvers.Robin("left", 1.0)]).assemble().nullspace is None
    assert solvers.Helmholtz(m, k=3.0, bcs=[Neumann("left", 0.0)]).assemble().nullspace is None


def test_cli_pure_neumann_reports_zero_mean(capsys, tmp_path):
    import json

    rows = {}
    for method in ("pyamg-sa+cg", "pyamg-rs+cg", "petsc-gamg+cg", "direct-superlu"):
        out = tmp_path / f"{method}.json"
        rc, stdout, err = cli(capsys, "solve", "poisson", "--n", 16, "--method", method, "--json", out,
                              *sum((["--bc", f"{b}=neumann:-0.25"] for b in ("left", "right", "top", "bottom")), []))
        assert rc == 0, err
        assert "reported with zero mean" in stdout
        rows[method] = json.loads(out.read_text())["u_l2"]
    assert max(rows.values()) - min(rows.values()) < 1e-6, rows


# -- Heat with a cache -------------------------------------------------------------------------------------------------
def test_heat_run_accepts_cache_solve():
    """Before: ``float() argument must be ... not 'Solution'``."""
    m = meshes.unit_square(8)
    heat = solvers.Heat(m, dt=0.01, u0=1.0, f=0.0)
    ref = heat.run(3)
    heat2 = solvers.Heat(m, dt=0.01, u0=1.0, f=0.0)
    cache = init(LinearProblem.from_system(heat2.assemble()), CG(precond=AMG("sa")), rtol=1e-12)
    states = heat2.run(3, solve=cache.solve)
    assert np.abs(states - ref).max() < 1e-9


def test_heat_run_stops_on_a_failed_solve():
    m = meshes.unit_square(8)
    heat = solvers.Heat(m, dt=0.01, u0=1.0, f=0.0)
    cache = init(LinearProblem.from_system(heat.assemble()), CG(), rtol=1e-12, maxiter=1)
    with pytest.raises(RuntimeError, match="Heat.run: the solve of step 1 returned MaxIters"):
        heat.run(2, solve=cache.solve)
    with pytest.raises(ValueError, match="must return 81 values"):
        heat.run(1, solve=lambda b: b[:3])
