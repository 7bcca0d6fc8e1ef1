"""Issue 12, item 4: sparse P1 transfer mesh -> grid and grid -> mesh, second order on smooth functions
(measured orders), exact on linear/bilinear ones, outside nodes marked."""

import numpy as np
import pytest

import dolfinx.fem as fem

import meshes
from meshes.transfer import grid_to_mesh, mesh_to_grid


def smooth(x):
    return np.sin(2 * x[0]) * np.cos(3 * x[1]) + x[0] * x[1] ** 2


def p1(mesh, f):
    u = fem.Function(fem.functionspace(mesh.mesh, ("Lagrange", 1)))
    u.interpolate(f)
    return u


def test_mesh_to_grid_is_second_order_and_marks_outside_nodes():
    mesh = meshes.l_shape(0.2)
    errors = []
    for level in range(3):
        if level:
            mesh = meshes.refine(mesh)
        t = mesh_to_grid(mesh, (41, 41))
        values = t.matrix @ p1(mesh, smooth).x.array
        pts = t.grid.points()
        errors.append(np.abs(values - smooth(pts.T))[t.inside].max())
        outside = (pts[:, 0] > 1e-12) & (pts[:, 1] < -1e-12)  # the cut-out quarter (its closed edges are inside)
        assert np.array_equal(~t.inside, outside) and np.all(values[~t.inside] == 0)
    orders = np.log2(np.array(errors[:-1]) / errors[1:])
    print("mesh -> grid max errors", errors, "orders", orders)
    assert np.all(orders > 1.7), orders


def test_grid_to_mesh_is_second_order():
    mesh = meshes.rectangle_with_holes(0.05, holes=[(0.4, 0.6, 0.15)])
    xd = fem.functionspace(mesh.mesh, ("Lagrange", 1)).tabulate_dof_coordinates()
    errors = []
    for n in (9, 17, 33, 65):
        G = grid_to_mesh(mesh, (n, n), extent=(0, 1, 0, 1))
        X, Y = np.meshgrid(np.linspace(0, 1, n), np.linspace(0, 1, n))
        errors.append(np.abs(G @ smooth([X.ravel(), Y.ravel()]) - smooth(xd.T)).max())
        assert np.allclose(G.sum(axis=1), 1.0)  # a partition of unity
    orders = np.log2(np.array(errors[:-1]) / errors[1:])
    print("grid -> mesh max errors", errors, "orders", orders)
    assert np.all(np.abs(orders - 2) < 0.3), orders


def test_round_trip_and_bad_input():
    mesh = meshes.disk(0.1)
    u = p1(mesh, smooth)
    t = mesh_to_grid(mesh, (65, 65), extent=(-1, 1, -1, 1))
    back = grid_to_mesh(mesh, (65, 65), extent=(-1, 1, -1, 1)) @ (t.matrix @ u.x.array)
    interior = np.hypot(*mesh.mesh.geometry.x[:, :2].T) < 0.95  # near the circle the grid's outside nodes are 0
    dofs = meshes.nodal.node_dofs(u.function_space)[interior]
    assert np.abs(back[dofs] - u.x.array[dofs]).max() < 2e-2
    with pytest.raises(ValueError, match="does not cover the mesh"):
        grid_to_mesh(mesh, (5, 5), extent=(0, 1, 0, 1))
    with pytest.raises(ValueError, match="scalar P1"):
        mesh_to_grid(fem.functionspace(mesh.mesh, ("Lagrange", 2)), (5, 5))
