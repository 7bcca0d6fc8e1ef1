"""Two-level deflation around the shifted-Laplacian cycle (solvers.linear.preconditioners.deflation): its
coarse space, iterations independent of k and of trapping, the learned cycle inside it, bad input."""

from __future__ import annotations

import re

import numpy as np
import pytest
import scipy.sparse as sp

from solvers.linear import FGMRES, LinearProblem, PrecondParams, solve
from solvers.linear.preconditioners import ShiftedLaplacian, TwoLevelDeflation
from solvers.linear.preconditioners.deflation import deflation_space, galerkin_rows, interpolation_1d
from solvers.problems.helmholtz import grid_helmholtz, wavenumber
from solvers.problems.helmholtz_grid import assemble
from solvers.sampling.media import wave_speed


def _grid_problem(n, medium="layered"):
    """The benchmark's system in grid order (numpy assembly, no mesh)."""
    A, k2M, b = assemble(wave_speed(medium, n, 99, 0), wavenumber(n), (0.5, 0.8))
    return LinearProblem(A, b, p=PrecondParams(grid=(n + 1, n + 1), operators={"k2M": k2M}))


def _solve(problem, pc, maxiter=1000):
    sol = solve(problem, FGMRES(restart=30, precond=pc), rtol=1e-8, maxiter=maxiter)
    r = np.linalg.norm(problem.b - problem.A @ sol.x) / np.linalg.norm(problem.b)
    assert sol.retcode.name == "Success" and r <= 1e-8, (sol.retcode, r)
    return sol


@pytest.mark.parametrize("kind", ["cubic", "linear"])
def test_interpolation_reproduces_linear_functions(kind):
    P = interpolation_1d(8, kind)
    assert P.shape == (17, 9)
    xc, xf = np.linspace(0, 1, 9), np.linspace(0, 1, 17)
    np.testing.assert_allclose(P @ np.ones(9), np.ones(17), atol=1e-14)
    np.testing.assert_allclose(P @ (3 * xc - 1), 3 * xf - 1, atol=1e-14)
    if kind == "cubic":  # interior rows are the (1, 4, 6, 4, 1) / 8 subdivision rule
        np.testing.assert_allclose(P[8].toarray().ravel()[3:6], [0.125, 0.75, 0.125])
        np.testing.assert_allclose(P[9].toarray().ravel()[4:6], [0.5, 0.5])
    Z = deflation_space((17, 33), kind)  # 16 x 32 cells -> 8 x 16
    X, Y = np.meshgrid(np.linspace(0, 1, 17), np.linspace(0, 1, 9))
    Xf, Yf = np.meshgrid(np.linspace(0, 1, 33), np.linspace(0, 1, 17))
    np.testing.assert_allclose(Z @ (X + 2 * Y).ravel(), (Xf + 2 * Yf).ravel(), atol=1e-13)


def test_iterations_do_not_grow_with_k_and_beat_the_cycle_alone():
    """Dwarka & Vuik's higher-order deflation: the same iterations at n = 64 and 128 (k doubles), a few
    times fewer than the V-cycle alone; bilinear deflation vectors need more and grow with k."""
    its = {}
    for n in (64, 128):
        p = _grid_problem(n)
        its["def", n] = _solve(p, TwoLevelDeflation()).iterations
        its["lin", n] = _solve(p, TwoLevelDeflation(interpolation="linear")).iterations
        its["cslp", n] = _solve(p, ShiftedLaplacian()).iterations
    assert its["def", 128] <= 12 and abs(its["def", 128] - its["def", 64]) <= 2, its
    assert its["cslp", 128] >= 4 * its["def", 128], its
    assert its["lin", 128] > its["def", 128] + 4 and its["lin", 128] > its["lin", 64], its


def test_trapping_checkerboard_needs_no_more_than_a_smooth_medium():
    """The checkerboard traps rays (the cycle alone needs 3x the smooth medium's iterations); the exact
    coarse solve on a space that resolves the waves removes what the cycle cannot reach."""
    grf = _solve(_grid_problem(128, "grf"), TwoLevelDeflation()).iterations
    checker = _solve(_grid_problem(128, "checkerboard"), TwoLevelDeflation()).iterations
    cycle = _solve(_grid_problem(128, "checkerboard"), ShiftedLaplacian()).iterations
    assert checker <= 1.5 * grf and cycle >= 3 * checker, (grf, checker, cycle)


def test_dof_ordered_system_and_superlu_coarse_solve_agree():
    """A DOLFINx system (dof order, its grid view maps the coarse space) gives the grid-ordered system's
    iterations; SuperLU and MUMPS coarse solves give the same."""
    n = 64
    its_mesh = _solve(LinearProblem.from_system(grid_helmholtz(wave_speed("layered", n, 99, 0), wavenumber(n),
                                                               source=(0.5, 0.8))), TwoLevelDeflation()).iterations
    p = _grid_problem(n)
    its_grid = _solve(p, TwoLevelDeflation(coarse="mumps")).iterations
    its_superlu = _solve(p, TwoLevelDeflation(coarse="superlu")).iterations
    its_blr = _solve(p, TwoLevelDeflation()).iterations  # block-low-rank MUMPS, the default
    assert abs(its_mesh - its_blr) <= 1 and its_superlu == its_grid and abs(its_blr - its_grid) <= 1


def test_a_failing_coarse_solve_is_skipped_not_fatal(monkeypatch):
    p = _grid_problem(64)
    from solvers.linear import direct

    real_run = direct.Direct.run

    def nan_run(self, state, A, b, x0, tol, callback):
        res = real_run(self, state, A, b, x0, tol, callback)
        return res._replace(x=np.full_like(res.x, np.nan))

    monkeypatch.setattr(direct.Direct, "run", nan_run)
    sol = _solve(p, TwoLevelDeflation())
    assert sol.stats["precond"]["coarse_skipped"] == sol.stats["precond"]["calls"] > 0


def test_coarse_operator_by_row_blocks_equals_the_triple_product():
    """``galerkin_rows`` (A Z never whole) gives Z^T A Z, with blocks that do not divide the rows too."""
    p = _grid_problem(32)
    Z = deflation_space((33, 33)).astype(complex)
    ref = (Z.T @ p.A @ Z).toarray()
    for rows in (100, 1089, 5000):
        E = galerkin_rows(p.A, Z, block_rows=rows)
        assert E.shape == (17 * 17, 17 * 17) and np.abs(E.toarray() - ref).max() < 1e-12 * np.abs(ref).max()
    for bad in (0, -5, 2.5, True):
        with pytest.raises(ValueError, match="block_rows must be a positive integer"):
            galerkin_rows(p.A, Z, block_rows=bad)


def test_block_low_rank_factorization_as_a_preconditioner():
    """MUMPS with BLR compression (large enough fronts: n = 384) solves only approximately, so FGMRES needs
    more than the one iteration of an exact factorization, and a few reach 1e-8; the options really reach
    MUMPS (PETScKSP once cleared them before the factorization read them)."""
    from solvers.linear.direct import Direct, blr
    from solvers.linear.preconditioners import DirectPreconditioner

    p = _grid_problem(384)
    exact = _solve(p, DirectPreconditioner(Direct("mumps")))
    approx = _solve(p, DirectPreconditioner(Direct("mumps", options=blr(1e-5))))
    assert exact.iterations == 1 and 1 < approx.iterations <= 10, (exact.iterations, approx.iterations)
    pc = DirectPreconditioner(Direct("mumps", options=blr(1e-5))).setup(p.A)
    F = pc._factors.ksp_state[0].getPC().getFactorMatrix()
    assert F.getMumpsIcntl(35) == 1 and F.getMumpsCntl(7) == pytest.approx(1e-5)
    with pytest.raises(ValueError, match="tolerance"):
        blr(0.0)
    with pytest.raises(ValueError, match="MUMPS options"):
        Direct("superlu", options=blr()).setup(p.A)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="interpolation"):
        TwoLevelDeflation(interpolation="quadratic")
    with pytest.raises(ValueError, match="coarse"):
        TwoLevelDeflation(coarse="pardiso")
    with pytest.raises(ValueError, match="even number of cells"):
        deflation_space((18, 18))
    p = _grid_problem(16)
    with pytest.raises(ValueError, match="structured grid"):
        TwoLevelDeflation().setup(p.A, PrecondParams(operators=p.p.operators))
    with pytest.raises(ValueError, match="the grid"):
        TwoLevelDeflation(ShiftedLaplacian(multigrid="exact")).setup(p.A, PrecondParams(grid=(15, 15),
                                                                                        operators=p.p.operators))
    with pytest.raises(ValueError, match="could not be factorized"):
        TwoLevelDeflation(ShiftedLaplacian(multigrid="exact"), coarse="superlu").setup(
            sp.csr_matrix(p.A.shape, dtype=complex), p.p)


@pytest.mark.parametrize("grid", [[17, 17], "17x17", (17,), np.array([17, 17]), (17.0, 17.0), (17, 17, 1),
                                  (-17, -17), (True, 17)])
def test_bad_grids_are_named(grid):
    """From a user trial: a list, a string, one entry, floats, three entries or negative counts escaped as
    AttributeError / IndexError / TypeError or were silently accepted."""
    p = _grid_problem(16)
    with pytest.raises(ValueError, match="grid must be"):
        TwoLevelDeflation(ShiftedLaplacian(multigrid="exact")).setup(p.A, PrecondParams(grid=grid, operators=p.p.operators))


def test_user_trial_findings():
    """A preconditioner that is not one is refused at construction; a singular matrix fails MUMPS's setup
    as it fails SuperLU's (it used to pass and return NaN at every apply); ``blr`` names a non-number; the
    coarse size is reported in the solve's stats (not subtracted away as a counter)."""
    from solvers.linear.direct import Direct, blr
    from solvers.linear.methods import method
    from solvers.linear.preconditioners import DirectPreconditioner

    for bad in ("jacobi", 3, Direct("superlu")):
        with pytest.raises(ValueError, match="inner must be a preconditioner"):
            TwoLevelDeflation(bad)
    S = sp.identity(10, format="lil")
    S[3, 3] = 0.0
    for backend in ("mumps", "superlu"):
        with pytest.raises(ValueError, match="could not be factorized"):
            DirectPreconditioner(Direct(backend)).setup(S.tocsr())
    with pytest.raises(ValueError, match="could not be factorized"):
        p = _grid_problem(16)
        TwoLevelDeflation(ShiftedLaplacian(multigrid="exact")).setup(sp.csr_matrix(p.A.shape, dtype=complex), p.p)
    for bad in ("1e-5", None, [1e-5]):
        with pytest.raises(ValueError, match="tolerance must be a number"):
            blr(bad)
    sol = solve(_grid_problem(64), method("cslp-def+fgmres"), rtol=1e-8)
    assert sol.stats["precond"]["setup_coarse_unknowns"] == 33 * 33


def test_learned_cycle_inside_deflation(broken_helmholtz_net):
    """The learned preconditioner as the inner step: the shipped network saves iterations over the cycle
    alone, and an untrained or NaN network never fails the solve nor costs more than 2 iterations; the
    network's counters reach the solve's stats."""
    from pathlib import Path

    from hybrid.precond.helmholtz import LearnedShiftedLaplacian

    p = _grid_problem(64)
    classical = _solve(p, TwoLevelDeflation()).iterations
    broken = _solve(p, TwoLevelDeflation(LearnedShiftedLaplacian(broken_helmholtz_net)))
    assert broken.iterations <= classical + 2
    assert "network_calls" in broken.stats["precond"]
    model = Path(__file__).resolve().parents[1] / "bench" / "models" / "helmholtz_cslp.pt"
    shipped = _solve(p, TwoLevelDeflation(LearnedShiftedLaplacian(str(model))))
    assert shipped.iterations < classical and shipped.stats["precond"]["network_calls"] > 0
    # the network's pass in bfloat16 (autocast): still a converged solve that beats the cycle alone, within
    # one iteration of float32, every step accepted by the safeguard
    bf16 = _solve(p, TwoLevelDeflation(LearnedShiftedLaplacian(str(model), precision="bfloat16")))
    assert bf16.iterations < classical and abs(bf16.iterations - shipped.iterations) <= 1
    assert bf16.stats["precond"]["accepted"] == bf16.stats["precond"]["network_calls"]
    for bad in ("bf16", None, "float64"):
        with pytest.raises(ValueError, match="precision must be one of"):
            LearnedShiftedLaplacian(str(model), precision=bad)


def test_deflation_table_compares_the_two_deflated_methods():
    from hybrid.bench.helmholtz import deflation_table

    def row(method, its, medium="layered"):
        return {"n": 32, "medium": medium, "method": method, "iterations": its, "converged": True, "total_s": 1.0,
                "rss_peak_mb": 100.0}

    recs = [row("direct-mumps", 1), row("cslp-def+fgmres", 10), row("learned-cslp-def+fgmres", 7),
            row("cslp-def2+fgmres", 7), row("learned-def+fgmres", 5),
            row("cslp-def+fgmres", 12, "checkerboard"), row("learned-cslp-def+fgmres", 9, "checkerboard")]
    lines = deflation_table(recs).splitlines()
    assert lines[0].endswith("| cslp-def2+fgmres | learned-def+fgmres | learned-def / cslp-def2 iterations |")
    cell = "it, 1.0 s, 100 MB"
    assert lines[2] == (f"| 32 | layered | 1.0 s, 100 MB | - | 10 {cell} | - | 7 {cell} | 7 {cell} | 5 {cell} "
                        "| 0.71 |")
    assert lines[3] == f"| 32 | checkerboard (OOD) | - | - | 12 {cell} | - | 9 {cell} | - | - |  |"


def test_repeated_rows_are_the_median_run_with_the_spread(monkeypatch):
    """``run(repeats=3)``: each row three times, the methods interleaved within a repeat; the row is the run
    of median total time with every run's time; a run that failed or did not converge is the row, and a
    method that failed is not run again; the goal table shows the median and the spread."""
    import hybrid.bench.helmholtz as hb

    times = {"direct-mumps": [3.0, 1.0, 2.0], "cslp2-def+fgmres": [5.0, 4.0, 6.0]}
    calls = []

    def fake(n, medium, method, *a, **k):
        calls.append(method)
        if method == "cslp-def+fgmres":
            return {"failed": "out of memory", "n": n, "medium": medium, "method": method}
        t = times[method][sum(c == method for c in calls) - 1]
        return {"n": n, "medium": medium, "method": method, "iterations": 1 if method == "direct-mumps" else 7,
                "converged": True, "total_s": t, "rss_peak_mb": 10.0 * t, "retcode": "Success", "rel_residual": 1e-9}

    monkeypatch.setattr(hb, "run_one", fake)
    seen = []
    recs = hb.run([32], ["layered"], ["direct-mumps", "cslp2-def+fgmres", "cslp-def+fgmres"], repeats=3,
                  log=lambda *_: None, on_record=lambda rows: seen.append(len(rows)))
    assert seen == [1, 2, 3, 3, 3, 3, 3]  # the partial file after every run, each row once
    assert calls == ["direct-mumps", "cslp2-def+fgmres", "cslp-def+fgmres"] + ["direct-mumps", "cslp2-def+fgmres"] * 2
    by = {r["method"]: r for r in recs}
    assert by["direct-mumps"]["total_s"] == 2.0 and by["direct-mumps"]["rss_peak_mb"] == 20.0
    assert by["direct-mumps"]["total_s_runs"] == [3.0, 1.0, 2.0] and by["direct-mumps"]["repeats"] == 3
    assert by["cslp2-def+fgmres"]["total_s"] == 5.0 and "failed" in by["cslp-def+fgmres"]
    assert hb.median_run([{"converged": True, "total_s": 1.0}, {"converged": False, "total_s": 0.5}])["bad_runs"] == 1
    assert hb.median_run([{"converged": True, "total_s": 1.0}])["repeats"] == 1  # a single run says so too
    assert "| 2.00 (1.00-3.00) |" in hb.table([by["direct-mumps"] | {"dofs": 1089, "setup_s": 1.0, "solve_s": 1.0}])
    lines = hb.goal_table(recs).splitlines()
    assert lines[0] == ("| n | medium | direct-mumps | cslp2-def+fgmres | learned-def+fgmres | "
                        "learned-def / cslp2-def iterations |")
    assert lines[2] == "| 32 | layered | 2.0 s (1.0-3.0), 20 MB | 7 it, 5.0 s (4.0-6.0), 50 MB | - |  |"
    with pytest.raises(ValueError, match="repeats must be a positive integer"):
        hb.run([32], ["layered"], ["direct-mumps"], repeats=0)


def test_point_source_is_the_assembled_right_hand_side():
    """``point_sources`` alone equal the right-hand sides of the grid assembly and, mapped to dofs, DOLFINx's."""
    from solvers.problems.helmholtz_grid import point_sources

    srcs = [(0.3, 0.7), (0.6, 0.2)]
    for src, rhs in zip(srcs, point_sources(32, srcs)):
        _, _, b = assemble(wave_speed("layered", 32, 99, 0), wavenumber(32), src)
        assert np.abs(rhs - b).max() <= 1e-15 * np.abs(b).max()
    s = grid_helmholtz(wave_speed("layered", 32, 99, 0), wavenumber(32), (0.3, 0.7))
    mapped = s.aux["grid"].to_dofs(next(point_sources(32, [(0.3, 0.7)])).reshape(33, 33))
    assert np.abs(mapped - s.b).max() < 1e-9 * np.abs(s.b).max()


def test_bench_row_with_several_sources_reuses_the_setup():
    """``--sources 3``: two more right-hand sides after the first, each converged to the tolerance with the
    same setup (the direct solve in one step, deflation in about as many iterations as the first), and the
    table that reports them."""
    from hybrid.bench.helmholtz import more_sources, run_one, sources_table

    assert more_sources(1) == [] and more_sources(3) == [(0.2, 0.7), (0.8, 0.7)]
    recs = [run_one(64, "layered", m, sources=3) for m in ("direct-mumps", "cslp-def+fgmres")]
    for r in recs:
        assert r["converged"] and len(r["more_sources"]) == 2, r
        assert all(m["converged"] and m["rel_residual"] <= 1e-8 for m in r["more_sources"])
    assert [m["iterations"] for m in recs[0]["more_sources"]] == [1, 1]
    assert all(abs(m["iterations"] - recs[1]["iterations"]) <= 2 for m in recs[1]["more_sources"])
    lines = sources_table(recs).splitlines()
    assert lines[2].startswith("| 64 | layered | direct-mumps | 3 |") and "(1-1)" in lines[2]
    assert lines[3].startswith("| 64 | layered | cslp-def+fgmres | 3 |")


def test_bench_row_with_a_bfloat16_network():
    """``--network-precision bfloat16`` reaches the learned preconditioner inside deflation (and is recorded);
    classical methods are left as they are."""
    from hybrid.bench.helmholtz import DEFAULT_MODEL, run_one, set_network_precision
    from solvers.linear.methods import method

    rec = run_one(64, "layered", "learned-cslp-def+fgmres", model=DEFAULT_MODEL, network_precision="bfloat16")
    assert rec["converged"] and rec["network_precision"] == "bfloat16" and rec["network_calls"] > 0, rec
    assert not set_network_precision(method("cslp-def+fgmres"), "bfloat16")
    with pytest.raises(ValueError, match="precision must be one of"):
        from hybrid.precond.methods import learned_method

        set_network_precision(learned_method("learned-cslp+fgmres", DEFAULT_MODEL), "half")


def test_more_sources_are_distinct_from_the_rows_own():
    """``--sources K`` gives K distinct sources: the row's own and K - 1 others (it once repeated the first)."""
    from hybrid.bench.helmholtz import SOURCE, more_sources

    for k in range(1, 10):
        srcs = more_sources(k)
        assert len(srcs) == k - 1 and len(set(srcs) | {SOURCE}) == k, (k, srcs)


def test_network_gain_is_per_solve_through_a_cache():
    """A cache's later solves report their own network gain (a geometric mean, not a counter: the per-solve
    difference of running means gave 0.0 and 5e-17)."""
    from pathlib import Path

    from hybrid.precond.helmholtz import LearnedShiftedLaplacian
    from solvers.linear import init

    model = Path(__file__).resolve().parents[1] / "bench" / "models" / "helmholtz_cslp.pt"
    p = _grid_problem(64)
    cache = init(p, FGMRES(restart=30, precond=LearnedShiftedLaplacian(str(model))), rtol=1e-8)
    gains = [cache.solve().stats["precond"]["network_gain"] for _ in range(3)]
    assert 0.05 < gains[0] < 1 and all(abs(g - gains[0]) < 1e-12 for g in gains), gains


@pytest.mark.parametrize("args,message", [
    (["--methods", "cslp-def+fgmres", "--network-precision", "bfloat16"], "--network-precision"),
    (["--memory-gb", "inf"], "--memory-gb"),
    (["--max-seconds", "0"], "--max-seconds"),
    (["--repeats", "0"], "--repeats"),
    (["--methods", "learned-cslp-def+fgmres", "--model", "bench/models/learned_amg.pt"], "--model"),
])
def test_bench_helmholtz_refuses_before_any_row(tmp_path, args, message):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([str(Path(sys.executable).parent / "hybrid"), "bench", "helmholtz", "--sizes", "32",
                        "--problems", "layered", *args, "--json", str(tmp_path / "h.json")],
                       capture_output=True, text=True, cwd=root)
    assert r.returncode == 2 and message in r.stderr, r.stderr[-800:]
    assert not (tmp_path / "h.json").exists()


def test_repeats_is_refused_by_suites_that_run_each_row_once(tmp_path):
    """``--repeats`` was silently ignored (even 0) by the suites that do not repeat rows."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([str(Path(sys.executable).parent / "hybrid"), "bench", "helmholtz-norm", "--sizes", "32",
                        "--repeats", "2", "--json", str(tmp_path / "n.json")], capture_output=True, text=True, cwd=root)
    assert r.returncode == 2 and "--repeats: only for the suites solvers, datagen, hybrid, helmholtz" in r.stderr, \
        r.stderr[-600:]
    assert not (tmp_path / "n.json").exists()


def test_bench_table_shows_the_sources_and_report_reads_a_partial_file(tmp_path):
    """The bench's own table shows a ``--sources`` run's further solves; ``--report`` reads the partial file
    an interrupted run leaves (it has no ``command``)."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    from hybrid.bench.helmholtz import table
    from hybrid.bench.results import write_results

    rec = {"n": 32, "medium": "layered", "method": "direct-mumps", "iterations": 1, "converged": True, "dofs": 1089,
           "setup_s": 1.0, "solve_s": 0.1, "total_s": 1.1, "rss_peak_mb": 100.0, "rel_residual": 1e-12,
           "more_sources": [{"source": [0.2, 0.7], "iterations": 1, "solve_s": 0.1, "rel_residual": 1e-12,
                             "converged": True}]}
    assert "each further source" in table([rec])
    path = write_results(tmp_path / "p.json", "helmholtz", [rec], extra={"partial": True})
    assert "command" not in json.loads(path.read_text())
    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([str(Path(sys.executable).parent / "hybrid"), "bench", "helmholtz", "--json", str(path),
                        "--report"], capture_output=True, text=True, cwd=root)
    assert r.returncode == 0 and "partial" in r.stdout and "direct-mumps" in r.stdout, r.stderr[-500:]


def test_two_deflated_steps_per_application():
    """``steps=2`` applies the deflated step again to what the first left: fewer iterations than one step
    (n = 64: 10 -> 7 in a one-off run), and an inner preconditioner that hands its input back (the
    identity) leaves FGMRES's vector untouched."""
    from solvers.linear.preconditioners import Preconditioner

    p = _grid_problem(64)
    one = _solve(p, TwoLevelDeflation()).iterations
    two = _solve(p, TwoLevelDeflation(steps=2))
    assert two.iterations <= one - 2, (one, two.iterations)
    assert "steps=2" in repr(TwoLevelDeflation(steps=2))

    class Identity(Preconditioner):
        symmetric = False

        def apply(self, r):
            return r

    pc = TwoLevelDeflation(Identity(), steps=2).setup(p.A, p.p)
    r = p.b.copy()
    pc.apply(r)
    np.testing.assert_array_equal(r, p.b)
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="steps must be a positive integer"):
            TwoLevelDeflation(steps=bad)


def test_learned_correction_around_the_deflated_step(broken_helmholtz_net):
    """``LearnedShiftedLaplacian(classical=TwoLevelDeflation())`` (``learned-def+fgmres``): without a
    network it is the deflated step itself (cslp-def's iterations); a broken network never fails the solve
    nor costs more than 2 iterations over it; a classical preconditioner without a shifted-Laplacian cycle
    is named."""
    from hybrid.precond.helmholtz import LearnedShiftedLaplacian
    from solvers.linear.preconditioners import Jacobi

    p = _grid_problem(64)
    classical = _solve(p, TwoLevelDeflation()).iterations
    assert _solve(p, LearnedShiftedLaplacian(None, classical=TwoLevelDeflation())).iterations == classical
    broken = _solve(p, LearnedShiftedLaplacian(broken_helmholtz_net, classical=TwoLevelDeflation()))
    assert broken.iterations <= classical + 2
    with pytest.raises(ValueError, match="no shifted-Laplacian cycle"):
        LearnedShiftedLaplacian(broken_helmholtz_net, classical=TwoLevelDeflation(Jacobi())).setup(p.A, p.p)


def test_bench_row_peak_is_its_own_process_not_the_parent():
    """A bench row runs in a spawned process, whose ``ru_maxrss`` starts at the parent's resident size at the
    fork (Linux keeps it across exec): with torch loaded by the parent (the command checks the learned
    methods' checkpoints) a classical row at n = 64 reported 597 MB instead of 150. The row's peak is the
    process's own high-water mark (``VmHWM``)."""
    from hybrid.bench.helmholtz import run_one

    ballast = np.ones(2 * 2**30 // 8)  # 2 GiB resident in this (the parent) process
    ballast[::512] = 2.0
    rec = run_one(64, "layered", "cslp-def+fgmres")
    assert rec["converged"] and rec["rss_peak_mb"] < 1024, rec["rss_peak_mb"]
    del ballast


def test_a_tuple_grid_with_dofs_out_of_grid_order_is_named():
    """From a user trial: a permuted system with ``grid=(65, 65)`` ran to MaxIters (300 iterations, 40x);
    the shifted Laplacian, geometric multigrid and deflation now refuse it at setup."""
    from solvers.linear.preconditioners import GeometricMG

    p = _grid_problem(32)
    perm = np.random.default_rng(0).permutation(p.A.shape[0])
    A = p.A[perm][:, perm]
    params = PrecondParams(grid=(33, 33), operators={"k2M": p.p.operators["k2M"][perm][:, perm]})
    for pc in (ShiftedLaplacian(), TwoLevelDeflation(steps=2), GeometricMG()):
        with pytest.raises(ValueError, match="not a neighbour on the 33 x 33 node grid"):
            pc.setup(A, params)
    TwoLevelDeflation().setup(p.A, p.p)  # grid order passes


def test_apply_refuses_a_block_or_a_wrong_size_naming_the_shape():
    """A block of vectors, or a vector of another size, given straight to ``apply`` failed inside pyamg
    ("x has invalid dimensions"); it is refused naming the shape."""
    p = _grid_problem(16)
    for pc in (ShiftedLaplacian(), TwoLevelDeflation()):
        pc.setup(p.A, p.p)
        for bad in (np.ones((p.A.shape[0], 2), complex), np.ones(p.A.shape[0] + 1, complex)):
            with pytest.raises(ValueError, match=f"apply takes one vector of {p.A.shape[0]} entries .* got shape "
                                                 + re.escape(str(bad.shape))):
                pc.apply(bad)


def test_a_network_trained_for_the_other_loop_is_named_in_a_warning(tmp_path):
    """The shipped checkpoints say which residuals they were trained on (``extra["train"]["deflated"]``);
    one used in the other loop warns, naming the file and the network shipped for that loop, and still
    converges; the right one, and a checkpoint that does not say, pass silently."""
    import warnings
    from pathlib import Path

    import torch

    from hybrid.precond.helmholtz import LearnedShiftedLaplacian

    models = Path(__file__).resolve().parents[1] / "bench" / "models"
    p = _grid_problem(32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _solve(p, LearnedShiftedLaplacian(str(models / "helmholtz_cslp_def_c4.pt"), classical=TwoLevelDeflation()))
        _solve(p, LearnedShiftedLaplacian(str(models / "helmholtz_cslp.pt")))
        silent = torch.load(models / "helmholtz_cslp.pt", weights_only=True)
        del silent["extra"]["train"]["deflated"]
        torch.save(silent, tmp_path / "unsaid.pt")
        _solve(p, LearnedShiftedLaplacian(str(tmp_path / "unsaid.pt"), classical=TwoLevelDeflation()))
    with pytest.warns(UserWarning, match="helmholtz_cslp.pt: trained on the shifted-Laplacian cycle's own residuals, "
                                         "used after a deflated step .* bench/models/helmholtz_cslp_def_c4.pt"):
        sol = _solve(p, LearnedShiftedLaplacian(str(models / "helmholtz_cslp.pt"), classical=TwoLevelDeflation()))
    assert sol.converged
    with pytest.warns(UserWarning, match="helmholtz_cslp_def_c4.pt: trained on the residuals a deflated step leaves, "
                                         "used after the cycle alone"):
        assert _solve(p, LearnedShiftedLaplacian(str(models / "helmholtz_cslp_def_c4.pt"))).converged


@pytest.mark.parametrize("name", ["helmholtz_cslp_def.pt", "helmholtz_cslp_def_c4.pt"])
def test_shipped_deflated_loop_networks_save_iterations(name):
    """Both networks trained for the deflated loop (8 and 4 channels) need at most 5 iterations at n = 64
    where the same two deflated steps without them need 7 (measured: 4 with either), and every step of
    theirs passes the safeguard."""
    from pathlib import Path

    from hybrid.precond.helmholtz import LearnedShiftedLaplacian

    model = Path(__file__).resolve().parents[1] / "bench" / "models" / name
    p = _grid_problem(64)
    plain = _solve(p, TwoLevelDeflation(steps=2)).iterations
    sol = _solve(p, LearnedShiftedLaplacian(str(model), classical=TwoLevelDeflation()))
    assert sol.iterations <= min(5, plain - 2), (sol.iterations, plain)
    assert sol.stats["precond"]["accepted"] == sol.stats["precond"]["network_calls"] > 0
