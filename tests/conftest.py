import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import meshes  # noqa: E402,F401  (MPI before dolfinx)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def make_plate_with_hole(path, size=(1.0, 1.0), center=(0.5, 0.5), radius=0.15, h=0.05):
    """A gmsh rectangle with a circular hole; physical groups 'outer' (1), 'hole' (2), 'plate' (10)."""
    gmsh = pytest.importorskip("gmsh")
    gmsh.initialize(["-v", "0"])
    try:
        gmsh.model.add("plate")
        rect = gmsh.model.occ.addRectangle(0, 0, 0, *size)
        hole = gmsh.model.occ.addDisk(*center, 0, radius, radius)
        gmsh.model.occ.cut([(2, rect)], [(2, hole)])
        gmsh.model.occ.synchronize()
        inner, outer = [], []
        for dim, tag in gmsh.model.getEntities(1):
            com = gmsh.model.occ.getCenterOfMass(dim, tag)
            near = abs(com[0] - center[0]) < 1e-6 and abs(com[1] - center[1]) < 1e-6
            (inner if near else outer).append(tag)
        gmsh.model.addPhysicalGroup(1, outer, 1, name="outer")
        gmsh.model.addPhysicalGroup(1, inner, 2, name="hole")
        gmsh.model.addPhysicalGroup(2, [t for _, t in gmsh.model.getEntities(2)], 10, name="plate")
        gmsh.option.setNumber("Mesh.CharacteristicLengthMax", h)
        gmsh.model.mesh.generate(2)
        gmsh.write(str(path))
    finally:
        gmsh.finalize()
    return path


@pytest.fixture(params=["random", "nan"])
def broken_helmholtz_net(request):
    """A Helmholtz correction network that is untrained (``random``) or outputs NaN (``nan``): the learned
    Helmholtz preconditioners must never fail a solve or cost more than a few iterations with it."""
    import torch

    from hybrid.operators.helmholtz_net import HelmholtzNet, HelmholtzNetConfig

    torch.manual_seed(0)
    net = HelmholtzNet(HelmholtzNetConfig(channels=4, depth=2))
    if request.param == "nan":
        with torch.no_grad():
            net.unet.head.bias.fill_(float("nan"))
    return net
