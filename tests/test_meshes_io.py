"""Issue 12, item 2: tags and boundary names survive each format's round trip (.msh, .xdmf, .vtu); fields come
back from the files the toolkit wrote."""

import numpy as np
import pytest

import dolfinx.fem as fem

import meshes

pytest.importorskip("gmsh")


def length(m, name):
    return fem.assemble_scalar(fem.form(fem.Constant(m.mesh, 1.0) * m.ds(m.tag(name))))


@pytest.mark.parametrize("suffix", [".msh", ".xdmf", ".vtu"])
@pytest.mark.parametrize("make", [lambda: meshes.rectangle_with_holes(0.15, holes=[(0.3, 0.3, 0.1), (0.7, 0.6, 0.15)]),
                                  lambda: meshes.box(0.5),
                                  lambda: meshes.unit_square(3, cell_type="quadrilateral")],
                         ids=["plate", "box", "quads"])
def test_tags_and_names_survive_the_round_trip(tmp_path, suffix, make):
    m = make()
    r = meshes.read(meshes.write(tmp_path / f"m{suffix}", m))
    assert dict(r.boundaries) == dict(m.boundaries) and dict(r.domains) == dict(m.domains)
    assert r.num_cells == m.num_cells and r.tdim == m.tdim
    for name in m.boundaries:
        assert len(r.facets(name)) == len(m.facets(name))
        assert length(r, name) == pytest.approx(length(m, name), rel=1e-12)
    if m.domains:
        assert len(r.cell_tags.find(10)) == r.num_cells


@pytest.mark.parametrize("suffix", [".xdmf", ".vtu"])
def test_fields_come_back(tmp_path, suffix):
    m = meshes.l_shape(0.3)
    u = fem.Function(fem.functionspace(m.mesh, ("Lagrange", 2)))
    u.interpolate(lambda x: x[0] ** 2 - x[1])
    w = fem.Function(fem.functionspace(m.mesh, ("Lagrange", 1, (2,))))
    w.interpolate(lambda x: np.stack([x[1], -x[0]]))
    path = meshes.write(tmp_path / f"f{suffix}", m, {"u": u, "w": w})
    r = meshes.read(path)
    fields = meshes.read_fields(path, r)
    x = fields["u"].function_space.tabulate_dof_coordinates()
    assert np.abs(fields["u"].x.array - (x[:, 0] ** 2 - x[:, 1])).max() < 1e-12  # nodal values of the P2 field
    wv = fields["w"].x.array.reshape(-1, 2)
    xw = fields["w"].function_space.tabulate_dof_coordinates()
    assert np.abs(wv - np.stack([xw[:, 1], -xw[:, 0]], axis=1)).max() < 1e-12
    assert dict(r.boundaries) == {"outer": 1, "notch": 2}


def test_msh_holds_no_fields_and_fields_need_the_same_mesh(tmp_path):
    m = meshes.l_shape(0.5)
    u = fem.Function(fem.functionspace(m.mesh, ("Lagrange", 1)))
    with pytest.raises(ValueError, match="write fields to .xdmf or .vtu"):
        meshes.write(tmp_path / "m.msh", m, {"u": u})
    path = meshes.write(tmp_path / "u.vtu", m, {"u": u})
    with pytest.raises(ValueError, match="read the mesh from the same file"):
        meshes.read_fields(path, meshes.l_shape(0.25))
