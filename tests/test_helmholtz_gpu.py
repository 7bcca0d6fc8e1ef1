"""The Helmholtz solve path on a torch device (issue 11's GPU rows), checked on the CPU against the numpy
path: the numpy assembly against DOLFINx, the grid stencil against scipy, the torch cycle against
``Hierarchy.cycle``, the torch FGMRES against ``solvers.linear.FGMRES``, the safeguard, and the device
script without DOLFINx."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from solvers.linear import FGMRES, LinearProblem, PrecondParams, solve
from solvers.linear.preconditioners import ShiftedLaplacian
from solvers.problems.helmholtz import grid_helmholtz
from solvers.problems.helmholtz_grid import assemble, wavenumber
from solvers.sampling.media import wave_speed

from hybrid.gpu.fgmres import fgmres
from hybrid.gpu.helmholtz import solve_helmholtz
from hybrid.gpu.multigrid import TorchCycle, prolong, restrict
from hybrid.gpu.stencil import StencilOperator

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "bench" / "models" / "helmholtz_cslp.pt"
SOURCE = (0.5, 0.8)


def _grid_system(n, medium="layered"):
    A, k2M, b = assemble(wave_speed(medium, n, 99, 0), wavenumber(n), SOURCE)
    return A, k2M, b, (n + 1, n + 1)


@pytest.mark.parametrize("n,medium", [(16, "grf"), (24, "checkerboard")])
def test_numpy_assembly_is_the_dolfinx_system(n, medium):
    c = wave_speed(medium, n, 5, 1)
    ref = grid_helmholtz(c, wavenumber(n), SOURCE)
    g = ref.aux["grid"].grid_of_dof  # dof d is grid node g[d]
    P = sp.csr_matrix((np.ones(len(g)), (g, np.arange(len(g)))))
    A, k2M, b = assemble(c, wavenumber(n), SOURCE)
    for mine, theirs in ((A, P @ ref.A @ P.T), (k2M, P @ ref.aux["k2M"] @ P.T)):
        assert abs(mine - theirs).max() <= 1e-13 * abs(theirs).max()
    assert np.abs(b - P @ ref.b).max() <= 1e-13 * np.abs(ref.b).max()


@pytest.mark.parametrize("bad,match", [(np.ones((5, 6)), "square"), (-np.ones((5, 5)), "positive"),
                                       (np.full((5, 5), np.nan), "positive")])
def test_numpy_assembly_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        assemble(bad, 3.0)
    with pytest.raises(ValueError, match="wavenumber"):
        assemble(np.ones((5, 5)), -1.0)


def test_stencil_operator_is_the_matrix_and_refuses_far_couplings():
    A, _, _, shape = _grid_system(20)
    op = StencilOperator.from_scipy(A, shape)
    rng = np.random.default_rng(1)
    x = rng.standard_normal(A.shape[0]) + 1j * rng.standard_normal(A.shape[0])
    y = (op @ torch.as_tensor(x.reshape(shape))).numpy().ravel()
    assert np.abs(y - A @ x).max() <= 1e-13 * np.abs(A @ x).max()
    far = sp.csr_matrix(([1.0], ([0], [2])), shape=(25, 25))  # node (0,0) to (2,0): two cells away
    with pytest.raises(ValueError, match="offset dy=0, dx=2"):
        StencilOperator.from_scipy(far, (5, 5))


def test_transfers_are_adjoint():
    rng = np.random.default_rng(2)
    xc, xf = torch.as_tensor(rng.standard_normal((5, 7))), torch.as_tensor(rng.standard_normal((9, 13)))
    assert abs(float((prolong(xc) * xf).sum() - (xc * restrict(xf)).sum())) < 1e-12


def test_torch_cycle_is_the_hierarchy_cycle():
    A, k2M, _, shape = _grid_system(64)
    pc = ShiftedLaplacian().setup(A, PrecondParams(grid=shape, operators={"k2M": k2M}))
    cyc = TorchCycle(pc.hierarchy, shape, pc.omega, pc.sweeps)
    r = np.random.default_rng(3).standard_normal(A.shape[0]) + 0j
    z = cyc(torch.as_tensor(r.reshape(shape))).numpy().ravel()
    ref = pc.apply(r)
    assert np.abs(z - ref).max() <= 1e-12 * np.abs(ref).max()


def test_torch_cycle_refuses_a_hierarchy_in_dof_order():
    """A hierarchy whose first prolongation is not bilinear in grid order (here: rows permuted) is refused."""
    A, k2M, _, shape = _grid_system(16)
    pc = ShiftedLaplacian(coarse_kh=None).setup(A, PrecondParams(grid=shape, operators={"k2M": k2M}))
    perm = np.random.default_rng(0).permutation(A.shape[0])
    pc.hierarchy.levels[0].P = pc.hierarchy.levels[0].P[perm]
    with pytest.raises(ValueError, match="not bilinear interpolation in grid order"):
        TorchCycle(pc.hierarchy, shape, pc.omega, pc.sweeps)


@pytest.mark.parametrize("n", [48, 96])
def test_torch_fgmres_reproduces_cslp_fgmres(n):
    A, k2M, b, shape = _grid_system(n)
    ref = solve(LinearProblem(A, b, p=PrecondParams(grid=shape, operators={"k2M": k2M})),
                FGMRES(restart=30, precond=ShiftedLaplacian()), rtol=1e-8)
    row = solve_helmholtz(A, k2M, b, shape)
    assert row["converged"] and row["rel_residual"] <= 1e-8
    assert row["iterations"] == ref.iterations
    assert np.linalg.norm(row["x"] - ref.x) <= 1e-6 * np.linalg.norm(ref.x)


def test_krylov_coarse_solve_keeps_the_iterations():
    """FGMRES on the coarse level instead of its LU: measured 66 -> 66 (n = 128), 128 -> 131 (256),
    254 -> 266 (512) outer iterations with 10 inner iterations."""
    A, k2M, b, shape = _grid_system(128)
    exact = solve_helmholtz(A, k2M, b, shape)
    kry = solve_helmholtz(A, k2M, b, shape, coarse="krylov", inner=10)
    assert kry["converged"] and kry["rel_residual"] <= 1e-8 and kry["coarse"] == "krylov"
    assert kry["levels"] == exact["levels"] and kry["coarse_unknowns"] == exact["coarse_unknowns"]
    assert exact["iterations"] <= kry["iterations"] <= 1.1 * exact["iterations"]
    few = solve_helmholtz(A, k2M, b, shape, coarse="krylov", inner=1)  # a poor coarse solve costs iterations
    assert few["converged"] and few["iterations"] > kry["iterations"]


def test_krylov_coarse_solve_bad_arguments():
    A, k2M, _, shape = _grid_system(32)
    pc = ShiftedLaplacian(coarse_kh=None).setup(A, PrecondParams(grid=shape, operators={"k2M": k2M}))
    bottom = len(pc.hierarchy.levels) - 1
    for stop, inner in ((None, 10), (0, 10), (bottom, 10), (1, 0)):
        with pytest.raises(ValueError, match="coarse='krylov' needs"):
            TorchCycle(pc.hierarchy, shape, pc.omega, pc.sweeps, coarse="krylov", stop=stop, inner=inner)
    with pytest.raises(ValueError, match="coarse must be"):
        TorchCycle(pc.hierarchy, shape, pc.omega, pc.sweeps, coarse="gpu")


@pytest.mark.skipif(not MODEL.exists(), reason="no shipped Helmholtz model")
def test_learned_correction_on_tensors_saves_iterations():
    A, k2M, b, shape = _grid_system(96)
    classical = solve_helmholtz(A, k2M, b, shape)
    learned = solve_helmholtz(A, k2M, b, shape, model=MODEL)
    assert learned["converged"] and learned["rel_residual"] <= 1e-8
    assert learned["iterations"] <= 0.7 * classical["iterations"]
    assert learned["network_calls"] == learned["iterations"] and learned["accepted"] > 0


@pytest.mark.skipif(not MODEL.exists(), reason="no shipped Helmholtz model")
@pytest.mark.parametrize("scheme", ["VNV", "VN"])
def test_learned_correction_on_tensors_is_the_numpy_one(scheme):
    """Both schemes of the tensor correction give the numpy class's iterations (float32 network either
    way, so within 2) on the same grid-ordered system."""
    from solvers.linear.methods import HELMHOLTZ_RESTART
    from hybrid.precond.helmholtz import LearnedShiftedLaplacian

    n = 64
    system = grid_helmholtz(wave_speed("layered", n, 99, 0), wavenumber(n), SOURCE)
    ref = solve(LinearProblem.from_system(system),
                FGMRES(restart=HELMHOLTZ_RESTART, precond=LearnedShiftedLaplacian(MODEL, scheme=scheme)),
                rtol=1e-8, maxiter=500)
    A, k2M, b, shape = _grid_system(n)
    row = solve_helmholtz(A, k2M, b, shape, model=MODEL, scheme=scheme)
    assert row["converged"] and ref.converged
    assert abs(row["iterations"] - ref.iterations) <= 2


def test_broken_model_is_switched_off_on_tensors(broken_helmholtz_net):
    net = broken_helmholtz_net
    A, k2M, b, shape = _grid_system(48)
    classical = solve_helmholtz(A, k2M, b, shape)
    row = solve_helmholtz(A, k2M, b, shape, model=net)
    assert row["converged"] and row["rel_residual"] <= 1e-8
    assert row["iterations"] <= classical["iterations"] + 2
    assert row["network_calls"] <= 5 + row["accepted"]


def test_fgmres_reports_a_broken_preconditioner_and_never_claims_success():
    A, _, b, shape = _grid_system(16)
    op = StencilOperator.from_scipy(A, shape)
    bt = torch.as_tensor(b.reshape(shape))
    res = fgmres(op, lambda r: r * float("nan"), bt, rtol=1e-8, restart=10, maxiter=50)
    assert not res.converged and "non-finite" in res.message
    res = fgmres(op, lambda r: r, bt, rtol=1e-12, restart=5, maxiter=7)  # unpreconditioned: far from 1e-12
    assert not res.converged and res.iterations == 7 and "7 iterations" in res.message
    x = res.x.numpy().ravel()
    assert res.residuals[-1] == pytest.approx(np.linalg.norm(b - A @ x), rel=1e-10)  # the true residual


def test_device_script_runs_without_dolfinx(tmp_path):
    """The lent GPU machines have no DOLFINx, PETSc or MPI: the script must not import them."""
    out = tmp_path / "gpu.json"
    code = ("import sys, runpy\n"
            "for m in ('dolfinx', 'petsc4py', 'basix', 'ufl', 'mpi4py', 'meshio'): sys.modules[m] = None\n"
            f"sys.argv = ['x', '--sizes', '32', '--check', '0', '--extra', '16:checkerboard', '--device', 'cpu',"
            f" '--json', {str(out)!r}]\n"
            f"runpy.run_path({str(ROOT / 'scripts' / 'device_helmholtz_bench.py')!r}, run_name='__main__')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(out.read_text())
    assert doc["versions"]["dolfinx"] is None and doc["machine"]["device"] == "cpu"
    rows = doc["records"]
    assert [(r["n"], r["medium"]) for r in rows] == [(32, "layered")] * 2 + [(16, "checkerboard")] * 2
    assert all(r["converged"] and r["rel_residual"] <= 1e-8 for r in rows)
    assert rows[0]["iterations"] == 23  # cslp+fgmres at n = 32, as the numpy path (and the GPU: 66 at n = 128)


def test_gpu_table_reports_ratio_and_failures():
    from hybrid.bench.helmholtz import gpu_table

    base = {"n": 1024, "medium": "layered", "converged": True, "total_s": 10.0, "coarse_s": 5.0,
            "device_peak_mb": 1500.0, "rss_peak_mb": None}
    rows = [{**base, "method": "cslp+fgmres", "iterations": 500},
            {**base, "method": "learned-cslp+fgmres", "iterations": 250, "network_s": 2.0},
            {**base, "medium": "checkerboard", "method": "cslp+fgmres", "iterations": 3000, "converged": False,
             "rel_residual": 9e-4}]
    text = gpu_table(rows)
    assert "| 1024 | layered | 500 it, 10.0 s (coarse LU 5.0 s), GPU 1500 MB + host - |" in text
    assert "network 2.0 s" in text and text.splitlines()[2].endswith("| 0.50 |")
    assert "| 1024 | checkerboard (OOD) | not converged: 3000 it, true residual 9.0e-04, 10 s | not run |  |" in text
