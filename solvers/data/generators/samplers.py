"""Coefficient samples of the generators: on the grid (structured meshes) or at the nodes (mesh files)."""

from __future__ import annotations

import numpy as np

from ...sampling import FIELD_DEFAULTS, make_field, gaussian_random_field, gaussian_random_field_at, inclusions_at


class NodalView:
    """Stand-in for :class:`GridView` on an unstructured mesh: arrays are nodal values in dof order."""

    def __init__(self, space):
        self.points = space.tabulate_dof_coordinates()[:, :2].T
        self.shape = (self.points.shape[1],)

    def to_dofs(self, values):
        return np.asarray(values)

    def to_grid(self, values):
        return np.asarray(values)


def grf(view, n: int, seed: int, index: int, p: dict) -> np.ndarray:
    """The GRF sample on the grid (structured) or at the mesh nodes (unstructured)."""
    if isinstance(view, NodalView):
        return gaussian_random_field_at(view.points, seed, index, p["alpha"], p["tau"], p["modes"])
    return gaussian_random_field(n, seed, index, p["alpha"], p["tau"], p["modes"])


def coefficient_grid(kind: str, n: int, seed: int, index: int, p: dict, view) -> np.ndarray:
    """Coefficient sample as a grid (GridView) or nodal values (NodalView)."""
    if kind in ("two-phase", "contrast"):
        return np.where(grf(view, n, seed, index, p) >= 0, p["high"], p["low"])
    if kind == "log-normal":
        return np.exp(p["sigma"] * grf(view, n, seed, index, p))
    if kind == "inclusions":
        if isinstance(view, NodalView):
            return inclusions_at(view.points, seed, index, p["count"], p["low"], p["high"])
        X, Y = view.coordinates()
        return inclusions_at(np.vstack([X.ravel(), Y.ravel()]), seed, index, p["count"], p["low"],
                             p["high"]).reshape(view.shape)
    if kind == "heart-lungs":  # the field's own defaults (background 1, heart 2, lungs 0.5, spread, jitter)
        points = view.points if isinstance(view, NodalView) else np.vstack([c.ravel() for c in view.coordinates()])
        return make_field(kind, seed=seed, index=index)(points).reshape(view.shape)
    raise ValueError(f"unknown coefficient {kind!r}; use one of: {', '.join(FIELD_DEFAULTS)}")
