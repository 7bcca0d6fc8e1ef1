"""PNG plots of fields on unstructured triangle meshes (matplotlib's triangulation; serial).

matplotlib is imported when a plot is made, so ``import meshes`` stays light; the mesh edges can be drawn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from . import _mpi  # noqa: F401
import dolfinx.fem as fem

from .nodal import nodal_values


def save_figure(fig, path, dpi: int = 110) -> Path:
    """``tight_layout``, create the folder, save as ``path``, close the figure (every PNG of the toolkit)."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def triangulation(msh):
    """matplotlib ``Triangulation`` of a first-order triangle mesh (a dolfinx mesh or :class:`Mesh`)."""
    import matplotlib.tri as mtri

    msh = getattr(msh, "mesh", msh)
    if msh.topology.cell_name() != "triangle":
        raise ValueError(f"plots are of triangle meshes, this one has {msh.topology.cell_name()} cells")
    if msh.comm.size > 1:
        raise ValueError("plotting is serial; write .xdmf under MPI and open it in ParaView")
    x = msh.geometry.x
    return mtri.Triangulation(x[:, 0], x[:, 1], msh.geometry.dofmaps[0])


def plot_fields(path, fields: Mapping[str, fem.Function], *, edges: bool = False, cmap: str = "viridis") -> Path:
    """Side-by-side filled contour plots of scalar fields (any Lagrange degree: shown at the vertices).

    >>> import meshes, tempfile, os
    >>> m = meshes.l_shape(0.5)
    >>> u = fem.Function(fem.functionspace(m.mesh, ("Lagrange", 1)))
    >>> u.interpolate(lambda x: x[0] * x[1])
    >>> path = plot_fields(os.path.join(tempfile.mkdtemp(), "u.png"), {"u": u})
    >>> path.stat().st_size > 1000
    True
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(fields), figsize=(4.4 * len(fields), 3.8), squeeze=False)
    for ax, (title, u) in zip(axes[0], fields.items()):
        values = nodal_values(u)
        if values.ndim != 1:
            raise ValueError(f"field {title!r} is a vector field; plot its components")
        tri = triangulation(u.function_space.mesh)
        im = ax.tripcolor(tri, values, shading="gouraud", cmap=cmap)
        if edges:
            ax.triplot(tri, color="k", lw=0.2, alpha=0.5)
        ax.set_aspect("equal")
        ax.set_title(title)
        fig.colorbar(im, ax=ax, fraction=0.046)
    return save_figure(fig, path)
