"""The linear-solve API: every algorithm on SPD, non-symmetric and singular systems, caches, PETSc."""

import numpy as np
import pytest
import scipy.sparse as sp

import meshes
import solvers
from solvers import Dirichlet
from solvers.linear import (AMG, CG, FGMRES, GMRES, ILU, MINRES, BiCGStab, Direct, FlexibleCG, GeometricMG,
                            Jacobi, LinearProblem, PrecondParams, ReturnCode, SolveError, init, solve)
import solvers.linear as linear

RTOL = 1e-8


def algorithms():
    """Every registered algorithm (a new one is tested by adding it here)."""
    return {
        "cg": CG(), "cg+jacobi": CG(precond=Jacobi()), "cg+amg-sa": CG(precond=AMG("sa")),
        "cg+amg-rs": CG(precond=AMG("rs")), "fcg+amg": FlexibleCG(precond=AMG("sa")),
        "gmres": GMRES(restart=30), "gmres+ilu": GMRES(precond=ILU()), "fgmres+amg": FGMRES(precond=AMG("sa")),
        "bicgstab+jacobi": BiCGStab(precond=Jacobi()), "minres+amg": MINRES(precond=AMG("sa")),
        "direct-superlu": Direct(), "direct-mumps": Direct("mumps"),
        "petsc-cg+gamg": linear.PETScKSP("cg", "gamg"), "petsc-gmres+ilu": linear.PETScKSP("gmres", "ilu"),
        "cg+gamg": CG(precond=linear.GAMG()), "petsc-cg+python-amg": linear.PETScKSP("cg", AMG("sa")),
    }


SYMMETRIC_ONLY = {"cg", "cg+jacobi", "cg+amg-sa", "cg+amg-rs", "fcg+amg", "minres+amg", "cg+gamg"}


@pytest.fixture(scope="module")
def spd():
    s = solvers.Darcy(meshes.unit_square(24), a=lambda x: 1 + 10 * (x[0] > 0.5)).assemble()
    return LinearProblem(s.A, s.b)


@pytest.fixture(scope="module")
def nonsymmetric():
    s = solvers.ConvectionDiffusion(meshes.unit_square(24), eps=0.05, velocity=(1.0, 0.3), f=1.0).assemble()
    return LinearProblem(s.A, s.b)


@pytest.fixture(scope="module")
def singular():
    """Pure Neumann Poisson: singular (constants in the kernel); a consistent and an inconsistent rhs."""
    mesh = meshes.unit_square(16)
    s = solvers.Poisson(mesh, f=1.0, bcs=[]).assemble()
    ones = np.ones(s.A.shape[0])
    b_cons = s.b - ones * (s.b @ ones) / (ones @ ones)  # orthogonal to the kernel
    return s.A, b_cons, s.b


def check_invariant(sol, problem, rtol=RTOL):
    """Success must mean a small true residual (here: within 100x of the request)."""
    r = np.linalg.norm(problem.b - problem.A @ sol.x) / np.linalg.norm(problem.b)
    assert sol.residual == pytest.approx(r, rel=1e-6, abs=1e-14)
    if sol.retcode is ReturnCode.Success:
        assert r <= 100 * rtol


@pytest.mark.parametrize("name", list(algorithms()))
def test_spd(name, spd):
    sol = solve(spd, algorithms()[name], rtol=RTOL, maxiter=5000)
    assert sol.retcode is ReturnCode.Success, sol.message
    assert sol.residual <= 10 * RTOL
    check_invariant(sol, spd)
    assert sol.stats["setup_s"] >= 0 and sol.stats["solve_s"] > 0


@pytest.mark.parametrize("name", list(algorithms()))
def test_nonsymmetric(name, nonsymmetric):
    sol = solve(nonsymmetric, algorithms()[name], rtol=RTOL, maxiter=3000)
    check_invariant(sol, nonsymmetric)
    if name in SYMMETRIC_ONLY:
        assert sol.retcode is ReturnCode.Breakdown and "symmetric" in sol.message
    elif name in ("petsc-cg+gamg", "petsc-cg+python-amg"):
        pass  # PETSc's CG does not check symmetry; the invariant above still holds
    else:
        assert sol.retcode is ReturnCode.Success, sol.message


@pytest.mark.parametrize("name", list(algorithms()))
def test_singular(name, singular):
    A, b_cons, b_incons = singular
    alg = algorithms()[name]
    cons = solve(LinearProblem(A, b_cons), alg, rtol=RTOL, maxiter=2000)
    check_invariant(cons, LinearProblem(A, b_cons))
    if name.startswith(("cg", "fcg", "minres", "gmres", "fgmres")) and "amg" not in name:
        # Krylov methods handle consistent singular systems. With AMG the preconditioner is only
        # semi-definite (singular coarse solve): a round-off-level r^T M r < 0 near convergence is an
        # honest Breakdown there, which the invariant above already keeps from being a wrong answer.
        assert cons.retcode is ReturnCode.Success, cons.message
    incons = solve(LinearProblem(A, b_incons), alg, rtol=RTOL, maxiter=300)
    assert incons.retcode is not ReturnCode.Success  # no solution exists: never claim one
    assert incons.retcode in (ReturnCode.MaxIters, ReturnCode.Breakdown, ReturnCode.Diverged)


def test_cg_on_indefinite_symmetric_matrix_breaks_down():
    A = sp.diags([1.0, 2.0, -1.0, 3.0]).tocsr()
    sol = solve(LinearProblem(A, np.ones(4)), CG())
    assert sol.retcode is ReturnCode.Breakdown
    assert "not positive definite" in sol.message


def test_cg_with_indefinite_preconditioner_breaks_down(spd):
    class Negative(linear.Preconditioner):
        def apply(self, r):
            return -r

    sol = solve(spd, CG(precond=Negative()))
    assert sol.retcode is ReturnCode.Breakdown and "preconditioner" in sol.message


def test_raise_on_failure(spd):
    with pytest.raises(SolveError, match="MaxIters"):
        solve(spd, CG(), maxiter=3, raise_on_failure=True)
    assert solve(spd, CG(), maxiter=3).retcode is ReturnCode.MaxIters


def test_invalid_input():
    A = sp.identity(4, format="csr")
    assert solve(LinearProblem(A, np.ones(3)), CG()).retcode is ReturnCode.InvalidInput
    b = np.ones(4)
    b[2] = np.nan
    sol = solve(LinearProblem(A, b), CG())
    assert sol.retcode is ReturnCode.InvalidInput and "non-finite" in sol.message
    Z = sp.csr_matrix(np.diag([1.0, 0.0, 1.0, 1.0]))
    sol = solve(LinearProblem(Z, np.ones(4)), CG(precond=Jacobi()))
    assert sol.retcode is ReturnCode.InvalidInput and "rows [1]" in sol.message
    with pytest.raises(ValueError, match="tolerances"):
        init(LinearProblem(A, np.ones(4)), CG(), rtol=0.0, atol=0.0)


@pytest.mark.parametrize("kind", ["sa", "rs"])
def test_amg_cg_iterations_bounded_under_refinement(kind):
    its = {}
    for n in (64, 512):
        s = solvers.Poisson(meshes.unit_square(n)).assemble()
        sol = solve(LinearProblem(s.A, s.b), CG(precond=AMG(kind)), rtol=RTOL)
        assert sol.converged
        its[n] = sol.iterations
    assert its[512] <= 1.6 * its[64] + 2, its
    assert its[512] <= 30, its


def test_geometric_mg_iterations_bounded():
    its = []
    for n in (32, 128):
        mesh = meshes.unit_square(n)
        s = solvers.Poisson(mesh).assemble()
        sol = solve(LinearProblem(s.A, s.b), CG(precond=GeometricMG(meshes.GridView(mesh))), rtol=RTOL)
        assert sol.converged, sol.message
        its.append(sol.iterations)
    assert its[1] <= its[0] + 2 and its[1] <= 12, its


def test_real_preconditioners_take_complex_vectors():
    """A linear preconditioner built on a real matrix applies to a complex vector by its real and imaginary
    parts (pyamg's and the geometric cycle's kernels are real: a raw TypeError before), so a real system with
    a complex right-hand side solves with them, inside GMRES and inside deflation alike."""
    from solvers.linear.preconditioners import TwoLevelDeflation

    mesh = meshes.unit_square(32)
    s = solvers.Poisson(mesh).assemble()
    b = s.b + 1j * np.roll(s.b, 7)
    grid = meshes.GridView(mesh)
    for pc in (GeometricMG(grid), AMG(), TwoLevelDeflation(GeometricMG(grid), interpolation="linear")):
        alg = GMRES(precond=pc) if not isinstance(pc, TwoLevelDeflation) else FGMRES(precond=pc)
        sol = solve(LinearProblem(s.A, b, p=PrecondParams(grid=grid)), alg, rtol=RTOL)
        assert sol.converged and np.linalg.norm(s.A @ sol.x - b) <= RTOL * np.linalg.norm(b) * 1.01, (pc, sol.message)
        assert sol.iterations <= 30, (pc, sol.iterations)


def test_amg_hierarchy_vcycle_matches_pyamg(rng):
    s = solvers.Poisson(meshes.unit_square(32)).assemble()
    pc = AMG("sa").setup(s.A)
    h = pc.hierarchy
    assert len(h.levels) == len(pc.ml.levels) and h.operator_complexity() > 1
    r = rng.standard_normal(s.A.shape[0])
    np.testing.assert_allclose(h.vcycle(r), pc.apply(r), rtol=1e-10, atol=1e-12)
    assert "operator complexity" in repr(h)


def test_vcycle_without_smoothers_leaves_the_callers_guess_alone(rng):
    """The cycle updates its iterate in place (memory at n = 2048); a guess given without a smoother to
    take it over must come back untouched, and the cycle must equal the out-of-place formula."""
    from solvers.linear.hierarchy import galerkin_hierarchy, vcycle

    A = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(31, 31), format="csr")
    P = sp.lil_matrix((31, 15))            # linear interpolation from every second node
    for j in range(15):
        P[2 * j: 2 * j + 3, j] = np.array([[0.5], [1.0], [0.5]])
    P = P.tocsr()
    h = galerkin_hierarchy(A, [P], None)
    b, x0 = rng.standard_normal(31), rng.standard_normal(31)
    guess = x0.copy()
    x = vcycle(h, b, guess)
    np.testing.assert_array_equal(guess, x0)
    Ac = (P.T @ A @ P).toarray()
    expected = x0 + P @ np.linalg.solve(Ac, P.T @ (b - A @ x0))
    np.testing.assert_allclose(x, expected, rtol=1e-12)


def test_cache_reuses_setup_and_rebuilds_on_new_matrix(spd, rng):
    cache = init(spd, CG(precond=AMG("sa")), rtol=RTOL)
    s1 = cache.solve()
    s2 = cache.solve()
    assert cache.setup_count == 1 and s2.stats["setup_s"] == 0.0
    np.testing.assert_array_equal(s1.x, s2.x)
    b = rng.standard_normal(spd.A.shape[0])
    s3 = cache.solve(b)
    assert s3.converged and np.linalg.norm(b - spd.A @ s3.x) <= 10 * RTOL * np.linalg.norm(b)
    assert cache.setup_count == 1
    cache.A = 2.0 * spd.A
    s4 = cache.solve()
    assert cache.setup_count == 2
    np.testing.assert_allclose(s4.x, 0.5 * s1.x, rtol=1e-6, atol=1e-12)


def test_direct_cache_factorizes_once(spd, rng):
    cache = init(spd, Direct())
    for _ in range(3):
        b = rng.standard_normal(spd.A.shape[0])
        assert cache.solve(b).residual < 1e-12
    assert cache.setup_count == 1


def test_petsc_and_scipy_paths_agree(spd):
    ref = solve(spd, Direct(), rtol=1e-12).x
    for alg in (linear.PETScKSP("cg", "gamg"), CG(precond=AMG("sa")), linear.PETScKSP("cg", AMG("sa"))):
        x = solve(spd, alg, rtol=1e-10).x
        assert np.linalg.norm(x - ref) / np.linalg.norm(ref) < 1e-8
    x = solve(spd, Direct("mumps", symmetric=True)).x
    assert np.linalg.norm(x - ref) / np.linalg.norm(ref) < 1e-12


def test_petsc_python_pc_same_iterations_as_scipy_cg(spd):
    a = solve(spd, CG(precond=Jacobi()), rtol=RTOL)
    b = solve(spd, linear.PETScKSP("cg", Jacobi()), rtol=RTOL)
    assert abs(a.iterations - b.iterations) <= 1
    assert b.converged


def test_petsc_problem_from_system():
    s = solvers.Poisson(meshes.unit_square(16)).assemble()
    A, b = s.to_petsc()
    sol = solve(LinearProblem(A, b), linear.PETScKSP("cg", "gamg"), rtol=1e-10)
    assert sol.converged and sol.residual < 1e-9
    ref = solve(LinearProblem(s.A, s.b), Direct()).x
    assert np.linalg.norm(sol.x.array - ref) < 1e-8 * np.linalg.norm(ref)
    assert solve(LinearProblem(A, b), CG()).retcode is ReturnCode.InvalidInput


def test_complex_helmholtz_gmres():
    s = solvers.Helmholtz(meshes.unit_square(32), k=4.0, absorbing=["right"], bcs=[Dirichlet("left", 1.0)]).assemble()
    sol = solve(LinearProblem(s.A, s.b), GMRES(precond=ILU()), rtol=1e-10)
    assert sol.converged
    X = s.space.tabulate_dof_coordinates()
    assert np.abs(sol.x - np.exp(4j * X[:, 0])).max() < 2e-2


def test_callback_sees_every_iteration(spd):
    seen = []
    sol = solve(spd, CG(precond=Jacobi()), callback=lambda k, x, r: seen.append((k, r)))
    assert [k for k, _ in seen] == list(range(1, sol.iterations + 1))
    np.testing.assert_allclose([r for _, r in seen], sol.residuals[1:])


def test_complex_direct_through_real_mumps():
    """PETSc is real here: a complex system goes to MUMPS as its real equivalent and matches SuperLU."""
    s = solvers.Helmholtz(meshes.unit_square(24), k=12.0, absorbing=["right", "top"],
                          bcs=[Dirichlet("left", 1.0)]).assemble()
    ref = solve(LinearProblem(s.A, s.b), Direct()).x
    sol = solve(LinearProblem(s.A, s.b), Direct("mumps"))
    assert sol.converged and sol.residual < 1e-12
    assert np.abs(sol.x - ref).max() < 1e-10 * np.abs(ref).max()


def test_complex_symmetric_matrix_goes_to_mumps_as_ldlt():
    """A complex-symmetric matrix (Helmholtz) is factorized as L D L^T of its real-symmetric equivalent, a
    non-symmetric one by LU; both match SuperLU."""
    from solvers.linear.direct import complex_symmetric as is_symmetric

    s = solvers.Helmholtz(meshes.unit_square(24), k=12.0, absorbing=["left", "right", "top", "bottom"]).assemble()
    assert is_symmetric(s.A) and not is_symmetric(s.A + 1e-3 * sp.eye(s.A.shape[0], k=1))
    b = np.random.default_rng(0).standard_normal(s.A.shape[0]) + 1j
    for A in (s.A, (s.A + 1e-3 * sp.eye(s.A.shape[0], k=1)).tocsr()):
        state = Direct("mumps").setup(A)
        assert state.ksp_state[0].getPC().getType() == ("cholesky" if is_symmetric(A) else "lu")
        ref = solve(LinearProblem(A, b), Direct()).x
        sol = solve(LinearProblem(A, b), Direct("mumps"))
        assert sol.converged and np.abs(sol.x - ref).max() < 1e-10 * np.abs(ref).max()


def test_complex_matrix_goes_to_mumps_as_interleaved_2x2_blocks():
    """The real equivalent pairs each unknown's real and imaginary parts (block (ar, ai; ai, -ar)), solves
    with the pairs of ``b`` as they lie in memory, and MUMPS analyses it by 2 x 2 blocks (ICNTL(15) = -2),
    unless the caller's options say otherwise."""
    from solvers.linear.direct import real_equivalent

    rng = np.random.default_rng(3)
    A = (sp.random(40, 40, 0.1, random_state=1) + 1j * sp.random(40, 40, 0.1, random_state=2) + 4 * sp.eye(40)).tocsr()
    x = rng.standard_normal(40) + 1j * rng.standard_normal(40)
    M = real_equivalent(A)
    assert M.shape == (80, 80) and M.nnz == 4 * A.nnz
    np.testing.assert_allclose(M @ np.conj(x).view(np.float64), (A @ x).view(np.float64), atol=1e-12)
    np.testing.assert_allclose(M[2 * 5:2 * 5 + 2, 2 * 5:2 * 5 + 2].toarray(),
                               [[A[5, 5].real, A[5, 5].imag], [A[5, 5].imag, -A[5, 5].real]])
    state = Direct("mumps").setup(A)
    assert state.ksp_state[0].getPC().getFactorMatrix().getMumpsIcntl(15) == -2
    sol = solve(LinearProblem(A, A @ x), Direct("mumps"))
    assert sol.converged and np.abs(sol.x - x).max() < 1e-12
    own = Direct("mumps", options={"mat_mumps_icntl_15": 0}).setup(A)
    assert own.ksp_state[0].getPC().getFactorMatrix().getMumpsIcntl(15) == 0
    real = Direct("mumps").setup(sp.csr_matrix(A.real + 4 * sp.eye(40)))
    assert real.ksp_state[0].getPC().getFactorMatrix().getMumpsIcntl(15) == 0


def test_direct_solvers_leave_the_callers_matrix_alone():
    """A CSR matrix with unsorted indices and duplicates shares its index arrays with another matrix: solving
    with either backend (complex through the real equivalent, real through PETSc) must not sort or sum them
    in place (a user trial found the other matrix's values moved)."""
    indptr, idx = np.array([0, 2, 4, 6], np.int32), np.array([1, 0, 1, 2, 2, 0], np.int32)
    for dtype in (complex, float):
        A1 = sp.csr_matrix((np.array([1, 4, 5, 1j, 6, 2]).astype(dtype) if dtype is complex
                            else np.array([1, 4, 5, 1, 6, 2], float), idx, indptr), shape=(3, 3))
        A2 = sp.csr_matrix((np.array([2, 8, 9, 3, 7, 1], dtype=dtype), idx, indptr), shape=(3, 3))
        before, ref = A2.toarray(), np.linalg.solve(A1.toarray(), np.ones(3))
        for alg in (Direct("mumps"), Direct("mumps", symmetric=True), Direct()):
            sol = solve(LinearProblem(A1, np.ones(3)), alg)
            if not (alg.symmetric and dtype is float):  # A1 is not symmetric: Cholesky may fail, LU must not
                assert np.abs(sol.x - ref).max() < 1e-12, alg
            assert np.array_equal(A2.toarray(), before), alg
            assert np.array_equal(idx, [1, 0, 1, 2, 2, 0]), alg


def test_symmetry_test_is_per_entry_not_relative_to_the_largest():
    """A non-symmetric block next to a much larger symmetric one is not complex symmetric: LU, not L D L^T
    (judged against max |A| it passed and the factorization was wrong)."""
    B = sp.csr_matrix(np.array([[4 + 1j, 1], [-1, 3 - 2j]]))
    A = sp.block_diag([1e14 * sp.identity(2), B], format="csr").astype(complex)
    assert Direct("mumps").setup(A).ksp_state[0].getPC().getType() == "lu"
    sol = solve(LinearProblem(A, np.ones(4)), Direct("mumps"))
    assert sol.converged and np.abs(sol.x - np.linalg.solve(A.toarray(), np.ones(4))).max() < 1e-14
    s = solvers.Helmholtz(meshes.unit_square(24), k=12.0, absorbing=["left", "right", "top", "bottom"]).assemble()
    assert Direct("mumps").setup(s.A).ksp_state[0].getPC().getType() == "cholesky"


def test_direct_real_matrix_with_complex_or_block_right_hand_sides():
    """A real factorization applied to a complex vector solves its real and imaginary parts (as spsolve does),
    and a block of right-hand sides column by column, in both backends and as a preconditioner."""
    from solvers.linear.preconditioners import DirectPreconditioner

    A = (sp.diags([-1.0, 2.5, -1.0], [-1, 0, 1], shape=(30, 30))).tocsr()
    Ac = (A + 1j * sp.identity(30)).tocsr()
    rng = np.random.default_rng(1)
    b = rng.standard_normal(30) + 1j * rng.standard_normal(30)
    R = rng.standard_normal((30, 3))
    for backend in ("mumps", "superlu"):
        sol = solve(LinearProblem(A, b), Direct(backend))
        assert sol.converged and np.abs(A @ sol.x - b).max() < 1e-12, backend
        for M in (A, Ac):
            pc = DirectPreconditioner(Direct(backend)).setup(M)
            assert np.abs(M @ pc.apply(b) - b).max() < 1e-12, backend
            X = pc.apply(R)
            assert X.shape == (30, 3) and np.abs(M @ X - R).max() < 1e-12, backend


def test_direct_odd_formats_and_bad_options():
    """A complex dia_matrix factorizes (the symmetry test took .max() of it); an option MUMPS rejects is a
    ValueError naming it, not a 'factorization failed' Breakdown."""
    A = sp.dia_matrix(sp.diags([1.0, 4 + 1j, 1.0], [-1, 0, 1], shape=(50, 50)))
    sol = solve(LinearProblem(A, np.ones(50)), Direct("mumps"))
    assert sol.converged and np.abs(A @ sol.x - 1).max() < 1e-12
    with pytest.raises(ValueError, match="mat_mumps_icntl_7"):
        Direct("mumps", options={"mat_mumps_icntl_7": 1}).setup(A.tocsr())


def test_nan_matrix_is_invalid_input():
    A = sp.identity(4, format="csr") * 2.0
    A.data[1] = np.nan
    sol = solve(LinearProblem(A, np.ones(4)), CG())
    assert sol.retcode is ReturnCode.InvalidInput and "A has non-finite" in sol.message
