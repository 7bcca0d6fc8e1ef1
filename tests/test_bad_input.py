"""Bad input raises ValueError naming the bad value."""

import numpy as np
import pytest
import scipy.sparse as sp

import meshes
import solvers
from solvers import Dirichlet


@pytest.fixture(scope="module")
def mesh():
    return meshes.unit_square(4)


@pytest.mark.parametrize("a", [np.nan, np.inf, -1.0, 0.0])
def test_darcy_rejects_bad_constant(mesh, a):
    with pytest.raises(ValueError, match="coefficient 'a'"):
        solvers.Darcy(mesh, a=a)


def test_darcy_rejects_nan_grid_and_names_entry(mesh):
    a = np.ones((5, 5))
    a[2, 3] = np.nan
    with pytest.raises(ValueError, match=r"'a' has non-finite values"):
        solvers.Darcy(mesh, a=a)


def test_darcy_rejects_negative_callable(mesh):
    with pytest.raises(ValueError, match=r"'a' must be positive everywhere, its minimum is -0.5"):
        solvers.Darcy(mesh, a=lambda x: x[0] - 0.5)


def test_darcy_rejects_wrong_grid_shape(mesh):
    with pytest.raises(ValueError, match=r"grid shape \(4, 4\); this mesh needs \(5, 5\)"):
        solvers.Darcy(mesh, a=np.ones((4, 4)))


def test_nan_forcing(mesh):
    with pytest.raises(ValueError, match="coefficient 'f'"):
        solvers.Poisson(mesh, f=lambda x: np.where(x[0] > 0.5, np.nan, 1.0))


def test_unknown_boundary_name(mesh):
    with pytest.raises(ValueError, match=r"unknown boundary name 'inlet'; this mesh has: bottom, left, right, top"):
        solvers.Poisson(mesh, bcs=[Dirichlet("inlet", 0.0)])


def test_two_conditions_on_one_boundary(mesh):
    with pytest.raises(ValueError, match="two conditions"):
        solvers.Poisson(mesh, bcs=[Dirichlet("left", 0.0), solvers.Neumann("left", 1.0)])


def test_nan_dirichlet_value(mesh):
    with pytest.raises(ValueError, match="Dirichlet value on 'left'"):
        solvers.Poisson(mesh, bcs=[Dirichlet("left", np.nan)]).assemble()


def test_elasticity_bad_poisson_ratio(mesh):
    with pytest.raises(ValueError, match="nu must lie in"):
        solvers.Elasticity(mesh, nu=0.5)


def test_helmholtz_bad_k(mesh):
    with pytest.raises(ValueError, match="wavenumber k"):
        solvers.Helmholtz(mesh, k=-1.0)


def test_mesh_generators_reject_bad_sizes():
    with pytest.raises(ValueError, match="n must be a positive integer"):
        meshes.unit_cube(0)
    with pytest.raises(ValueError, match="unknown cell_type 'hex'"):
        meshes.unit_square(4, cell_type="hex")


def test_complex_solution_to_function(mesh):
    system = solvers.Helmholtz(mesh, k=1.0).assemble()
    with pytest.raises(ValueError, match="complex solution"):
        system.function(np.zeros(system.A.shape[0], dtype=complex))
    with pytest.raises(ValueError, match="real-only"):
        system.to_petsc()


# -- a user trial (session 15): silent wrong answers in the Helmholtz assembly and the Dirichlet elimination ----------
def test_helmholtz_refuses_a_boundary_named_twice_as_absorbing():
    """Listed twice, a boundary's absorbing term was added twice (a different matrix, no error)."""
    with pytest.raises(ValueError, match="absorbing boundary 'right' is listed twice"):
        solvers.Helmholtz(meshes.unit_square(8), k=5.0, absorbing=["left", "right", "right"])


@pytest.mark.parametrize("k,message", [("5", "wavenumber k must be a real number, got '5'"),
                                       (5 + 1j, r"wavenumber k must be a real number, got \(5\+1j\)"),
                                       (True, "wavenumber k must be a real number, got True")])
def test_helmholtz_refuses_a_wavenumber_that_is_not_a_real_number(k, message):
    with pytest.raises(ValueError, match=message):
        solvers.Helmholtz(meshes.unit_square(8), k=k, absorbing=["right"])


def test_helmholtz_without_absorbing_boundaries_given_as_none():
    a = solvers.Helmholtz(meshes.unit_square(8), k=3.0, absorbing=None).assemble()
    b = solvers.Helmholtz(meshes.unit_square(8), k=3.0).assemble()
    assert abs(a.A - b.A).max() == 0


@pytest.mark.parametrize("arg", ["speed", "f"])
def test_a_complex_callable_coefficient_is_refused_not_made_real(arg):
    """A complex number was refused, a callable returning complex values silently lost its imaginary part."""
    value = (lambda x: (1 + 0.1j) + 0 * x[0])
    with pytest.raises(ValueError, match="the callable returned complex values"):
        solvers.Helmholtz(meshes.unit_square(8), k=5.0, absorbing=["right"], **{arg: value}).assemble()
    real = solvers.Helmholtz(meshes.unit_square(8), k=5.0, absorbing=["right"],
                             **{arg: lambda x: (1.0 + 0j) + 0 * x[0]}).assemble()  # imaginary part zero: fine
    assert np.isfinite(real.A.data).all()


@pytest.mark.parametrize("dofs,message", [([-1], r"dofs must be indices in \[0, 12\), got -1"),
                                          ([12], r"dofs must be indices in \[0, 12\), got 12"),
                                          ([1.5], "dofs must be integers, got float64")])
def test_eliminate_refuses_dofs_that_are_not_indices(dofs, message):
    """A negative dof wrapped around to the last row, a float one was truncated, one past the end gave a
    bare IndexError."""
    from solvers.dirichlet import eliminate

    with pytest.raises(ValueError, match=message):
        eliminate(sp.eye(12, format="csr") * 2, dofs, np.ones(12), 3.0)


def test_eliminate_sums_duplicate_entries_and_refuses_nan_values():
    """A constrained diagonal stored as two entries became 2 (each set to 1); NaN values went into b."""
    from solvers.dirichlet import eliminate

    A = sp.csr_matrix((np.array([2.0, 1.0, 1.0, 3.0]), np.array([0, 0, 1, 1]), np.array([0, 2, 4])), shape=(2, 2))
    Ae, be = eliminate(A, [0], np.ones(2), 5.0)
    assert np.allclose(Ae.toarray(), [[1, 0], [0, 4]]) and np.allclose(be, [5, 1])  # (1, 1) stored as 1 + 3
    with pytest.raises(ValueError, match="Dirichlet values must be finite"):
        eliminate(sp.eye(3, format="csr"), [0], np.ones(3), np.nan)


def test_eliminate_with_several_right_hand_sides_and_one_value():
    """A block of right-hand sides with one value per dof (or a scalar) failed to broadcast."""
    from solvers.dirichlet import eliminate

    A = sp.csr_matrix(np.array([[4.0, -1, 0], [-1, 4, -1], [0, -1, 4]]))
    B = np.ones((3, 2))
    for values in (2.0, [2.0]):
        _, bb = eliminate(A, [0], B, values)
        assert np.allclose(bb, [[2, 2], [3, 3], [1, 1]]), values
