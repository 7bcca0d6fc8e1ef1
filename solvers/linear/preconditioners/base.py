"""The preconditioner protocol: ``setup(A, p=None)``, ``apply(r) -> z``, traits, stats, ``refresh``.

Classical (Jacobi, ILU, AMG, GAMG, geometric MG) and learned preconditioners (``hybrid.precond``)
implement the same methods, so every Krylov slot takes either. A preconditioner object holds its
configuration from the constructor and its state from ``setup``; algorithms copy it before ``setup``
so one configured preconditioner can serve several caches.

Protocol (LinearSolve.jl's ``Pl``/``precs`` with ``p``):

- ``setup(A, p=None) -> self``: ``p`` is the problem's parameter object (``LinearProblem(A, b, p=...)``),
  passed through untouched: usually a :class:`~solvers.linear.PrecondParams` (coefficient, grid view,
  constrained dofs, device) or a dict with the same keys; read it with :func:`param`. Subclasses
  written before ``p`` existed (``def setup(self, A)``) keep working: :func:`setup_precond` calls
  them without ``p`` and stores it as ``self.p``.
- ``apply(r) -> z ~ A^{-1} r``; algorithms call the object itself (``pc(r)``), which counts calls and
  time in ``stats`` and then calls ``apply``.
- traits (class attributes, overridable per instance): ``linear`` (``apply`` is one fixed linear map
  for the whole solve) and ``symmetric`` (that map is symmetric positive definite whenever ``A`` is).
  ``CG`` and ``MINRES`` need both; ``GMRES`` and ``BiCGStab`` need ``linear``; ``FlexibleCG`` and
  ``FGMRES`` take anything. The base class declares ``True``/``True`` (a fixed symmetric map, as every
  classical preconditioner here is, except ILU); preconditioners that are not must say so.
- ``refresh(A, p=None)``: numerical re-setup for a matrix with the same sparsity and a related
  operator, keeping what is expensive and structural (AMG keeps ``P``/``R``); the default is a full
  ``setup``.
- ``begin_solve()``: called by the solver cache before each solve (per-solve state such as a
  safeguard's switch to its fallback is reset there).
"""

from __future__ import annotations

import abc
import inspect
import time
from collections.abc import Mapping

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla


def param(p, name: str, default=None):
    """Entry ``name`` of a parameter object ``p``: an attribute (``PrecondParams``, any object) or a
    mapping key (``dict``); ``default`` when absent or ``None``."""
    if p is None:
        return default
    value = p.get(name) if isinstance(p, Mapping) else getattr(p, name, None)
    return default if value is None else value


class Preconditioner(abc.ABC):
    """Base class: subclasses implement ``setup(A, p=None)`` (returning ``self``) and ``apply(r)``."""

    A = None
    p = None
    #: ``apply`` is one fixed linear map during a solve (CG, MINRES, GMRES, BiCGStab need this)
    linear: bool = True
    #: that map is symmetric (positive definite for SPD ``A``; CG and MINRES need this)
    symmetric: bool = True

    def setup(self, A, p=None) -> "Preconditioner":
        self.A = A
        self.p = p
        return self

    def refresh(self, A, p=None) -> "Preconditioner":
        """Numerical refresh for a new matrix related to the old one; default: a full setup."""
        return setup_precond(self, A, p if p is not None else self.p)

    def begin_solve(self) -> None:
        """Hook called before each solve; the default has no per-solve state."""

    @abc.abstractmethod
    def apply(self, r: np.ndarray) -> np.ndarray:
        """``z ~ A^{-1} r``."""

    @property
    def stats(self) -> dict:
        """Cumulative counters: ``name``, ``calls`` (applications), ``apply_s`` (their total time);
        learned preconditioners add ``accepted``/``rejected`` steps and more."""
        s = self.__dict__.get("_stats")
        if s is None:
            s = self.__dict__["_stats"] = {"name": type(self).__name__, "calls": 0, "apply_s": 0.0}
        return s

    def __call__(self, r):
        """``apply(r)``, counted in :attr:`stats` (the algorithms call this, not ``apply``). A linear
        preconditioner of a real matrix applies to a complex vector by its real and imaginary parts (the
        kernels of pyamg and of the multigrid cycles are real)."""
        t = time.perf_counter()
        if self.linear and np.iscomplexobj(r) and sp.issparse(self.A) \
                and not np.issubdtype(self.A.dtype, np.complexfloating):
            z = self.apply(np.ascontiguousarray(r.real)) + 1j * self.apply(np.ascontiguousarray(r.imag))
        else:
            z = self.apply(r)
        s = self.stats
        s["calls"] += 1
        s["apply_s"] += time.perf_counter() - t
        return z

    def __copy__(self):  # algorithms copy before setup: the copy gets its own counters
        new = type(self).__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.__dict__.pop("_stats", None)
        return new

    def as_linear_operator(self) -> spla.LinearOperator:
        """The preconditioner as a scipy ``LinearOperator`` (``M ~ A^{-1}``); applications are counted."""
        if self.A is None:
            raise RuntimeError(f"{type(self).__name__}: call setup(A) first")
        n = self.A.shape[0]
        dtype = getattr(self.A, "dtype", np.float64)
        return spla.LinearOperator((n, n), matvec=self, dtype=dtype)


def check_vector(r, n: int, who: str) -> np.ndarray:
    """``r`` as an array, refused unless it is one vector of ``n`` entries: a block of vectors, or one of
    another size, failed inside pyamg with "x has invalid dimensions", naming neither."""
    r = np.asarray(r)
    if r.shape != (n,):
        raise ValueError(f"{who}.apply takes one vector of {n} entries (the matrix's rows), got shape {r.shape}")
    return r


def _accepts_p(method) -> bool:
    try:
        sig = inspect.signature(method)
    except (TypeError, ValueError):
        return True
    params = list(sig.parameters.values())
    if any(q.kind in (q.VAR_POSITIONAL, q.VAR_KEYWORD) for q in params):
        return True
    return len([q for q in params if q.kind in (q.POSITIONAL_ONLY, q.POSITIONAL_OR_KEYWORD)]) >= 2


def setup_precond(pc, A, p=None):
    """``pc.setup(A, p)``, or ``pc.setup(A)`` with ``pc.p = p`` for a subclass whose ``setup`` predates ``p``."""
    if _accepts_p(pc.setup):
        out = pc.setup(A, p)
    else:
        out = pc.setup(A)
        pc.p = p
    return pc if out is None else out


def refresh_precond(pc, A, p=None):
    """``pc.refresh(A, p)`` (a full setup for objects without ``refresh``)."""
    if hasattr(pc, "refresh"):
        out = pc.refresh(A, p) if _accepts_p(pc.refresh) else pc.refresh(A)
        return pc if out is None else out
    return setup_precond(pc, A, p)


def stats_delta(before: dict, after: dict) -> dict:
    """Per-solve counters: numbers in ``after`` minus those in ``before`` (other entries as in ``after``).
    Entries named ``setup_*`` describe the current setup (e.g. a network's ``setup_network_s``), and entries
    named ``*_gain`` are ratios of the solve itself (a mean the preconditioner restarts in ``begin_solve``),
    not running counts: both are reported as they are."""
    out = {}
    for k, v in after.items():
        b = before.get(k)
        if k.startswith("setup_") or k.endswith("_gain"):
            out[k] = v
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and isinstance(b, (int, float)) \
                and not isinstance(b, bool):
            out[k] = v - b
        elif isinstance(v, dict) and isinstance(b, dict):
            out[k] = stats_delta(b, v)
        else:
            out[k] = v
    return out


def snapshot(stats: dict) -> dict:
    """A deep-enough copy of a stats dict (nested dicts copied)."""
    return {k: snapshot(v) if isinstance(v, dict) else v for k, v in stats.items()}


def check_traits(pc, needs_linear: bool, needs_symmetric: bool, method: str) -> None:
    """``ValueError`` (the solve's ``InvalidInput``) when ``pc`` lacks a trait ``method`` relies on."""
    name = type(pc).__name__
    if needs_linear and not getattr(pc, "linear", True):
        raise ValueError(f"{method} needs a fixed linear preconditioner, but {name} declares linear=False "
                         f"(its step depends on the residual nonlinearly or changes between iterations); "
                         f"use FlexibleCG (SPD A) or FGMRES, which accept varying preconditioners")
    if needs_symmetric and not getattr(pc, "symmetric", True):
        raise ValueError(f"{method} needs a symmetric positive definite preconditioner, but {name} declares "
                         f"symmetric=False; use FlexibleCG (SPD A) or FGMRES (any A) instead")


class Identity(Preconditioner):
    """No preconditioning."""

    def apply(self, r):
        return np.array(r, copy=True)
