"""A learned correction of the shifted-Laplacian cycle for Helmholtz (after Azulay & Treister, SISC 2022).

One application for an Arnoldi vector ``r`` (inside FGMRES):

1. ``e1 = V(r)``: one cycle of the classical complex shifted Laplacian (:class:`ShiftedLaplacian`, the
   same preconditioner as ``cslp+fgmres``);
2. ``r1 = r - A e1``: what the cycle leaves, mostly near-resonant waves that the damped operator
   cannot see;
3. ``e2 = net(r1 / rms(r1), k h)``: a U-Net on the grid (channels: real and imaginary part of the
   residual, and the local ``k(x) h``, which is resolution-free at fixed points per wavelength) trained
   to predict the error ``A^{-1} r1``;
4. ``z = e1 + alpha e2`` with the complex ``alpha`` minimizing ``||r1 - alpha A e2||`` (the network's scale
   is only approximate);
5. safeguard: ``z`` is returned only when its residual ``||r1 - alpha A e2||`` is at most ``1 - min_gain``
   times that of the classical cycle alone, ``||r1||``; otherwise (or for non-finite output) ``e1``.
   When no step has been accepted in the first ``probe`` applications of a solve, the network is
   switched off for the rest of it (an untrained or broken model then costs
   ``probe`` network calls, never a failed or wrong solve: FGMRES's residual is the true one).

The map is nonlinear in ``r`` (network, accept test): use FGMRES.

Measured alternatives (n = 64/128, same network): ``z = e1 + e2 + V(r1 - A e2)`` (a second cycle after
the network, as the network-then-cycle scheme of Azulay & Treister) had every step rejected by the
safeguard; the two-term least-squares step ``beta e1 + alpha e2`` gave the same iterations as step 4.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from solvers.linear.preconditioners import ShiftedLaplacian
from solvers.linear.preconditioners.shifted_laplacian import nodal_kh
from solvers.linear.preconditioners.base import Preconditioner, param

from ..operators.helmholtz_net import HelmholtzNet, HelmholtzNetConfig
from .net_checkpoint import load_net, save_net

KIND = "helmholtz-cslp-correction"


def save_helmholtz_net(path, net: HelmholtzNet, extra: dict | None = None) -> Path:
    return save_net(path, KIND, net, extra)


def load_helmholtz_net(path, device="cpu") -> HelmholtzNet:
    return load_net(path, KIND, lambda cfg: HelmholtzNet(HelmholtzNetConfig(**cfg)), device)


def local_kh(k2M, grid) -> np.ndarray:
    """``k(x) h`` on the node grid from the diagonal of the P1 ``k^2``-weighted mass matrix (interior
    diagonal ``k^2 h^2 / 2`` on the uniform right-diagonal grid); boundary rows copy their inner
    neighbours (their diagonal holds a smaller patch)."""
    g = _to_grid(grid, nodal_kh(k2M)).copy()
    g[0], g[-1] = g[1], g[-2]
    g[:, 0], g[:, -1] = g[:, 1], g[:, -2]
    return g


def _to_grid(grid, v):
    return grid.to_grid(v) if hasattr(grid, "to_grid") else v.reshape(grid)


def _to_dofs(grid, g):
    return grid.to_dofs(g) if hasattr(grid, "to_dofs") else g.reshape(-1)


class LearnedShiftedLaplacian(Preconditioner):
    """The shifted-Laplacian cycle plus a safeguarded learned correction (see the module docstring).

    Parameters
    ----------
    model : a :class:`HelmholtzNet`, a checkpoint path, or ``None`` (classical cycle only; for tests).
    classical : the cycle it corrects (default ``ShiftedLaplacian()``, as ``cslp+fgmres``).
    device : where the network runs (``p.device`` overrides when given).
    min_gain : accept the learned step when it reduces the cycle's residual by at least this fraction.
        Small on purpose: the step's value is in the error, not the residual. At n = 512 (trained at
        64/128) each accepted step reduced ``||r1||`` by only 3-6%, yet taking them all cut FGMRES from 252
        to 170 iterations; a 5% threshold rejected the first five and switched the network off.
    probe : applications after which a never-accepted network is switched off for the solve.
    """

    linear = False
    symmetric = False

    def __init__(self, model=None, classical: ShiftedLaplacian | None = None, device="cpu",
                 min_gain: float = 0.005, probe: int = 5):
        if not (0 <= min_gain < 1):
            raise ValueError(f"min_gain must be in [0, 1), got {min_gain!r}")
        self.model, self.classical = model, classical or ShiftedLaplacian()
        self.device, self.min_gain, self.probe = device, float(min_gain), int(probe)

    def setup(self, A, p=None):
        super().setup(A, p)
        t0 = time.perf_counter()
        self.classical.setup(A, p)
        self.grid = param(p, "grid")
        if self.grid is None:
            raise ValueError("LearnedShiftedLaplacian needs a structured grid (PrecondParams(grid=...)); a "
                             "Helmholtz system on meshes.unit_square provides it")
        self.device = param(p, "device", self.device)
        net = self.model
        if isinstance(net, (str, Path)):
            net = load_helmholtz_net(net, self.device)
        self.net = net.to(self.device).eval() if net is not None else None
        kh = local_kh(self.classical.k2M, self.grid)
        self._kh = torch.as_tensor(kh, dtype=torch.float32, device=self.device)[None, None]
        self.stats.update({"setup_s": time.perf_counter() - t0, "network_s": 0.0, "network_calls": 0,
                           "accepted": 0, "rejected": 0, "switched_off": 0})
        self.begin_solve()
        return self

    def begin_solve(self) -> None:
        """Per-solve state: the network is probed again at the start of every solve."""
        self._accepted = self._rejected = 0
        self._off = False

    def correction(self, r1: np.ndarray) -> np.ndarray:
        """The network's error estimate for the residual ``r1`` (dof order, complex)."""
        t0 = time.perf_counter()
        g = _to_grid(self.grid, r1)
        scale = np.sqrt(np.mean(np.abs(g) ** 2)) or 1.0
        x = torch.as_tensor(np.stack([g.real, g.imag]) / scale, dtype=torch.float32, device=self.device)[None]
        with torch.inference_mode():
            out = self.net(x, self._kh)[0].double().cpu().numpy()
        self.stats["network_s"] += time.perf_counter() - t0
        self.stats["network_calls"] += 1
        return _to_dofs(self.grid, out[0] + 1j * out[1])

    def apply(self, r):
        r = np.asarray(r, dtype=np.complex128)
        e1 = self.classical.apply(r)
        if self.net is None or self._off:
            return e1
        r1 = r - self.A @ e1
        n1 = np.linalg.norm(r1)
        e2 = self.correction(r1)
        if n1 > 0 and np.all(np.isfinite(e2)):
            z = self._combine(r1, e1, e2)
            if z is not None:
                self.stats["accepted"] += 1
                self._accepted += 1
                return z
        self.stats["rejected"] += 1
        self._rejected += 1
        if self._accepted == 0 and self._rejected >= self.probe:
            self._off = True
            self.stats["switched_off"] += 1
        return e1

    def _combine(self, r1, e1, e2):
        """``e1 + alpha e2`` with ``alpha`` minimizing ``||r1 - alpha A e2||``, or ``None`` when that does
        not reduce ``||r1||`` by ``min_gain``."""
        Ae2 = self.A @ e2
        den = np.vdot(Ae2, Ae2).real
        if den <= 0:
            return None
        alpha = np.vdot(Ae2, r1) / den
        ok = np.linalg.norm(r1 - alpha * Ae2) <= (1.0 - self.min_gain) * np.linalg.norm(r1)
        return e1 + alpha * e2 if ok else None

    def __repr__(self):
        return f"LearnedShiftedLaplacian(classical={self.classical!r}, device={self.device!r})"
