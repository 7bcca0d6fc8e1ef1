"""Issue 9, finding 9: unreadable or unsuitable mesh files raise ValueError naming the file (never
``SystemExit``, never a silent 1-D mesh or a silent projection of a tilted surface)."""

import os

import numpy as np
import pytest

import meshes
from conftest import make_plate_with_hole
from hybrid.cli import main

gmsh = pytest.importorskip("gmsh")


def square_msh(path, cell_group=True, save_all=False, tilt=0.0, groups=True):
    """The unit square meshed by gmsh with boundary group 'outer' and cell group 'plate' (optional),
    rotated by ``tilt`` radians about the x-axis."""
    gmsh.initialize(["-v", "0"])
    try:
        gmsh.model.add("square")
        rect = gmsh.model.occ.addRectangle(0, 0, 0, 1, 1)
        if tilt:
            gmsh.model.occ.rotate([(2, rect)], 0, 0, 0, 1, 0, 0, tilt)
        gmsh.model.occ.synchronize()
        if groups:
            gmsh.model.addPhysicalGroup(1, [t for _, t in gmsh.model.getEntities(1)], 1, name="outer")
            if cell_group:
                gmsh.model.addPhysicalGroup(2, [t for _, t in gmsh.model.getEntities(2)], 10, name="plate")
        gmsh.option.setNumber("Mesh.CharacteristicLengthMax", 0.3)
        gmsh.option.setNumber("Mesh.SaveAll", int(save_all))
        gmsh.model.mesh.generate(2)
        gmsh.write(str(path))
    finally:
        gmsh.finalize()
    return path


@pytest.fixture(scope="module")
def plate(tmp_path_factory):
    return make_plate_with_hole(tmp_path_factory.mktemp("plate") / "plate.msh", h=0.2)


def read_error(path) -> str:
    with pytest.raises(ValueError) as e:
        meshes.read(path)
    assert str(path) in str(e.value), str(e.value)
    return str(e.value)


def test_plain_text_msh_is_a_value_error_naming_the_file(tmp_path):
    path = tmp_path / "notes.msh"
    path.write_text("hello world\n")
    assert "not a gmsh .msh file" in read_error(path)


def test_header_only_msh(tmp_path):
    path = tmp_path / "header.msh"
    path.write_text("$MeshFormat\n4.1 0 8\n$EndMeshFormat\n")
    assert "holds no mesh" in read_error(path)


def test_empty_msh(tmp_path):
    path = tmp_path / "empty.msh"
    path.write_bytes(b"")
    assert "not a gmsh .msh file" in read_error(path)


@pytest.mark.parametrize("fraction", [0.3, 0.5, 0.8])
def test_truncated_msh_names_the_file(plate, tmp_path, fraction):
    data = plate.read_bytes()
    path = tmp_path / f"cut{int(100 * fraction)}.msh"
    path.write_bytes(data[: int(len(data) * fraction)])
    assert "cannot read" in read_error(path)


def test_random_bytes_name_the_file(tmp_path):
    rng = np.random.default_rng(0)
    for suffix in (".msh", ".xdmf"):
        path = tmp_path / f"random{suffix}"
        path.write_bytes(rng.integers(0, 256, 4000, dtype=np.uint8).tobytes())
        read_error(path)
    path = tmp_path / "random2.msh"
    path.write_bytes(b"$MeshFormat\n" + os.urandom(2000))
    assert "cannot read" in read_error(path)


def test_boundary_groups_without_cell_group(tmp_path):
    msg = read_error(square_msh(tmp_path / "nocells.msh", cell_group=False))
    assert "no physical group of dimension 2" in msg and "'outer' (dimension 1)" in msg, msg
    msg = read_error(square_msh(tmp_path / "saveall.msh", cell_group=False, save_all=True))
    assert "no physical group of dimension 2" in msg, msg


def test_no_physical_groups(tmp_path):
    msg = read_error(square_msh(tmp_path / "nogroups.msh", groups=False))
    assert "no physical groups" in msg, msg


def test_valid_files_still_read(plate, tmp_path):
    m = meshes.read(plate)
    assert m.gdim == 2 and m.mesh.topology.cell_name() == "triangle" and sorted(m.boundaries) == ["hole", "outer"]
    tilted = meshes.read(square_msh(tmp_path / "tilted.msh", tilt=0.5))
    assert tilted.gdim == 3 and tilted.mesh.topology.dim == 2  # a surface in 3-D is a valid mesh to read


def test_generate_refuses_a_tilted_surface(tmp_path, capsys):
    msh = square_msh(tmp_path / "tilted.msh", tilt=0.5)
    out = tmp_path / "t.h5"
    rc = main(["generate", "darcy", "--samples", "2", "--mesh", str(msh), "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert f"hybrid generate: error: {msh}: data generation needs a flat mesh in the xy-plane" in err, err
    assert "z from 0 to 0.479" in err, err
    assert not out.exists()


def test_cli_reports_a_truncated_mesh(plate, tmp_path, capsys):
    path = tmp_path / "cut.msh"
    path.write_bytes(plate.read_bytes()[:1000])
    rc = main(["solve", "poisson", "--mesh", str(path)])
    err = capsys.readouterr().err
    assert rc == 2 and f"hybrid solve: error: {path}: cannot read" in err, err
