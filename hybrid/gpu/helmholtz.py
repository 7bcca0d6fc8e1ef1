"""``cslp+fgmres`` and ``learned-cslp+fgmres`` with every vector on a torch device (the GPU rows of the
Helmholtz benchmark, ``scripts/device_helmholtz_bench.py``).

The same methods as the CPU path (``solvers.linear.methods``, :class:`hybrid.precond.helmholtz.LearnedShiftedLaplacian`):
the shifted-Laplacian hierarchy is built by :class:`solvers.linear.ShiftedLaplacian` on the CPU and run by
:class:`~hybrid.gpu.multigrid.TorchCycle`; FGMRES(30) is :func:`~hybrid.gpu.fgmres.fgmres`; the learned
correction :class:`TorchLearnedCorrection` is the CPU class's ``apply`` (cycle, network on the cycle's
residual, least-squares step, safeguard) on tensors. Inputs are in grid order (as
:func:`solvers.problems.helmholtz_grid.assemble` makes them). ``converged`` is checked once more at the
end with the scipy matrix in float64 on the CPU.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from solvers.linear.methods import HELMHOLTZ_RESTART
from solvers.linear.preconditioners import ShiftedLaplacian
from solvers.linear.preconditioners.shifted_laplacian import COARSE_KH, coarsenings

from ..precond.helmholtz import SCHEMES, load_helmholtz_net, local_kh
from .fgmres import fgmres
from .multigrid import TorchCycle
from .stencil import StencilOperator


def _sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def ls_scale(Ad: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """The complex ``alpha`` minimizing ``||r - alpha Ad||`` (0 when ``Ad = 0``; differentiable, no host
    synchronization): the scale of the learned step and of the second cycle, here and in the training loss
    of :mod:`hybrid.training.helmholtz_cycle`."""
    den = torch.vdot(Ad.reshape(-1), Ad.reshape(-1)).real
    return torch.vdot(Ad.reshape(-1), r.reshape(-1)) / den.clamp_min(torch.finfo(den.dtype).tiny)


class TorchLearnedCorrection:
    """:meth:`LearnedShiftedLaplacian.apply` on tensors: ``e1 = cycle(r)``, then ``e1 + alpha net(r1)``
    (``+ beta cycle(r2)`` for ``scheme="VNV"``) when the network's step passes the safeguard (same
    ``min_gain``, ``probe`` and ``scheme`` defaults; see that class for the measured reasons)."""

    def __init__(self, cycle, A: StencilOperator, net, kh: torch.Tensor, min_gain: float = 0.005, probe: int = 5,
                 scheme: str = "VNV"):
        if scheme not in SCHEMES:
            raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
        self.cycle, self.A, self.net, self.kh = cycle, A, net, kh
        self.min_gain, self.probe, self.scheme = float(min_gain), int(probe), scheme
        self.stats = {"network_s": 0.0, "network_calls": 0, "accepted": 0, "rejected": 0, "switched_off": 0}
        self._off = False

    def correction(self, r1: torch.Tensor) -> torch.Tensor:
        t0 = time.perf_counter()
        scale = float(torch.sqrt(torch.mean(torch.abs(r1) ** 2))) or 1.0
        x = (torch.stack([r1.real, r1.imag]) / scale).to(torch.float32)[None]
        with torch.inference_mode():
            out = self.net(x, self.kh)[0].to(torch.float64)
        e2 = torch.complex(out[0], out[1])
        _sync(e2.device)
        self.stats["network_s"] += time.perf_counter() - t0
        self.stats["network_calls"] += 1
        return e2

    def _ls_step(self, d, r):
        Ad = self.A @ d
        return ls_scale(Ad, r), Ad

    def __call__(self, r: torch.Tensor) -> torch.Tensor:
        e1 = self.cycle(r)
        if self.net is None or self._off:
            return e1
        r1 = r - self.A @ e1
        n1 = float(torch.linalg.vector_norm(r1))
        e2 = self.correction(r1)
        if n1 > 0 and bool(torch.all(torch.isfinite(e2))):
            alpha, Ae2 = self._ls_step(e2, r1)
            r2 = r1 - alpha * Ae2
            if float(torch.linalg.vector_norm(r2)) <= (1.0 - self.min_gain) * n1:
                self.stats["accepted"] += 1
                z = e1 + alpha * e2
                if self.scheme == "VNV":
                    e3 = self.cycle(r2)
                    beta, _ = self._ls_step(e3, r2)
                    z = z + beta * e3
                return z
        self.stats["rejected"] += 1
        if self.stats["accepted"] == 0 and self.stats["rejected"] >= self.probe:
            self._off = True
            self.stats["switched_off"] += 1
        return e1


def solve_helmholtz(A, k2M, b, shape, model=None, device="cpu", rtol: float = 1e-8,
                    restart: int = HELMHOLTZ_RESTART, maxiter: int = 3000, coarse: str = "cpu",
                    inner: int = 10, scheme: str = "VNV") -> dict:
    """Solve the grid-ordered Helmholtz system ``A x = b`` by FGMRES with the shifted-Laplacian cycle
    (``model=None``: ``cslp+fgmres``) or its learned correction (a :class:`HelmholtzNet` or checkpoint
    path: ``learned-cslp+fgmres``) on ``device``. ``coarse``: how the coarsest grid of the cycle is solved
    (:class:`~hybrid.gpu.multigrid.TorchCycle`: the host's LU, CuPy, or ``"krylov"`` with ``inner``
    FGMRES iterations on the device); ``scheme``: that of the learned correction. Returns a benchmark row: iterations, setup / solve /
    network / coarse-solve seconds, true relative residual (float64, CPU), peak device memory (CUDA),
    and the solution ``x`` (numpy, grid order) under ``"x"``."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    p = {"grid": tuple(shape), "operators": {"k2M": k2M}}
    stop = None
    if coarse == "krylov":  # the hierarchy all the way down; FGMRES on the level where ShiftedLaplacian stops
        pc = ShiftedLaplacian(coarse_kh=None).setup(A, p)
        stop = coarsenings(k2M, COARSE_KH, len(pc.hierarchy.levels) - 1)
        if stop >= len(pc.hierarchy.levels) - 1:
            raise ValueError(f"coarse='krylov': the grid cannot be coarsened below level {stop}")
    else:
        pc = ShiftedLaplacian().setup(A, p)
    cpu_setup_s = time.perf_counter() - t0
    cycle = TorchCycle(pc.hierarchy, shape, pc.omega, pc.sweeps, device=device, coarse=coarse, stop=stop,
                       inner=inner)
    A_op = StencilOperator.from_scipy(A, shape, device=device)
    M, net = cycle, None
    if model is not None:
        net = (model if isinstance(model, torch.nn.Module) else load_helmholtz_net(model, device)).to(device).eval()
        kh = torch.as_tensor(local_kh(k2M, tuple(shape)), dtype=torch.float32, device=device)[None, None]
        M = TorchLearnedCorrection(cycle, A_op, net, kh, scheme=scheme)
    bt = torch.as_tensor(np.asarray(b).reshape(shape), dtype=torch.complex128, device=device)
    _sync(device)
    setup_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    res = fgmres(A_op, M, bt, rtol=rtol, restart=restart, maxiter=maxiter)
    _sync(device)
    solve_s = time.perf_counter() - t1
    x = res.x.reshape(-1).cpu().numpy()
    true_res = float(np.linalg.norm(b - A @ x) / np.linalg.norm(b))
    row = {"iterations": res.iterations, "setup_s": setup_s, "cpu_setup_s": cpu_setup_s, "solve_s": solve_s,
           "total_s": setup_s + solve_s, "rel_residual": true_res,
           "converged": bool(res.converged and true_res <= rtol), "dofs": int(A.shape[0]),
           "backend": f"torch-{device.type}", "coarse": cycle.coarse, "inner": inner if coarse == "krylov" else None, "coarse_s": cycle.stats["coarse_s"],
           "coarse_trial": getattr(cycle, "coarse_trial", None), "levels": cycle.stop + 1,
           "coarse_unknowns": int(pc.hierarchy.levels[cycle.stop].A.shape[0]),
           "history": [float(h) for h in res.residuals], "x": x}
    if res.message:
        row["message"] = res.message
    if device.type == "cuda":
        row["device_peak_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
        row["device_name"] = torch.cuda.get_device_name(device)
    if isinstance(M, TorchLearnedCorrection):
        row.update(M.stats)
    return row
