"""What every generator shares: the mesh (unit square or a mesh file), P1 space, grid or nodal view, the P1
assembler with ``u = 0`` on every named boundary, parameter validation, the finiteness check."""

from __future__ import annotations

import functools

import numpy as np
import scipy.sparse as sp

from meshes import _mpi, GridView, unit_square
from ...problems import Darcy
from ...sampling.media import MEDIA
from ...sampling import FIELD_DEFAULTS, check_params
from ...dirichlet import lift
from ..p1 import P1Assembler
from .samplers import NodalView


class GenerationError(RuntimeError):
    """A sample could not be produced (non-finite solution, ...); the message names index and seed."""


COEFFICIENT_DEFAULTS = {"coefficient": "two-phase", "high": 12.0, "low": 3.0, "alpha": 2.0, "tau": 3.0,
                        "modes": 64, "sigma": 1.0, "count": 6, "solver": "auto"}
#: the string-valued parameters and their choices
CHOICES = {"coefficient": tuple(FIELD_DEFAULTS), "solver": ("auto", "direct", "amg"), "forcing": ("constant", "grf"),
           "medium": ("lognormal",) + MEDIA}


class GridProblem:
    """Shared setup: serial mesh (the unit square, or a mesh file given as parameter ``mesh``), P1 space,
    grid view (nodal view on unstructured meshes), P1 assembler with ``u = 0`` on every named boundary."""

    name = "?"
    defaults: dict = {}
    #: rules for this problem's own numeric parameters, beside the samplers' (solvers.sampling.params)
    rules: dict = {}

    def __init__(self, n: int, seed: int, params: dict | None = None):
        self.n, self.seed = int(n), int(seed)
        self.params = self.validate_params(params or {})
        mesh_file = self.params.get("mesh")
        if mesh_file:
            self.mesh = self._read_mesh(mesh_file)
        else:
            self.mesh = unit_square(self.n, comm=_mpi.COMM_SELF)
        self.template = Darcy(self.mesh, a=1.0, f=1.0).assemble()  # pattern, constraints, rhs of f=1
        V = self.template.space
        self.view = NodalView(V) if mesh_file else GridView(V)
        self.asm = P1Assembler.from_system(self.template)

    @classmethod
    def validate_params(cls, params: dict) -> dict:
        """Every parameter with defaults filled in, checked before anything is built or written: unknown
        keys, unknown choices, and values the samplers would refuse or turn into nonsense (NaN, <= 0, ...)."""
        unknown = set(params) - set(cls.defaults)
        if unknown:
            raise ValueError(f"{cls.name}: unknown parameters {sorted(unknown)}; valid: {sorted(cls.defaults)}")
        for key, choices in CHOICES.items():
            if key in cls.defaults and key in params and params[key] not in choices:
                raise ValueError(f"{cls.name}: unknown {key} {params[key]!r}; use one of: {', '.join(choices)}")
        merged = {**cls.defaults, **params}
        kind = merged.get("coefficient")
        if kind in FIELD_DEFAULTS:  # e.g. contrast: {1e4, 1} unless given
            merged.update({k: FIELD_DEFAULTS[kind][k] for k in ("high", "low")
                           if k in FIELD_DEFAULTS[kind] and k not in params})
        return check_params(merged, cls.name, cls.rules)

    @staticmethod
    def _read_mesh(mesh_file):
        """A triangle mesh in the xy-plane (data arrays hold nodal values at ``(x, y)``)."""
        from meshes import read

        mesh = read(mesh_file, comm=_mpi.COMM_SELF)
        if mesh.mesh.topology.cell_name() != "triangle":
            raise ValueError(f"{mesh_file}: data generation needs a triangle mesh, "
                             f"this one has {mesh.mesh.topology.cell_name()} cells")
        if mesh.gdim != 2:
            z = mesh.mesh.geometry.x[:, 2]
            raise ValueError(f"{mesh_file}: data generation needs a flat mesh in the xy-plane; this one is a surface "
                             f"in 3-D (z from {z.min():.3g} to {z.max():.3g}): rotate it into z = 0")
        return mesh

    @functools.cached_property
    def M(self) -> sp.csr_matrix:
        """Load matrix (unconstrained): ``rhs(f_nodes)`` is the right-hand side of a P1 source (exact)."""
        return self.asm.matrix(self.asm.mass_operator() @ np.ones(self.asm.n), eliminate=False)

    def rhs(self, f_nodes: np.ndarray) -> np.ndarray:
        """Right-hand side of the P1 source ``f_nodes`` with ``u = 0`` on the boundary (lifted by
        :func:`solvers.dirichlet.lift`: zero on the Dirichlet rows)."""
        return lift(self.M, self.M @ f_nodes, self.asm.constrained, 0.0 * self.asm.constrained)

    def mesh_arrays(self) -> dict:
        """The mesh itself (P1 dof coordinates and cells); on structured meshes also the permutation
        ``grid.ravel()[grid_of_dof]`` giving the nodal values of any stored grid array."""
        V = self.template.space
        out = {"coordinates": V.tabulate_dof_coordinates()[:, :2], "cells": np.asarray(V.dofmap.list)}
        if isinstance(self.view, GridView):
            out["grid_of_dof"] = self.view.grid_of_dof
        return out

    def check(self, index: int, out: dict) -> dict:
        for key, val in out.items():
            if not np.all(np.isfinite(val)):
                raise GenerationError(f"{self.name}: sample {index} (seed {self.seed}) produced non-finite "
                                      f"values in {key!r}")
        return out
