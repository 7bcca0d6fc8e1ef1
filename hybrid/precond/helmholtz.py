"""A learned correction of the shifted-Laplacian cycle for Helmholtz (after Azulay & Treister, SISC 2022).

One application for an Arnoldi vector ``r`` (inside FGMRES):

1. ``e1 = V(r)``: one cycle of the classical complex shifted Laplacian (:class:`ShiftedLaplacian`, the
   same preconditioner as ``cslp+fgmres``);
2. ``r1 = r - A e1``: what the cycle leaves, mostly near-resonant waves that the damped operator
   cannot see;
3. ``e2 = net(r1 / rms(r1), k h)``: a U-Net on the grid (channels: real and imaginary part of the
   residual, and the local ``k(x) h``, which is resolution-free at fixed points per wavelength) trained
   to predict the error ``A^{-1} r1`` and, in the shipped network's last training step, to leave the
   least residual after step 6 (:mod:`hybrid.training.helmholtz_cycle`);
4. ``z = e1 + alpha e2`` with the complex ``alpha`` minimizing ``||r1 - alpha A e2||`` (the network's scale
   is only approximate);
5. safeguard: the step is taken only when its residual ``r2 = r1 - alpha A e2`` is at most ``1 - min_gain``
   times that of the classical cycle alone, ``||r1||``; otherwise (or for non-finite output) ``z = e1``.
   When no step has been accepted in the first ``probe`` applications of a solve, the network is
   switched off for the rest of it (an untrained or broken model then costs
   ``probe`` network calls, never a failed or wrong solve: FGMRES's residual is the true one);
6. ``scheme="VNV"`` (the default): after an accepted step, a second cycle on what is left,
   ``z = e1 + alpha e2 + beta V(r2)`` with ``beta`` minimizing ``||r2 - beta A V(r2)||``: the cycle does
   its own work once more on what the network left. It is the whole cycle that helps, not its smoothing:
   Jacobi sweeps alone on the network's output saved 2 of 50 iterations (below). ``scheme="VN"`` stops at
   step 5. A second cycle helps the classical method too (``ShiftedLaplacian(cycles=2)``,
   ``cslp2+fgmres``), which the benchmark reports beside it.

The map is nonlinear in ``r`` (network, accept test): use FGMRES.

Measured alternatives (iteration counts of FGMRES(30) to 1e-8, layered medium, the network before the
shipped one, ``bench/models/helmholtz_cslp_inloop_vn.pt``; numbers in the README): the second cycle of
step 6 took n = 512 from 110 to 88 iterations and the time
down with them (a cycle costs less than a network call); the network first and then one cycle on its
residual (``N V``, as Lerer, Ben-Yair & Treister 2024) 101; two network calls per application (``V N
N``) 96 at twice the network time; one or two damped-Jacobi sweeps on the network's output 48 against 50
at n = 256. At n = 64/128 with an earlier network: ``z = e1 + e2 + V(r1 - A e2)`` without the
least-squares scales had every step rejected; the two-term step ``beta e1 + alpha e2`` gave the same
iterations as step 4.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
import torch

from solvers.linear.preconditioners import ShiftedLaplacian, TwoLevelDeflation
from solvers.linear.preconditioners.shifted_laplacian import nodal_kh
from solvers.linear.preconditioners.base import Preconditioner, param

from ..names import shipped_model
from ..operators.helmholtz_net import HelmholtzNet, HelmholtzNetConfig
from ..operators.unet import cpu_layout
from .net_checkpoint import load_net, save_net

KIND = "helmholtz-cslp-correction"
#: how the cycle ``V`` and the network ``N`` combine in one application (module docstring, steps 5-6)
SCHEMES = ("VNV", "VN")
PRECISIONS = ("float32", "bfloat16")


def check_precision(precision) -> str:
    """``precision`` as one of :data:`PRECISIONS`, or ``ValueError`` naming it."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return str(precision)


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


def check_training_kind(net, classical, name) -> None:
    """Warn when a checkpoint says it was trained for the other loop: on the cycle's own residuals but used
    after a deflated step (``classical=TwoLevelDeflation(...)``), or the reverse. It still converges (the
    safeguard holds), with more iterations: at n = 64 the cycle's network in the deflated loop needs 6
    where the deflated-loop network needs 5. Checkpoints that do not say (``extra["train"]["deflated"]``
    absent) pass silently."""
    trained = (getattr(net, "checkpoint_extra", None) or {}).get("train", {}).get("deflated")
    deflating = isinstance(classical, TwoLevelDeflation)
    if isinstance(trained, bool) and trained != deflating:
        kinds = ("the shifted-Laplacian cycle's own residuals", "the residuals a deflated step leaves")
        used = "after a deflated step (TwoLevelDeflation)" if deflating else "after the cycle alone"
        shipped = shipped_model("learned-def+fgmres" if deflating else "learned-cslp+fgmres")
        warnings.warn(f"{name}: trained on {kinds[trained]}, used {used}; it converges (safeguarded) but needs "
                      f"more iterations. Shipped for this loop: bench/models/{shipped}", stacklevel=3)


def _k2M(pc):
    """The ``k^2``-weighted mass of the shifted-Laplacian cycle in ``pc`` (itself, or the ``inner`` of a
    deflation around it)."""
    while pc is not None and not hasattr(pc, "k2M"):
        pc = getattr(pc, "inner", None)
    if pc is None:
        raise ValueError("LearnedShiftedLaplacian: the classical preconditioner has no shifted-Laplacian cycle "
                         "(k2M): use ShiftedLaplacian() or TwoLevelDeflation(ShiftedLaplacian())")
    return pc.k2M


def _to_grid(grid, v):
    return grid.to_grid(v) if hasattr(grid, "to_grid") else v.reshape(grid)


def _to_dofs(grid, g):
    """Grid array(s) ``(..., ny, nx)`` -> dof vector(s) ``(..., dofs)`` (a shape tuple means grid order)."""
    return grid.to_dofs(g) if hasattr(grid, "to_dofs") else g.reshape(*g.shape[:-2], -1)


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
    scheme : ``"VNV"`` (cycle, network, cycle: the default) or ``"VN"`` (no second cycle); see the module
        docstring. A rejected network step gives the classical cycle alone in both.
    precision : ``"float32"`` (the default) or ``"bfloat16"``: the network's pass under torch's autocast
        (convolutions in bfloat16, normalizations in float32), for CPUs with native bfloat16 arithmetic.
        Measured inside two-level deflation at n = 1024 (layered medium, one core of an AMD EPYC with
        AVX512-BF16; one-off run, two passes each): the network's time per solve 5.5-6.1 -> 4.1-4.4 s, the
        same 8 iterations (what the step leaves of the cycle's residual 0.888 against 0.876). Not the
        default: the benchmark's rows are float32, and on CPUs without native bfloat16 autocast is slower.
    """

    linear = False
    symmetric = False

    def __init__(self, model=None, classical: ShiftedLaplacian | None = None, device="cpu",
                 min_gain: float = 0.005, probe: int = 5, scheme: str = "VNV", precision: str = "float32"):
        self.precision = check_precision(precision)
        if not (0 <= min_gain < 1):
            raise ValueError(f"min_gain must be in [0, 1), got {min_gain!r}")
        if scheme not in SCHEMES:
            raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
        self.model, self.classical = model, classical or ShiftedLaplacian()
        self.device, self.min_gain, self.probe, self.scheme = device, float(min_gain), int(probe), scheme

    def setup(self, A, p=None):
        super().setup(A, p)
        t0 = time.perf_counter()
        self.classical.setup(A, p)
        self.grid = param(p, "grid")
        if self.grid is None:
            raise ValueError("LearnedShiftedLaplacian needs a structured grid of P1 dofs (PrecondParams(grid=...)); "
                             "a degree-1 Helmholtz system on meshes.unit_square provides it")
        self.device = param(p, "device", self.device)
        net = self.model
        if isinstance(net, (str, Path)):
            net = load_helmholtz_net(net, self.device)
            check_training_kind(net, self.classical, self.model)
        self.net = net.to(self.device).eval() if net is not None else None
        self._layout = torch.contiguous_format
        if self.net is not None and torch.device(self.device).type == "cpu":
            self.net, self._layout = cpu_layout(self.net), torch.channels_last  # faster convolutions (cpu_layout)
        kh = local_kh(_k2M(self.classical), self.grid)
        self._kh = torch.as_tensor(kh, dtype=torch.float32, device=self.device)[None, None].contiguous(
            memory_format=self._layout)
        self.stats.update({"setup_s": time.perf_counter() - t0, "network_s": 0.0, "network_calls": 0,
                           "accepted": 0, "rejected": 0, "switched_off": 0, "network_gain": None})
        self.begin_solve()
        return self

    def begin_solve(self) -> None:
        """Per-solve state: the network is probed again at the start of every solve, and ``network_gain``
        is this solve's mean."""
        self._accepted = self._rejected = 0
        self._off = False
        self._log_gain, self._gains = 0.0, 0
        self.stats["network_gain"] = None

    def correction(self, r1: np.ndarray) -> np.ndarray:
        """The network's error estimate for the residual ``r1`` (dof order, complex)."""
        t0 = time.perf_counter()
        # written for memory at n = 2048 (a complex vector is 67 MB): no temporaries of the grid's size
        # beyond the float32 input and output planes
        g = _to_grid(self.grid, r1)
        scale = np.linalg.norm(g) / np.sqrt(g.size) or 1.0
        # the input planes in the network's layout (channels-last on the CPU: a (1, ny, nx, 2) array seen
        # as (1, 2, ny, nx)), so torch makes no copy of them
        cl = self._layout == torch.channels_last
        x = np.empty((1, *g.shape, 2) if cl else (1, 2, *g.shape), dtype=np.float32)
        planes = (x[0, ..., 0], x[0, ..., 1]) if cl else (x[0, 0], x[0, 1])
        np.multiply(g.real, 1.0 / scale, out=planes[0], casting="same_kind")
        np.multiply(g.imag, 1.0 / scale, out=planes[1], casting="same_kind")
        del g, planes
        with torch.inference_mode(), torch.autocast(torch.device(self.device).type, dtype=torch.bfloat16,
                                                    enabled=self.precision == "bfloat16"):
            xt = torch.from_numpy(x)
            xt = (xt.permute(0, 3, 1, 2) if cl else xt).to(self.device)
            out = self.net(xt, self._kh)[0].float().cpu().numpy()
        del x, xt
        e = np.empty(r1.shape[-1], dtype=np.complex128)
        e.real = _to_dofs(self.grid, out[0])  # one plane at a time (channels-last planes are strided)
        e.imag = _to_dofs(self.grid, out[1])
        del out
        self.stats["network_s"] += time.perf_counter() - t0
        self.stats["network_calls"] += 1
        return e

    def apply(self, r):
        r = np.asarray(r, dtype=np.complex128)
        e1 = self.classical.apply(r)
        if self.net is None or self._off:
            return e1
        r1 = self.A @ e1
        np.subtract(r, r1, out=r1)
        e2 = self.correction(r1)
        # the combination consumes r1 and e2 (a frame holding them would keep 134 MB alive at n = 2048)
        work = [r1, e2]
        del r1, e2
        z = self._combine(work, e1) if np.all(np.isfinite(work[1])) else None
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

    def _combine(self, work, e1):
        """``e1 + alpha e2`` (and, for ``"VNV"``, ``+ beta V(r2)``) with the least-squares scales, or
        ``None`` when the network's step does not reduce ``||r1||`` by ``min_gain``. ``work = [r1, e2]`` is
        emptied; ``e1`` is updated in place only when the step is taken. In place throughout: at n = 2048
        every temporary vector is 67 MB (with the network's lean pass this cut the solve's peak by 0.2 GB)."""
        r1, e2 = work
        work.clear()
        n1 = np.linalg.norm(r1)
        alpha, r2 = _ls_step(self.A, e2, r1)
        r2 *= -alpha
        r2 += r1                                    # r2 = r1 - alpha A e2, in A e2's storage
        del r1
        n2 = np.linalg.norm(r2)
        if n1 > 0 and np.isfinite(n2):  # what the network's step leaves of ||r1||: geometric mean in stats
            self._log_gain += np.log(max(n2 / n1, 1e-300))
            self._gains += 1
            self.stats["network_gain"] = float(np.exp(self._log_gain / self._gains))
        if not (n1 > 0 and n2 <= (1.0 - self.min_gain) * n1):
            return None
        e2 *= alpha
        z = e1
        z += e2
        del e2
        if self.scheme == "VNV":
            e3 = self.classical.apply(r2)
            beta, _ = _ls_step(self.A, e3, r2)
            e3 *= beta
            z += e3
        return z

    def __repr__(self):
        return (f"LearnedShiftedLaplacian(classical={self.classical!r}, device={self.device!r}, "
                f"scheme={self.scheme!r}, precision={self.precision!r})")


def _ls_step(A, d, r):
    """``(alpha, A d)`` with the complex ``alpha`` minimizing ``||r - alpha A d||`` (0 for ``A d = 0``)."""
    Ad = A @ d
    den = np.vdot(Ad, Ad).real
    return (np.vdot(Ad, r) / den if den > 0 else 0.0), Ad
