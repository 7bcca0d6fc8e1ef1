"""``Safeguarded``: a learned step is used only when it provably helps, otherwise the classical one.

Why hand-written: the test is specific to how a preconditioner step is used inside a Krylov method
(the step must contract the residual, or the energy error, of the vector it is applied to), and the
fallback has to be any ``solvers.linear`` preconditioner; no library wraps preconditioners this way.
Torch-free: it wraps any object with the preconditioner protocol.
"""

from __future__ import annotations

import copy

import numpy as np
import scipy.sparse as sp

from solvers.linear.krylov.cg import asymmetry
from solvers.linear.preconditioners.base import Preconditioner, refresh_precond, setup_precond


class Safeguarded(Preconditioner):
    """Use ``learned(r)`` when it passes a contraction test on ``r``, else ``fallback(r)``.

    For each vector ``r`` it is applied to, the learned step ``z`` is **rejected** (and ``fallback(r)``
    returned) when ``z`` has non-finite entries, is zero, or does not reduce the error measure enough:

    - residual contraction ``||r - A z|| < rho * ||r||`` (the step contracts the residual of the system
      ``A e = r`` it approximates; right-preconditioned FGMRES applies the preconditioner to Arnoldi
      vectors, for which this is the same statement);
    - when ``A`` is symmetric (``measure="energy"``, chosen by ``"auto"``), also the energy error must
      decrease: ``||e - z||_A < ||e||_A`` for ``e = A^{-1} r``, computable without ``e`` as
      ``2 r.z - z.A z > 0``; it implies ``r.z > 0``, without which flexible CG breaks down.

    The threshold ``rho``: a number in ``(0, 1]`` (``1``: any contraction), or ``"auto"``: at the first
    application of every solve both steps are computed, the better one is returned, and
    ``rho = rho_C ** (1 / slowdown)`` with ``rho_C`` the classical step's contraction there. A step
    contracting by ``rho_L`` is worth ``log rho_L / log rho_C`` classical steps, so accepting only
    ``rho_L <= rho_C^(1/slowdown)`` keeps an accepted step from costing more than ``slowdown`` classical
    ones (a heuristic for Krylov methods, exact for a stationary iteration). Without it a weak but
    contracting learned step (an untrained SPD V-cycle: 38 CG iterations alone vs 7 for RS-AMG) was
    accepted and doubled the FGMRES iterations (15 vs 7).

    Each test costs one product ``A z``. After ``max_rejections`` consecutive rejections the learned
    part is considered stuck (a false fixed point: it keeps proposing useless corrections) and the
    fallback is used for the rest of the solve without calling the model. The choice depends on ``r``,
    so the wrapped preconditioner is nonlinear (``linear = symmetric = False``): use it with
    ``FlexibleCG`` or ``FGMRES`` (or PETSc's ``fgmres``/``fcg``). The solver cache resets the switch and
    the calibration before each solve (``begin_solve``).

    ``stats``: ``accepted``, ``rejected`` (learned steps), ``fallback_calls``, ``switched`` (solves in
    which the switch happened), ``threshold`` (the last ``rho``), plus the wrapped preconditioners' own
    stats under ``learned`` and ``fallback``.
    """

    linear = False
    symmetric = False

    def __init__(self, learned, fallback=None, measure: str = "auto", max_rejections: int = 3,
                 contraction="auto", slowdown: float = 1.2):
        if measure not in ("auto", "residual", "energy"):
            raise ValueError(f"measure must be 'auto', 'residual' or 'energy', got {measure!r}")
        if contraction != "auto" and not 0 < float(contraction) <= 1:
            raise ValueError(f"contraction must be 'auto' or lie in (0, 1], got {contraction}")
        if not slowdown >= 1:
            raise ValueError(f"slowdown must be >= 1, got {slowdown}")
        self.slowdown = float(slowdown)
        if fallback is None:
            from solvers.linear import AMG

            fallback = AMG("rs")
        self.learned, self.fallback = learned, fallback
        self.measure, self.max_rejections = measure, int(max_rejections)
        self.contraction = contraction if contraction == "auto" else float(contraction)
        self._consecutive, self._switched, self._rho = 0, False, None

    def __copy__(self):
        new = super().__copy__()
        new.learned, new.fallback = copy.copy(self.learned), copy.copy(self.fallback)
        return new

    def setup(self, A, p=None):
        super().setup(A, p)
        self.learned = setup_precond(self.learned, A, p)
        self.fallback = setup_precond(self.fallback, A, p)
        self._measure_for(A)
        self.begin_solve()
        return self

    def refresh(self, A, p=None):
        self.A = A
        if p is not None:
            self.p = p
        self.learned = refresh_precond(self.learned, A, p)
        self.fallback = refresh_precond(self.fallback, A, p)
        self._measure_for(A)
        return self

    def _measure_for(self, A):
        if self.measure != "auto":
            self._m = self.measure
        else:
            explicit = sp.issparse(A) or isinstance(A, np.ndarray)
            self._m = "energy" if explicit and asymmetry(A) <= 1e-10 else "residual"

    def begin_solve(self):
        self._consecutive, self._switched = 0, False
        self._rho = None if self.contraction == "auto" else self.contraction
        for pc in (self.learned, self.fallback):
            if hasattr(pc, "begin_solve"):
                pc.begin_solve()

    @property
    def stats(self) -> dict:
        s = super().stats
        for key in ("accepted", "rejected", "fallback_calls", "switched"):
            s.setdefault(key, 0)
        s["measure"] = getattr(self, "_m", self.measure)
        s["threshold"] = self._rho
        s["learned"] = getattr(self.learned, "stats", {"name": type(self.learned).__name__})
        s["fallback"] = getattr(self.fallback, "stats", {"name": type(self.fallback).__name__})
        return s

    def _ratio(self, r, z) -> float:
        """``||r - A z|| / ||r||``, or ``inf`` for a step that fails the finite/nonzero/energy tests."""
        if not np.all(np.isfinite(z)) or not np.any(z):
            return np.inf
        Az = self.A @ z
        if self._m == "energy" and not 2.0 * np.vdot(r, z).real - np.vdot(z, Az).real > 0:
            return np.inf
        return float(np.linalg.norm(r - Az) / np.linalg.norm(r))

    def _fallback(self, r):
        self.stats["fallback_calls"] += 1
        return self.fallback(r)

    def apply(self, r):
        r = np.asarray(r)
        if r.ndim == 2:
            if self._switched:
                return np.stack([self._fallback(c) for c in r.T], axis=1)
            Z = np.asarray(self.learned(r), dtype=np.result_type(r.dtype, np.float64))
            return np.stack([self._decide(r[:, j], Z[:, j]) for j in range(r.shape[1])], axis=1)
        if self._switched:
            return self._fallback(r)
        return self._decide(r, np.asarray(self.learned(r)))

    def _decide(self, r, z):
        s = self.stats
        if not np.any(r):
            return np.zeros_like(r, dtype=np.result_type(r.dtype, np.float64))
        zc = None
        if self._rho is None:  # calibration: the classical step's contraction on this solve's first vector
            zc = self._fallback(r)
            rho_c = self._ratio(r, zc)
            self._rho = min(1.0, rho_c ** (1.0 / self.slowdown)) if np.isfinite(rho_c) else 1.0
            ratio = self._ratio(r, z)
            ok = ratio < 1.0 and ratio <= rho_c if np.isfinite(rho_c) else ratio < 1.0
        else:
            ratio = self._ratio(r, z)
            ok = ratio < self._rho or (ratio < 1.0 and ratio == self._rho)
        if ok:
            s["accepted"] += 1
            self._consecutive = 0
            return z
        s["rejected"] += 1
        self._consecutive += 1
        if self._consecutive >= self.max_rejections and not self._switched:
            self._switched = True
            s["switched"] += 1
        return zc if zc is not None else self._fallback(r)

    def __repr__(self):
        return (f"Safeguarded({self.learned!r}, fallback={type(self.fallback).__name__}, measure={self.measure!r}, "
                f"max_rejections={self.max_rejections})")
