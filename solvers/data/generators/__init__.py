"""Per-problem sample generators: everything that does not change between samples is built once.

A generator is made once per process from ``(n, seed, params)``; ``sample(index)`` returns a dict of
arrays that depends only on ``(seed, index)``, so any split of the indices over workers or MPI ranks
gives bit-identical data. Each process uses its own serial mesh (samples are independent small solves).

One module per family (``darcy``: darcy, poisson, darcy-rhs; ``helmholtz``; ``eit``) on a shared base
(``base``), with the reused solvers (``reuse``) and coefficient samplers (``samplers``) beside them.
"""

from __future__ import annotations

from .base import GenerationError, GridProblem
from .darcy import DarcyData, DarcyRhsData, PoissonData
from .eit import EITData
from .helmholtz import HelmholtzData

#: problem name -> generator class (``hybrid generate PROBLEM``)
GENERATORS = {g.name: g for g in (DarcyData, PoissonData, DarcyRhsData, HelmholtzData, EITData)}


def _generator_class(problem: str):
    try:
        return GENERATORS[problem]
    except KeyError:
        raise ValueError(f"unknown problem {problem!r}; choose one of: {', '.join(GENERATORS)}") from None


def check_generator_params(problem: str, params: dict | None = None) -> dict:
    """The parameters ``make_generator`` would use (defaults filled in), checked without building anything;
    ``ValueError`` naming the bad key or value."""
    return _generator_class(problem).validate_params(params or {})


def make_generator(problem: str, n: int, seed: int, params: dict | None = None):
    """The generator of ``problem``; every parameter is checked here, before any file is written."""
    return _generator_class(problem)(n, seed, params)


__all__ = ["GENERATORS", "GenerationError", "GridProblem", "check_generator_params", "make_generator"]
