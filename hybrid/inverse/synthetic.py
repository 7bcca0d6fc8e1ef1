"""Synthetic Darcy inverse problems on the unit square: a true coefficient, its pressure observed at all
nodes or at sensor points, and noise.

To avoid the "inverse crime" (data made by the very discretization that inverts it), the data come from a
mesh ``refine`` times finer than the inversion mesh: nodal data are the fine solution at the coarse nodes
(the coarse nodes are fine nodes of the nested structured mesh), sensor data the fine P1 solution at the
points. ``refine=1`` uses the inversion mesh itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .darcy_solver import DarcySolver
from .noise import NOISE_MODELS, add_noise, check_noise_level
from .observations import Sensors, halton_points


@dataclass
class DarcyInverseProblem:
    """Everything an inversion run needs: the family and solver of the inversion mesh, the observation
    (``"all"`` or a :class:`Sensors`), clean and noisy data, the realized noise norm, and the truth as nodal
    values of the inversion mesh."""

    family: object
    solver: DarcySolver
    observe: object
    clean: np.ndarray
    data: np.ndarray
    noise_norm: float
    truth: np.ndarray


def darcy_problem(n: int, truth, noise: float = 0.0, sensors: int | str = "all", noise_model: str = "additive",
                  seed: int = 0, refine: int = 2, method: str = "direct-superlu") -> DarcyInverseProblem:
    """The inverse problem of recovering ``truth`` (number, callable ``x -> values`` or field spec, as
    ``solvers.sampling.field_from_spec`` reads it) on ``unit_square(n)`` with ``f = 1``, ``u = 0`` on the
    boundary, from ``sensors`` (``"all"`` nodes or a number of Halton points, seeded by ``seed``) with
    relative ``noise`` of ``noise_model``."""
    import meshes
    from meshes import GridView
    from solvers import DarcyFamily
    from solvers.sampling import field_from_spec

    for name, value in (("n", n), ("refine", refine)):
        if isinstance(value, bool) or int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    noise = check_noise_level(noise)
    if noise_model not in NOISE_MODELS:
        raise ValueError(f"unknown noise model {noise_model!r}; use one of: {', '.join(NOISE_MODELS)}")
    if isinstance(truth, str):
        truth = field_from_spec(truth)
    family = DarcyFamily(meshes.unit_square(n))
    solver = DarcySolver(family, method)
    fine_family = family if refine == 1 else DarcyFamily(meshes.unit_square(n * refine))
    fine = solver if refine == 1 else DarcySolver(fine_family, method)
    u_fine, _ = fine.solve(fine_family.nodal(truth))
    if sensors == "all":
        observe = "all"
        if refine == 1:
            clean = u_fine
        else:
            grid = GridView(fine_family.mesh).to_grid(u_fine)[::refine, ::refine]
            clean = GridView(family.mesh).to_dofs(grid)
    else:
        if isinstance(sensors, bool) or int(sensors) != sensors or sensors < 1:
            raise ValueError(f"sensors must be 'all' or a positive number of points, got {sensors!r}")
        points = halton_points(int(sensors), seed=seed)
        observe = Sensors(solver, points)
        clean = Sensors(fine, points)(u_fine)
    data, noise_norm = add_noise(clean, noise, noise_model, seed=seed + 1) if noise > 0 else (clean.copy(), 0.0)
    return DarcyInverseProblem(family, solver, observe, clean, data, noise_norm, family.nodal(truth))
