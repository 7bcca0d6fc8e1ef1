"""Issue 9, "Structure (one way to do each thing)": one Dirichlet elimination, registries instead of string
dispatch, the CLI's light name lists agree with the registries, ``hybrid --help`` answers fast, typed state."""

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

import dolfinx.fem as fem
import ufl

import meshes
import solvers
from hybrid import names

BIN = Path(sys.executable).parent


# -- registries and the CLI's light name lists -----------------------------------------------------------------
def test_cli_names_match_registries():
    from hybrid.bench import solvers as bench_solvers  # noqa: F401 (the suites import)
    from hybrid.commands.bench import SUITES
    from hybrid.commands.solve import PDE_BUILDERS
    from hybrid.operators import MODELS
    from solvers.data import GENERATORS
    from solvers.linear.methods import METHODS

    assert names.PDES == tuple(PDE_BUILDERS)
    assert names.METHODS == tuple(METHODS)
    assert names.GENERATORS == tuple(GENERATORS)
    assert names.MODELS == tuple(MODELS)
    assert names.BENCH_SUITES == tuple(SUITES)
    from hybrid.precond.methods import LEARNED_METHODS

    assert names.LEARNED_METHODS == tuple(LEARNED_METHODS)


def test_help_is_fast_and_imports_nothing_heavy():
    """Before: 2.9 s (build_parser imported dolfinx and torch for the argparse choices)."""
    code = ("import sys, time; t = time.perf_counter(); from hybrid.cli import build_parser; build_parser(); "
            "print(time.perf_counter() - t); print(sorted(m for m in ('torch', 'dolfinx', 'petsc4py', 'pyamg') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[1] == "[]", out
    t = time.perf_counter()
    subprocess.run([str(BIN / "hybrid"), "--help"], capture_output=True, check=True)
    wall = time.perf_counter() - t
    print(f"hybrid --help: {wall:.3f} s (parser {float(out[0]):.3f} s)")
    assert wall < 1.0  # 0.5 s is the goal (0.05 s measured); slack for a loaded CI machine


def test_bench_problems_are_a_registry():
    from hybrid.bench import solvers as bench_solvers

    assert bench_solvers.PROBLEMS == tuple(bench_solvers.PROBLEM_MAKERS)
    with pytest.raises(ValueError, match="unknown benchmark problem 'x'; use one of poisson, darcy-rough"):
        bench_solvers.assemble("x", 4)


# -- one Dirichlet elimination -------------------------------------------------------------------------------------
def _dolfinx_reference(a, L, bcs):
    """dolfinx's own elimination: assemble_matrix(bcs=...), apply_lifting, set."""
    import dolfinx.la as la

    Am = fem.assemble_matrix(a, bcs=bcs)
    Am.scatter_reverse()
    A = Am.to_scipy().tocsr()
    bv = fem.assemble_vector(L)
    fem.apply_lifting(bv.array, [a], bcs=[bcs])
    bv.scatter_reverse(la.InsertMode.add)
    for bc in bcs:
        bc.set(bv.array)
    return A, bv.array[:A.shape[0]].copy()


@pytest.mark.parametrize("case", ["scalar", "vector"])
def test_eliminate_matches_dolfinx(case):
    from solvers.dirichlet import eliminate
    from solvers.problems.base import local_constrained

    mesh = meshes.unit_square(6)
    if case == "scalar":
        problem = solvers.Darcy(mesh, a=lambda x: 1 + x[0], f=lambda x: np.sin(3 * x[1]),
                                bcs=[solvers.Dirichlet("left", lambda x: 1 + x[1] ** 2), solvers.Dirichlet("top", 2.0),
                                     solvers.Neumann("right", 0.5)])
    else:
        problem = solvers.Elasticity(mesh, E=10.0, body_force=[0.0, -1.0],
                                     bcs=[solvers.Dirichlet("left", [0.1, -0.2])])
    a, L = (fem.form(f) for f in problem.full_forms())
    bcs = problem.dirichlet_bcs()
    A_ref, b_ref = _dolfinx_reference(a, L, bcs)
    Am = fem.assemble_matrix(a)
    Am.scatter_reverse()
    g = np.zeros(problem.space.dofmap.index_map.size_local * problem.space.dofmap.index_map_bs)
    for bc in bcs:
        bc.set(g)
    A_full = Am.to_scipy().tocsr()
    bv = fem.assemble_vector(L)
    A, b = eliminate(A_full, local_constrained(bcs), bv.array.copy(), g)
    assert A.nnz == A_ref.nnz  # the pattern is kept
    assert abs(A - A_ref).max() < 1e-12 and np.abs(b - b_ref).max() < 1e-12
    system = problem.assemble()  # the problems use it
    assert abs(system.A - A_ref).max() < 1e-12 and np.abs(system.b - b_ref).max() < 1e-12


def test_eliminate_complex_and_shared_by_every_path():
    from solvers.dirichlet import eliminate, lift

    A = sp.csr_matrix(np.array([[4, -1, 0], [-1, 4, -1], [0, -1, 4]], dtype=complex) + 1j * np.eye(3))
    Ae, be = eliminate(A, [0], np.ones(3, dtype=complex), [2 - 1j])
    assert np.allclose(Ae.toarray(), [[1, 0, 0], [0, 4 + 1j, -1], [0, -1, 4 + 1j]])
    assert np.allclose(be, [2 - 1j, 1 + (2 - 1j), 1])
    assert np.allclose(lift(A, np.zeros((3, 2)), [2], np.array([[1.0, 2.0]])), [[0, 0], [1, 2], [1, 2]])
    for module in ("solvers/problems/base.py", "solvers/problems/helmholtz.py", "solvers/data/p1.py",
                   "solvers/data/generators/base.py", "solvers/data/generators/eit.py"):
        text = (Path(solvers.__file__).parents[1] / module).read_text()
        assert "from ..dirichlet import" in text or "from ...dirichlet import" in text, module



def test_complex_combination_is_scipys_arithmetic_in_one_array():
    """``K - M - i B`` computed into one complex array (the assembly's peak at n = 2048) equals scipy's
    arithmetic on the same pattern, falls back to it where the patterns differ, and the Helmholtz system
    assembled with it is the three real forms' combination entry by entry."""
    from solvers.problems.helmholtz import complex_combination

    rng = np.random.default_rng(0)
    K = sp.random(40, 40, density=0.2, random_state=1, format="csr") + sp.eye(40, format="csr")
    M = K.copy()
    M.data = rng.standard_normal(M.nnz)
    B = K[:, :].tocoo()
    keep = rng.random(B.nnz) < 0.1
    B = sp.csr_matrix((rng.standard_normal(keep.sum()), (B.row[keep], B.col[keep])), shape=K.shape)
    ref = K.astype(complex) - M - 1j * B
    for Bx in (B, None):
        A = complex_combination(K, M, Bx)
        want = ref if Bx is not None else K.astype(complex) - M
        assert A.dtype == np.complex128 and abs(A - want).max() == 0.0
    outside = sp.csr_matrix(([2.0], ([0], [int(np.setdiff1d(np.arange(40), K[0].indices)[0])])), shape=K.shape)
    assert abs(complex_combination(K, M, outside) - (K.astype(complex) - M - 1j * outside)).max() == 0.0
    M2 = sp.random(40, 40, density=0.1, random_state=2, format="csr")  # another pattern
    assert abs(complex_combination(K, M2, B) - (K.astype(complex) - M2 - 1j * B)).max() == 0.0
    # the assembled system against the three forms combined by scipy
    mesh = meshes.unit_square(12)
    prob = solvers.Helmholtz(mesh, k=9.0, absorbing=["left", "top"], speed=lambda x: 1.0 + 0.3 * x[0])
    system = prob.assemble()
    V = prob.space
    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    kx = prob.k / prob.speed
    mats = [fem.assemble_matrix(fem.form(f)) for f in (ufl.inner(ufl.grad(u), ufl.grad(v)) * ufl.dx, kx**2 * u * v * ufl.dx,
            kx * u * v * mesh.ds(mesh.tag("left")) + kx * u * v * mesh.ds(mesh.tag("top")))]
    Kf, Mf, Bf = (m.to_scipy() for m in mats)
    A_ref = (Kf.astype(complex) - Mf - 1j * Bf).toarray()
    dofs = system.constrained  # Dirichlet u = 0 on right and bottom: identity rows and columns
    free = np.setdiff1d(np.arange(A_ref.shape[0]), dofs)
    assert len(dofs) > 0 and np.abs(system.A.toarray()[np.ix_(free, free)] - A_ref[np.ix_(free, free)]).max() < 1e-12
    assert np.abs(Bf).sum() > 0 and np.abs(system.A.toarray().imag).max() > 0


def test_eliminate_without_copy_and_without_dofs():
    from solvers.dirichlet import eliminate

    A = sp.csr_matrix(np.array([[4.0, -1, 0], [-1, 4, -1], [0, -1, 4]]))
    same, b = eliminate(A, [], np.ones(3), copy=False)
    assert np.shares_memory(same.data, A.data) and np.array_equal(b, np.ones(3))
    copied, _ = eliminate(A, [])
    assert not np.shares_memory(copied.data, A.data) and abs(copied - A).max() == 0
    Ae, be = eliminate(A, [0], np.ones(3), [2.0], copy=False)
    assert np.allclose(Ae.toarray(), [[1, 0, 0], [0, 4, -1], [0, -1, 4]]) and np.allclose(be, [2, 3, 1])  # lifted: 1 - (-1) 2


# -- typed state, public names ----------------------------------------------------------------------------------------
def test_algorithm_state_is_typed():
    from solvers.linear import CG, MINRES, Direct, Jacobi
    from solvers.linear.direct import FactorFailed, MumpsState
    from solvers.linear.krylov.cg import SymmetricState

    A = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(20, 20), format="csr")
    for alg in (CG(precond=Jacobi()), MINRES(precond=Jacobi())):
        state = alg.setup(A)
        assert isinstance(state, SymmetricState) and state.asymmetry == 0.0
    assert isinstance(Direct("mumps").setup(A), MumpsState)
    failed = Direct().setup(sp.csr_matrix((3, 3)))
    assert isinstance(failed, FactorFailed) and "singular" in failed.error
    assert not isinstance(failed, Exception)


def test_grid_of_dof_is_public():
    view = meshes.GridView(meshes.unit_square(4))
    grid = np.arange(25.0).reshape(5, 5)
    assert np.array_equal(view.to_dofs(grid), grid.ravel()[view.grid_of_dof])
    assert np.array_equal(view.grid_of_dof[view.dof_of_grid], np.arange(25))


def test_as_expression_is_a_table():
    from solvers import fields

    kinds = [convert.__name__ for _, convert in fields.CONVERSIONS]
    assert kinds == ["_none", "_bool", "_constant", "_function", "_ufl", "_array", "_callable"]
    mesh = meshes.unit_square(4)
    with pytest.raises(TypeError, match="coefficient 'a': cannot use a value of type dict"):
        fields.as_expression({}, mesh, "a")
    x = ufl.SpatialCoordinate(mesh.mesh)
    assert fields.as_expression(1 + x[0], mesh, "a", positive=True) is not None


def test_generators_registry_is_built_once():
    import solvers.data.generators as g

    assert list(g.GENERATORS) == ["darcy", "poisson", "darcy-rhs", "helmholtz", "eit"]
    for name, cls in g.GENERATORS.items():
        assert cls.name == name and issubclass(cls, g.GridProblem)
    source = "".join(p.read_text() for p in Path(g.__file__).parent.glob("*.py"))
    assert "GENERATORS.update" not in source
