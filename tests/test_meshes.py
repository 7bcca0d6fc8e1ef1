import numpy as np
import pytest

import meshes
import dolfinx.fem as fem


def test_unit_square_boundaries_cover_the_boundary():
    m = meshes.unit_square(6)
    assert dict(m.boundaries) == {"left": 1, "right": 2, "bottom": 3, "top": 4}
    for name in m.boundaries:
        assert len(m.facets(name)) == 6
    assert m.num_cells == 72 and m.num_vertices == 49
    assert m.hmax() == pytest.approx(np.sqrt(2) / 6)


def test_rectangle_and_quads():
    m = meshes.rectangle((0, 0), (2, 1), 4, 2, cell_type="quadrilateral")
    assert m.num_cells == 8
    assert len(m.facets("bottom")) == 4 and len(m.facets("left")) == 2


def test_unit_cube_six_sides():
    m = meshes.unit_cube(3)
    assert sorted(m.boundaries) == ["back", "bottom", "front", "left", "right", "top"]
    for name in m.boundaries:
        assert len(m.facets(name)) == 2 * 9  # two triangles per square face


def test_mesh_is_immutable_and_with_boundaries_copies():
    m = meshes.unit_square(8)
    with pytest.raises(Exception):
        m.boundaries["x"] = 3
    with pytest.raises(Exception):
        m.mesh = None
    m2 = m.with_boundaries({"inlet": lambda x: np.isclose(x[0], 0.0) & (x[1] <= 0.5 + 1e-12)})
    assert "inlet" not in m.boundaries and len(m.facets("left")) == 8
    assert len(m2.facets("inlet")) == 4 and len(m2.facets("left")) == 4
    # a name that loses every facet disappears
    m3 = m.with_boundaries({"west": lambda x: np.isclose(x[0], 0.0)})
    assert "left" not in m3.boundaries and len(m3.facets("west")) == 8


def test_unknown_boundary_lists_valid_names():
    m = meshes.unit_square(2)
    with pytest.raises(ValueError, match=r"'lft'.*bottom, left, right, top"):
        m.facets("lft")


def test_with_boundaries_rejects_empty_selection():
    with pytest.raises(ValueError, match="selects no boundary facet"):
        meshes.unit_square(2).with_boundaries({"inside": lambda x: np.isclose(x[0], 0.5)})


@pytest.mark.parametrize("n", [4, 7, 16])
def test_gridview_round_trip_exact(n, rng):
    m = meshes.unit_square(n)
    view = meshes.GridView(m)
    assert view.shape == (n + 1, n + 1)
    a = rng.standard_normal((3, n + 1, n + 1))
    assert np.array_equal(view.to_grid(view.to_dofs(a)), a)
    d = rng.standard_normal(view.to_dofs(a[0]).shape)
    assert np.array_equal(view.to_dofs(view.to_grid(d)), d)


def test_gridview_orientation_matches_coordinates():
    m = meshes.rectangle((0, 0), (2, 1), 8, 4)
    view = meshes.GridView(m)
    V = view.space
    u = fem.Function(V)
    u.interpolate(lambda x: x[0] + 10 * x[1])
    X, Y = view.coordinates()
    assert view.shape == (5, 9)
    np.testing.assert_allclose(view.to_grid(u), X + 10 * Y, atol=1e-13)


def test_detached_gridview_maps_the_same_without_the_mesh(rng):
    view = meshes.GridView(meshes.unit_square(6))
    free = view.detached()
    assert free.space is None and view.space is not None
    a = rng.standard_normal((7, 7))
    assert np.array_equal(free.to_dofs(a), view.to_dofs(a))
    with pytest.raises(ValueError, match="detached"):
        free.function(a)


def test_release_memory_returns_the_heaps_free_pages():
    """Freed small allocations (a mesh's) stay resident in glibc's heap until ``release_memory`` trims it:
    in a fresh process, 320 MB of 16 KB arrays, half of them freed (so the heap's top cannot shrink)."""
    import subprocess
    import sys

    code = (
        "import gc, numpy as np\n"
        "from solvers.limits import release_memory, resident_mb\n"
        "before = resident_mb()\n"
        "chunks = [np.ones(2000) for _ in range(20000)]\n"
        "grown = resident_mb()\n"
        "del chunks[::2]\n"
        "gc.collect()\n"
        "kept = resident_mb()\n"
        "release_memory()\n"
        "print(before, grown, kept, resident_mb())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    before, grown, kept, after = map(float, out.split())
    assert grown > before + 250 and kept > grown - 50  # measured: 110, 418, 418 MB
    assert after < kept - 50                          # measured: 306 MB


def test_gridview_rejects_wrong_shapes_and_spaces():
    m = meshes.unit_square(4)
    view = meshes.GridView(m)
    with pytest.raises(ValueError, match=r"\(6, 6\).*\(\.\.\., 5, 5\)"):
        view.to_dofs(np.zeros((6, 6)))
    with pytest.raises(ValueError, match="degree-1"):
        meshes.GridView(fem.functionspace(m.mesh, ("Lagrange", 2)))


def test_xdmf_round_trip_keeps_names(tmp_path):
    m = meshes.unit_square(5).with_boundaries({"inlet": lambda x: np.isclose(x[1], 0.0) & (x[0] < 0.41)})
    V = fem.functionspace(m.mesh, ("Lagrange", 1))
    u = fem.Function(V)
    u.interpolate(lambda x: x[0])
    meshes.write(tmp_path / "m.xdmf", m, {"u": u})
    r = meshes.read(tmp_path / "m.xdmf")
    assert dict(r.boundaries) == dict(m.boundaries)
    for name in m.boundaries:
        assert len(r.facets(name)) == len(m.facets(name))
    assert not list(tmp_path.glob("*.tmp.*"))


def test_vtu_point_data(tmp_path):
    import meshio

    m = meshes.unit_square(4)
    V = fem.functionspace(m.mesh, ("Lagrange", 2))
    u = fem.Function(V)
    u.interpolate(lambda x: x[0] * x[1])
    meshes.write(tmp_path / "u.vtu", m, {"u": u})
    out = meshio.read(tmp_path / "u.vtu")
    np.testing.assert_allclose(out.point_data["u"], out.points[:, 0] * out.points[:, 1], atol=1e-14)


def test_read_gmsh_physical_groups(tmp_path):
    from conftest import make_plate_with_hole

    path = make_plate_with_hole(tmp_path / "plate.msh", size=(2.0, 1.0), center=(1.0, 0.5), radius=0.2, h=0.1)
    m = meshes.read(path)
    assert m.gdim == 2
    assert dict(m.boundaries) == {"outer": 1, "hole": 2}
    assert dict(m.domains) == {"plate": 10}
    # the hole's perimeter, measured with the named boundary measure
    length = fem.assemble_scalar(fem.form(1.0 * m.ds(m.tag("hole"))))
    assert length == pytest.approx(2 * np.pi * 0.2, rel=1e-2)
