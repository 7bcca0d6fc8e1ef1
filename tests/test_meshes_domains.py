"""Issue 12, items 1-2: gmsh domains (areas and boundary lengths against exact values), refine keeping names,
quiet gmsh, import order, and the clear messages for a mesh without boundary groups or with unsupported cells."""

import subprocess
import sys

import numpy as np
import pytest

import dolfinx.fem as fem

import meshes
import solvers

gmsh = pytest.importorskip("gmsh")


def measure(m, name=None) -> float:
    one = fem.Constant(m.mesh, 1.0)
    form = one * m.dx if name is None else one * m.ds(m.tag(name))
    return m.comm.allreduce(fem.assemble_scalar(fem.form(form)))


def test_l_shape_area_and_boundary_lengths():
    m = meshes.l_shape(0.2)
    assert dict(m.boundaries) == {"outer": 1, "notch": 2} and dict(m.domains) == {"domain": 10}
    assert measure(m) == pytest.approx(3.0, rel=1e-12)
    assert measure(m, "outer") == pytest.approx(6.0, rel=1e-12)
    assert measure(m, "notch") == pytest.approx(2.0, rel=1e-12)
    assert 0.1 < m.hmax() <= 0.2 * 1.5  # h is gmsh's target edge length, not a hard bound


def test_disk_converges_to_the_circle():
    errors = []
    for h in (0.1, 0.05):  # (at h = 0.2 gmsh puts more points on the circle than h asks)
        m = meshes.disk(h, radius=0.5, center=(1.0, -1.0))
        errors.append((abs(measure(m) - np.pi / 4), abs(measure(m, "circle") - np.pi)))
        x = m.mesh.geometry.x
        assert np.hypot(x[:, 0] - 1, x[:, 1] + 1).max() == pytest.approx(0.5, abs=1e-12)
    (a0, l0), (a1, l1) = errors
    assert a0 < 1e-2 and l0 < 1e-2  # an inscribed polygon: second order in h
    assert np.log2(a0 / a1) == pytest.approx(2.0, abs=0.35) and np.log2(l0 / l1) == pytest.approx(2.0, abs=0.35)


def test_rectangle_with_holes_sides_and_holes():
    holes = [(0.5, 0.4, 0.1), (1.4, 0.6, 0.2)]
    m = meshes.rectangle_with_holes(0.05, p0=(0, 0), p1=(2, 1), holes=holes)
    assert list(m.boundaries) == ["left", "right", "bottom", "top", "holes"]
    for side, length in {"left": 1, "right": 1, "bottom": 2, "top": 2}.items():
        assert measure(m, side) == pytest.approx(length, rel=1e-12)
    assert measure(m, "holes") == pytest.approx(2 * np.pi * 0.3, rel=5e-3)
    assert measure(m) == pytest.approx(2 - np.pi * (0.1 ** 2 + 0.2 ** 2), rel=5e-3)
    with pytest.raises(ValueError, match="does not lie inside"):
        meshes.rectangle_with_holes(0.1, holes=[(0.95, 0.5, 0.1)])
    with pytest.raises(ValueError, match="overlap"):
        meshes.rectangle_with_holes(0.1, holes=[(0.4, 0.5, 0.15), (0.6, 0.5, 0.15)])


def test_box_faces():
    m = meshes.box(0.5, p0=(0, 0, 0), p1=(2, 1, 1))
    assert m.tdim == 3 and list(m.boundaries) == ["left", "right", "bottom", "top", "back", "front"]
    assert measure(m) == pytest.approx(2.0, rel=1e-12)
    for side, area in {"left": 1, "right": 1, "bottom": 2, "top": 2, "back": 2, "front": 2}.items():
        assert measure(m, side) == pytest.approx(area, rel=1e-12)


@pytest.mark.parametrize("make", [lambda: meshes.l_shape(0.3), lambda: meshes.box(0.5)], ids=["l_shape", "box"])
def test_refine_keeps_names_and_splits_every_cell(make):
    m = make()
    r = meshes.refine(m)
    assert dict(r.boundaries) == dict(m.boundaries) and dict(r.domains) == dict(m.domains)
    assert r.num_cells == m.num_cells * 2 ** m.tdim
    assert r.hmax() < 0.8 * m.hmax()  # dolfinx's Plaza refinement: edges halved, children not all similar
    for name in m.boundaries:
        assert measure(r, name) == pytest.approx(measure(m, name), rel=1e-12)
        assert len(r.facets(name)) == len(m.facets(name)) * 2 ** (m.tdim - 1)
    assert len(r.cell_tags.find(10)) == r.num_cells


def test_generators_and_read_are_quiet(tmp_path, capfd):
    m = meshes.rectangle_with_holes(0.2)
    from conftest import make_plate_with_hole

    path = make_plate_with_hole(tmp_path / "plate.msh", h=0.2)
    capfd.readouterr()  # the test helper's own gmsh output is not ours
    meshes.read(path)
    meshes.refine(m)
    out = capfd.readouterr()
    assert "Info" not in out.out + out.err, out


def square_without_boundary_groups(path, order=1):
    gmsh.initialize()
    gmsh.option.setNumber("General.Terminal", 0)
    try:
        gmsh.model.add("square")
        s = gmsh.model.occ.addRectangle(0, 0, 0, 1, 1)
        gmsh.model.occ.synchronize()
        gmsh.model.addPhysicalGroup(2, [s], 10, name="plate")
        gmsh.option.setNumber("Mesh.MeshSizeMax", 0.25)
        gmsh.model.mesh.generate(2)
        gmsh.model.mesh.setOrder(order)
        gmsh.write(str(path))
    finally:
        gmsh.finalize()
    return path


def test_missing_boundary_groups_warn_at_read_and_fail_clearly_at_assembly(tmp_path):
    """Before: no message at read, and CG+AMG returned Breakdown ('A is not positive definite')."""
    path = square_without_boundary_groups(tmp_path / "nob.msh")
    with pytest.warns(meshes.MissingBoundariesWarning, match=r"nob\.msh: no physical group of dimension 1"):
        m = meshes.read(path)
    with pytest.raises(ValueError, match="the mesh has no named boundaries .* pass bcs=\\[\\]"):
        solvers.Poisson(m, f=1.0)
    system = solvers.Poisson(m.with_boundaries({"all": lambda x: np.full(x.shape[1], True)}), f=1.0).assemble()
    assert len(system.constrained) > 0


def test_unsupported_cells_are_named(tmp_path):
    path = square_without_boundary_groups(tmp_path / "p2.msh", order=2)
    with pytest.raises(ValueError, match=r"p2\.msh: unsupported cells \(Triangle 6\)"):
        meshes.read(path)


@pytest.mark.parametrize("first", ["import dolfinx", "import ufl", "from petsc4py import PETSc",
                                   "import dolfinx.fem, ufl"])
def test_import_order_does_not_matter(first):
    """Before: `import dolfinx` before `meshes` failed with ImportError: libmpi.so.12 (scripts/mpi_first)."""
    code = f"{first}\nimport dolfinx.mesh, meshes\nprint(meshes.unit_square(2).num_cells)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "8", out.stderr[-2000:]
