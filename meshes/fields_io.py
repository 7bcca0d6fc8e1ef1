"""``read_fields``: nodal fields back from a ``.xdmf`` or ``.vtu`` that :func:`meshes.write` made, as P1 Functions
on the mesh :func:`meshes.read` returns for the same file (serial or distributed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import _mpi  # noqa: F401
import dolfinx.fem as fem

from .mesh import Mesh
from .nodal import node_dofs


def _xdmf_values(path: Path) -> dict[str, np.ndarray]:
    import h5py

    h5 = path.with_suffix(".h5")
    if not h5.exists():
        raise ValueError(f"{path}: its data file {h5.name} is missing")
    with h5py.File(h5, "r") as f:
        group = f.get("Function")
        if group is None:
            return {}
        out = {}
        for name in group:  # the last time step of each function
            steps = sorted(group[name], key=lambda s: float(s))
            out[name] = np.asarray(group[name][steps[-1]])
        return out


def _vtu_values(path: Path) -> dict[str, np.ndarray]:
    import meshio

    return {k: np.asarray(v) for k, v in meshio.read(path).point_data.items()}


def read_fields(path, mesh: Mesh) -> dict[str, fem.Function]:
    """The point fields of ``path`` as (vector) P1 Functions on ``mesh``, which must be ``meshes.read(path)``
    (file node ``k`` is the mesh's geometry node with input index ``k``).

    >>> import meshes, tempfile, os, numpy as np
    >>> m = meshes.l_shape(0.5)
    >>> u = fem.Function(fem.functionspace(m.mesh, ("Lagrange", 1))); u.interpolate(lambda x: x[0] + 2 * x[1])
    >>> path = meshes.write(os.path.join(tempfile.mkdtemp(), "u.xdmf"), m, {"u": u})
    >>> r = meshes.read(path)
    >>> v = read_fields(path, r)["u"]
    >>> x = v.function_space.tabulate_dof_coordinates()
    >>> bool(np.allclose(v.x.array, x[:, 0] + 2 * x[:, 1]))
    True
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".xdmf":
        values = _xdmf_values(path)
    elif suffix == ".vtu":
        values = _vtu_values(path)
    else:
        raise ValueError(f"cannot read fields from {path}: fields are read from .xdmf or .vtu (a .msh holds none)")
    msh = mesh.mesh
    index = np.asarray(msh.geometry.input_global_indices, dtype=np.int64)
    nfile = {name: len(v) for name, v in values.items()}
    total = mesh.comm.allreduce(len(index) and int(index.max()) + 1, op=_mpi.MPI.MAX)
    out = {}
    for name, vals in values.items():
        if nfile[name] != total:
            raise ValueError(f"{path}: field {name!r} has {nfile[name]} node values, the mesh has {total} nodes: "
                             "read the mesh from the same file")
        vals = vals.reshape(len(vals), -1)[:, :mesh.gdim] if vals.ndim > 1 and vals.shape[1] > 1 else \
            vals.reshape(-1, 1)
        shape = () if vals.shape[1] == 1 else (vals.shape[1],)
        V = fem.functionspace(msh, ("Lagrange", 1, shape))
        u = fem.Function(V, name=name)
        bs = V.dofmap.index_map_bs
        u.x.array.reshape(-1, bs)[node_dofs(V)] = vals[index]
        u.x.scatter_forward()
        out[name] = u
    return out
