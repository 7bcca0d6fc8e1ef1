"""``refine(mesh)``: uniform refinement that keeps the cell and facet tags and the boundary names."""

from __future__ import annotations

import numpy as np

from . import _mpi  # noqa: F401
import dolfinx.mesh as dmesh

from .mesh import Mesh


def refine(mesh: Mesh, times: int = 1) -> Mesh:
    """Split every cell (edges halved) ``times`` times; tags follow their parent cells and facets.

    dolfinx's Plaza refinement halves every edge, but the children are not all similar to their parent: the
    longest edge shrinks by a factor 0.6 (triangles) to 0.75 (tetrahedra) per step, and the number of
    vertices grows about 4x (8x in 3-D), so measure convergence against ``num_vertices ** (-1 / tdim)``.
    New boundary vertices lie on the straight parent facets, so a polygonal circle stays the same polygon
    (remesh with a smaller ``h`` to follow a curve more closely). Works on distributed meshes (cells stay on
    the rank of their parent).

    >>> import meshes
    >>> m = refine(meshes.l_shape(0.5)); sorted(m.boundaries)
    ['notch', 'outer']
    """
    if not isinstance(mesh, Mesh):
        raise TypeError(f"refine takes a meshes.Mesh, got {type(mesh).__name__}")
    if int(times) != times or times < 0:
        raise ValueError(f"times must be a non-negative integer, got {times!r}")
    for _ in range(int(times)):
        mesh = _refine_once(mesh)
    return mesh


def _refine_once(mesh: Mesh) -> Mesh:
    msh, tdim = mesh.mesh, mesh.tdim
    if msh.topology.cell_name() not in ("triangle", "tetrahedron"):
        raise ValueError(f"refine: {msh.topology.cell_name()} cells are not supported (triangles and tetrahedra "
                         "are); make a finer structured mesh instead")
    msh.topology.create_entities(1)
    msh.topology.create_connectivity(tdim, tdim - 1)
    fine, parent_cell, _ = dmesh.refine(msh, option=dmesh.RefinementOption.parent_cell)
    fine.topology.create_connectivity(tdim - 1, tdim)
    fine.topology.create_connectivity(tdim, tdim - 1)
    for topology in (msh.topology, fine.topology):  # entities_to_geometry needs them
        topology.create_connectivity(tdim - 1, tdim)
        topology.create_connectivity(tdim - 1, 0)
    ft = ct = None
    if mesh.facet_tags is not None:
        ft = _transfer(mesh.facet_tags, msh, fine, parent_cell, facets=True)
        ft.name = "facet_tags"
    if mesh.cell_tags is not None:
        ct = _transfer(mesh.cell_tags, msh, fine, parent_cell, facets=False)
        ct.name = "cell_tags"
    return Mesh(fine, ft, ct, mesh.boundaries, mesh.domains)


def _transfer(tags, coarse, fine, parent_cell: np.ndarray, facets: bool):
    """Cell or facet tags of ``coarse`` on ``fine``: owned fine cells, and the facets of owned fine cells, get
    the value of their parent cell or of the parent facet they lie on.

    Written here because ``dolfinx.mesh.transfer_meshtag`` of cell tags corrupts the heap under MPI in
    dolfinx 0.11 (the refined mesh has ghost cells that ``parent_cell``, covering owned cells only, lacks).
    ``parent_cell`` is indexed in the order the refined cells were created, not the mesh's local order, and
    ``parent_facet`` follows an internal facet numbering; so a fine facet's parent is found geometrically:
    the facet of the parent cell whose line (plane) holds all the fine facet's vertices.
    """
    tdim = coarse.topology.dim
    n_owned = len(parent_cell)
    # parent_cell is in the order the refined cells were made; the mesh reorders them (original_cell_index)
    made = np.asarray(fine.topology.original_cell_index[:n_owned]) - fine.topology.index_map(tdim).local_range[0]
    if made.min(initial=0) < 0 or made.max(initial=-1) >= n_owned:
        raise RuntimeError("refine: cannot match refined cells to their parents (dolfinx changed its numbering?)")
    parent_cell = np.asarray(parent_cell)[made]
    dim = tdim - 1 if facets else tdim
    im = coarse.topology.index_map(dim)
    value = np.full(im.size_local + im.num_ghosts, -1, dtype=np.int64)
    value[tags.indices] = tags.values
    if not facets:
        vals = value[parent_cell]
        cells = np.flatnonzero(vals >= 0).astype(np.int32)
        return dmesh.meshtags(fine, tdim, cells, vals[cells].astype(np.int32))
    nf = tdim + 1  # facets (and vertices) per simplex
    coarse_facets = coarse.topology.connectivity(tdim, tdim - 1).array.reshape(-1, nf)[parent_cell]  # (n, nf)
    fine_facets = fine.topology.connectivity(tdim, tdim - 1).array.reshape(-1, nf)[:n_owned]
    xc = coarse.geometry.x[dmesh.entities_to_geometry(coarse, tdim - 1, coarse_facets.ravel())]
    xf = fine.geometry.x[dmesh.entities_to_geometry(fine, tdim - 1, fine_facets.ravel())]
    xc, xf = xc.reshape(n_owned, nf, tdim, 3), xf.reshape(n_owned, nf, tdim, 3)
    edge = xc[:, :, 1] - xc[:, :, 0]
    if tdim == 2:
        normal = np.stack([-edge[..., 1], edge[..., 0], np.zeros_like(edge[..., 0])], axis=-1)
    else:
        normal = np.cross(edge, xc[:, :, 2] - xc[:, :, 0])
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
    # distance of fine facet i's vertices to the hyperplane of coarse facet j: (n, i, j, vertex)
    offset = xf[:, :, None, :, :] - xc[:, None, :, None, 0, :]
    dist = np.abs(np.einsum("nijvk,njk->nijv", offset, normal)).max(axis=-1)
    scale = np.linalg.norm(edge, axis=-1).max(axis=-1)[:, None, None]
    on = dist < 1e-8 * scale  # (n, i, j): fine facet i lies on coarse facet j
    n, i, j = np.nonzero(on)
    vals = value[coarse_facets[n, j]]
    keep = vals >= 0
    found, first = np.unique(fine_facets[n, i][keep], return_index=True)
    return dmesh.meshtags(fine, tdim - 1, found.astype(np.int32), vals[keep][first].astype(np.int32))
