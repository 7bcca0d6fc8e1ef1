"""Boundary conditions that refer to boundaries by name.

A value may be a number (or a vector of numbers for vector problems), a UFL expression, a dolfinx
``Function``, or a callable ``x -> values`` evaluated on coordinates of shape ``(3, npoints)``.

Conventions for a problem with flux ``q = kappa * grad(u)`` (``kappa = 1`` for Poisson):

- ``Dirichlet(name, g)``: ``u = g``.
- ``Neumann(name, g)``: ``q . n = g`` (outward normal; adds ``g v ds`` to the right-hand side).
- ``Robin(name, alpha, g)``: ``q . n + alpha (u - g) = 0`` (adds ``alpha u v ds`` to the bilinear form
  and ``alpha g v ds`` to the right-hand side).

Boundaries that no condition names get the natural condition ``q . n = 0``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Dirichlet:
    boundary: str
    value: Any = 0.0


@dataclass(frozen=True)
class Neumann:
    boundary: str
    flux: Any = 0.0


@dataclass(frozen=True)
class Robin:
    boundary: str
    alpha: Any
    value: Any = 0.0


BoundaryCondition = Dirichlet | Neumann | Robin
