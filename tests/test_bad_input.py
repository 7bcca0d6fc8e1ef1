"""Bad input raises ValueError naming the bad value."""

import numpy as np
import pytest

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
