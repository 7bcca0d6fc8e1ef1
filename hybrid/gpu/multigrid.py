"""The geometric multigrid cycle of :class:`solvers.linear.ShiftedLaplacian` on a torch device.

The hierarchy (Galerkin coarse operators, the coarsest LU factorization) is built once on the CPU by the
solvers layer, in grid order; this class moves its level operators to the device as
:class:`~hybrid.gpu.stencil.StencilOperator` values and runs the same cycle there: damped Jacobi,
bilinear prolongation ``P`` and its transpose as restriction, applied by strided slicing instead of
sparse products. The coarsest grid is solved with the CPU's LU factors (``"cpu"``: one copy each way
per cycle) or, on a CUDA device where CuPy is installed, with the same factors' triangular solves on the
GPU (``"cupy"``: ``cupyx.scipy.sparse.linalg.splu``). Why written: no torch library offers a multigrid
cycle; the cycle is the one of :func:`solvers.linear.hierarchy.vcycle` (a test compares them).

``coarse="krylov"`` replaces the exact solve on level ``stop`` by ``inner`` FGMRES iterations on that
level, preconditioned by a V-cycle through the deeper levels of a hierarchy built further down (to an LU
of a few hundred unknowns): everything then stays on the device, and the cycle is no longer linear
(the outer FGMRES allows that). The exact LU was 60-95% of the GPU solve at n = 1024-2048
(bench/results/helmholtz-gpu-solve.json); a Krylov coarse solve is the two-level approach of Calandra,
Gratton, Pinel & Vasseur (Numer. Linear Algebra Appl. 2013) for heterogeneous Helmholtz.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp
import torch

from .fgmres import fgmres
from .stencil import StencilOperator


def prolong(xc: torch.Tensor) -> torch.Tensor:
    """Bilinear interpolation from ``(ny+1, nx+1)`` coarse nodes to ``(2ny+1, 2nx+1)`` fine nodes (the
    ``kron`` of :func:`solvers.linear.preconditioners.multigrid.linear_interpolation_1d` in grid order)."""
    ny1, nx1 = xc.shape
    t = xc.new_zeros((ny1, 2 * nx1 - 1))
    t[:, ::2] = xc
    t[:, 1::2] = 0.5 * (xc[:, :-1] + xc[:, 1:])
    f = xc.new_zeros((2 * ny1 - 1, 2 * nx1 - 1))
    f[::2] = t
    f[1::2] = 0.5 * (t[:-1] + t[1:])
    return f


def restrict(xf: torch.Tensor) -> torch.Tensor:
    """``P^T xf``: the adjoint of :func:`prolong` (full weighting without the factor 1/4)."""
    t = xf[::2].clone()
    t[:-1] += 0.5 * xf[1::2]
    t[1:] += 0.5 * xf[1::2]
    c = t[:, ::2].clone()
    c[:, :-1] += 0.5 * t[:, 1::2]
    c[:, 1:] += 0.5 * t[:, 1::2]
    return c


class TorchCycle:
    """One multigrid V-cycle (zero initial guess, linear in ``b``) of a grid-ordered
    :class:`solvers.linear.Hierarchy` on ``device``.

    Parameters
    ----------
    hierarchy : levels in grid order with bilinear ``P`` (a ``GeometricMG`` hierarchy built with
        ``grid=shape``: checked at construction against the level's own ``P``).
    shape : node grid ``(ny+1, nx+1)`` of the finest level.
    omega, sweeps : the damped-Jacobi smoother of the hierarchy (``ShiftedLaplacian``'s).
    coarse : ``"cpu"`` (default), ``"cupy"`` or ``"auto"`` (CuPy on a CUDA device when it agrees with the
        CPU solve and is faster on one trial, else the CPU) for the hierarchy's coarsest LU (on the H200,
        CuPy's triangular solves were 10-15x slower than the host's at n = 1024-2048); ``"krylov"``: ``inner``
        FGMRES iterations on level ``stop`` (see the module docstring).
    stop, inner : (``"krylov"``) the level solved by FGMRES and its number of iterations.
    """

    def __init__(self, hierarchy, shape, omega: float, sweeps: int = 1, device="cpu", coarse: str = "cpu",
                 stop: int | None = None, inner: int = 10):
        if coarse not in ("cpu", "cupy", "auto", "krylov"):
            raise ValueError(f"coarse must be 'cpu', 'cupy', 'auto' or 'krylov', got {coarse!r}")
        bottom = len(hierarchy.levels) - 1
        if coarse == "krylov" and not (stop is not None and 0 < stop < bottom and inner >= 1):
            raise ValueError(f"coarse='krylov' needs 0 < stop < {bottom} (levels below it precondition the "
                             f"coarse FGMRES) and inner >= 1, got stop={stop!r}, inner={inner!r}")
        self.device = torch.device(device)
        self.omega, self.sweeps = float(omega), int(sweeps)
        self.stop = stop if coarse == "krylov" else bottom
        self.inner = int(inner)
        self.ops, self.dinv = [], []
        levels = hierarchy.levels
        shapes = [tuple(shape)]
        for lvl in levels[:-1]:
            ny1, nx1 = shapes[-1]
            shapes.append(((ny1 - 1) // 2 + 1, (nx1 - 1) // 2 + 1))
        for lvl, shp in zip(levels[:-1], shapes):
            op = StencilOperator.from_scipy(lvl.A, shp, device=self.device)
            self.ops.append(op)
            self.dinv.append(self.omega / op.diagonal)
        self._check_transfers(levels, shapes)
        self.shapes = shapes
        self._coarse_cpu = hierarchy.coarse_solve
        if coarse == "krylov":
            self.coarse = "krylov"
            self._lu = "cpu"  # the deepest LU (a few hundred unknowns) inside the coarse FGMRES's cycles
        else:
            self.coarse = self._lu = self._choose_coarse(coarse, levels[-1].A, shapes[-1])
        self.stats = {"coarse": self.coarse, "coarse_s": 0.0}

    @staticmethod
    def _check_transfers(levels, shapes):
        rng = np.random.default_rng(0)
        for lvl, (fine, coarse) in zip(levels[:-1], zip(shapes, shapes[1:])):
            v = rng.standard_normal(coarse[0] * coarse[1])
            ref = np.asarray(lvl.P @ v).reshape(fine)
            got = prolong(torch.as_tensor(v.reshape(coarse))).numpy()
            if ref.shape != got.shape or not np.allclose(ref, got, rtol=0, atol=1e-12):
                raise ValueError("TorchCycle: the hierarchy's prolongation is not bilinear interpolation in grid "
                                 "order (build it with GeometricMG(grid=shape) on a grid-ordered matrix)")

    def _choose_coarse(self, coarse, Ac, shape):
        if coarse == "cpu" or self.device.type != "cuda":
            if coarse == "cupy":
                raise ValueError("coarse='cupy' needs a CUDA device")
            return "cpu"
        try:
            import cupy
            import cupyx.scipy.sparse as csp
            import cupyx.scipy.sparse.linalg as cspla

            self._lu_gpu = cspla.splu(csp.csr_matrix(sp.csr_matrix(Ac)))
            self._cupy = cupy
            v = torch.randn(shape, dtype=torch.complex128, device=self.device)
            times = {}
            outs = {}
            for name in ("cpu", "cupy"):
                self._lu = name
                self._coarse_solve(v)
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                outs[name] = self._coarse_solve(v)
                torch.cuda.synchronize()
                times[name] = time.perf_counter() - t0
            err = float(torch.linalg.vector_norm(outs["cupy"] - outs["cpu"]) / torch.linalg.vector_norm(outs["cpu"]))
            if not err < 1e-10:
                raise ValueError(f"GPU coarse solve differs from the CPU one by {err:.1e}")
            self.coarse_trial = {"cpu_s": times["cpu"], "cupy_s": times["cupy"], "difference": err}
            if coarse == "cupy" or times["cupy"] < times["cpu"]:
                return "cupy"
            return "cpu"
        except Exception as e:  # noqa: BLE001 - CuPy missing or failing: the CPU factors always work
            if coarse == "cupy":
                raise
            self.coarse_trial = {"error": f"{type(e).__name__}: {str(e)[:200]}"}
            return "cpu"

    def _coarse_solve(self, b: torch.Tensor) -> torch.Tensor:
        if self._lu == "cupy":
            x = self._lu_gpu.solve(self._cupy.from_dlpack(b.reshape(-1).contiguous()))
            return torch.from_dlpack(x).reshape(b.shape)
        x = self._coarse_cpu(b.reshape(-1).cpu().numpy())
        return torch.as_tensor(x, device=self.device).reshape(b.shape)

    def __call__(self, b: torch.Tensor) -> torch.Tensor:
        """One cycle for ``A x = b`` on the finest level (``b`` of the grid's shape)."""
        return self._vcycle(b, 0, self.stop)

    def _vcycle(self, b: torch.Tensor, level: int, stop: int) -> torch.Tensor:
        """V-cycle from ``level`` down to ``stop``, where the system is solved (LU at the hierarchy's
        bottom, FGMRES above it)."""
        if level == stop:
            t0 = time.perf_counter()
            if stop == len(self.ops):
                x = self._coarse_solve(b)
            else:
                deeper = lambda r: self._vcycle(r, stop, len(self.ops))  # noqa: E731
                x = fgmres(self.ops[stop], deeper, b, rtol=0.0, restart=self.inner, maxiter=self.inner).x
            if level == self.stop:
                self.stats["coarse_s"] += time.perf_counter() - t0
            return x
        A, dinv = self.ops[level], self.dinv[level]
        x = dinv * b  # the first Jacobi sweep from x = 0
        for _ in range(self.sweeps - 1):
            x = x + dinv * (b - A @ x)
        x = x + prolong(self._vcycle(restrict(b - A @ x), level + 1, stop))
        for _ in range(self.sweeps):
            x = x + dinv * (b - A @ x)
        return x
