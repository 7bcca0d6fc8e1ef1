"""The geometric multigrid cycle of :class:`solvers.linear.ShiftedLaplacian` on a torch device.

The hierarchy (Galerkin coarse operators, the coarsest LU factorization) is built once on the CPU by the
solvers layer, in grid order; this class moves its level operators to the device as
:class:`~hybrid.gpu.stencil.StencilOperator` values and runs the same cycle there: damped Jacobi,
bilinear prolongation ``P`` and its transpose as restriction, applied by strided slicing instead of
sparse products. The coarsest grid is solved with the CPU's LU factors (``"cpu"``: one copy each way
per cycle) or, on a CUDA device where CuPy is installed, with the same factors' triangular solves on the
GPU (``"cupy"``: ``cupyx.scipy.sparse.linalg.splu``). Why written: no torch library offers a multigrid
cycle; the cycle is the one of :func:`solvers.linear.hierarchy.vcycle` (a test compares them).
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp
import torch

from .stencil import StencilOperator


def prolong(xc: torch.Tensor) -> torch.Tensor:
    """Bilinear interpolation from ``(ny+1, nx+1)`` coarse nodes to ``(2ny+1, 2nx+1)`` fine nodes (the
    ``kron`` of :func:`solvers.linear.preconditioners.multigrid._interp_1d` in grid order)."""
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
    coarse : ``"cpu"``, ``"cupy"`` or ``"auto"`` (CuPy on a CUDA device when it agrees with the CPU solve
        and is faster on one trial, else the CPU).
    """

    def __init__(self, hierarchy, shape, omega: float, sweeps: int = 1, device="cpu", coarse: str = "auto"):
        if coarse not in ("cpu", "cupy", "auto"):
            raise ValueError(f"coarse must be 'cpu', 'cupy' or 'auto', got {coarse!r}")
        self.device = torch.device(device)
        self.omega, self.sweeps = float(omega), int(sweeps)
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
        self.coarse = self._choose_coarse(coarse, levels[-1].A, shapes[-1])
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
                self.coarse = name
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
        if self.coarse == "cupy":
            x = self._lu_gpu.solve(self._cupy.from_dlpack(b.reshape(-1).contiguous()))
            return torch.from_dlpack(x).reshape(b.shape)
        x = self._coarse_cpu(b.reshape(-1).cpu().numpy())
        return torch.as_tensor(x, device=self.device).reshape(b.shape)

    def __call__(self, b: torch.Tensor, level: int = 0) -> torch.Tensor:
        """One V-cycle for ``A_level x = b`` (``b`` of the level's grid shape)."""
        if level == len(self.ops):
            t0 = time.perf_counter()
            x = self._coarse_solve(b)
            self.stats["coarse_s"] += time.perf_counter() - t0
            return x
        A, dinv = self.ops[level], self.dinv[level]
        x = dinv * b  # the first Jacobi sweep from x = 0
        for _ in range(self.sweeps - 1):
            x = x + dinv * (b - A @ x)
        x = x + prolong(self(restrict(b - A @ x), level + 1))
        for _ in range(self.sweeps):
            x = x + dinv * (b - A @ x)
        return x
