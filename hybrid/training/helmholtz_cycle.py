"""The loss through the second cycle: train the learned Helmholtz correction for what the cycle cannot do.

The preconditioner of :mod:`hybrid.precond.helmholtz` (scheme ``"VNV"``) maps a residual ``r`` to
``e1 + alpha e2 + beta e3``: the shifted-Laplacian cycle ``e1 = V(r)``, the network's step ``e2 = N(r1)``
on what the cycle left (``r1 = r - A e1``) scaled by the residual-minimizing ``alpha``, and a second cycle
``e3 = V(r2)`` on ``r2 = r1 - alpha A e2``, scaled by its ``beta``. The losses of
:mod:`hybrid.training.helmholtz` train ``N`` to predict the exact error ``A^{-1} r1``, all of it, although
the second cycle removes part of it anyway. :func:`cycle_loss` is instead the residual the whole step
leaves, ``||r3||^2 / ||r1||^2`` with ``r3 = r2 - beta A V(r2)``: the network is rewarded only for the
error components the cycle misses (the near-resonant, wavelength-scale ones), which is the idea of
learned smoothers that complement a multigrid cycle (Katrutsa, Daulbaev & Oseledets 2020; Azulay &
Treister 2022 train their correction inside the preconditioner the same way).

The cycle is :class:`hybrid.gpu.multigrid.TorchCycle` (torch stencils, so autograd differentiates it) with
its coarsest LU made differentiable here: the cycle is linear, and the gradient of ``x = A_c^{-1} b`` is
``A_c^{-H}`` applied to the incoming gradient (PyTorch's conjugate-Wirtinger convention), one transposed
solve with the same factors. Operators are built once per medium (:class:`MediumOperators`) from its
wave speed by :func:`solvers.problems.helmholtz_grid.assemble` (numpy, grid order) and
:class:`solvers.linear.ShiftedLaplacian`.
"""

from __future__ import annotations

import numpy as np
import torch

from ..gpu.helmholtz import ls_scale
from ..gpu.multigrid import TorchCycle
from ..gpu.stencil import StencilOperator
from .helmholtz import PPW


class _CoarseLU(torch.autograd.Function):
    """``x = A_c^{-1} b`` with the host's sparse LU factors; backward: ``A_c^{-H} g``."""

    @staticmethod
    def forward(ctx, b, lu):
        ctx.lu = lu
        x = lu.solve(b.detach().reshape(-1).cpu().numpy())
        return torch.as_tensor(x, device=b.device).reshape(b.shape)

    @staticmethod
    def backward(ctx, g):
        x = ctx.lu.solve(np.ascontiguousarray(g.reshape(-1).cpu().numpy()), trans="H")
        return torch.as_tensor(x, device=g.device).reshape(g.shape), None


class DifferentiableCycle(TorchCycle):
    """:class:`TorchCycle` whose coarsest solve passes gradients (the hierarchy's LU on the host)."""

    def __init__(self, hierarchy, shape, omega: float, sweeps: int = 1, device="cpu"):
        super().__init__(hierarchy, shape, omega, sweeps, device=device, coarse="cpu")
        self._lu_factors = getattr(hierarchy.coarse_solve, "__self__", None)
        if self._lu_factors is None or not hasattr(self._lu_factors, "solve"):
            raise ValueError("DifferentiableCycle needs the hierarchy's coarsest solve to be a SuperLU's solve")

    def _coarse_solve(self, b: torch.Tensor) -> torch.Tensor:
        return _CoarseLU.apply(b, self._lu_factors)


class MediumOperators:
    """``A`` and the shifted-Laplacian cycle of the Helmholtz problem on one medium, in grid order, as
    torch operators (built on first use and cached; ``k`` from :func:`solvers.problems.helmholtz_grid.wavenumber`
    of the grid size, as every sample was made)."""

    def __init__(self, speeds: np.ndarray, device="cpu", ppw: float = PPW):
        speeds = np.asarray(speeds, dtype=float)
        if speeds.ndim != 3 or speeds.shape[1] != speeds.shape[2]:
            raise ValueError(f"speeds must be (M, n+1, n+1) node grids, got shape {speeds.shape}")
        self.speeds, self.device, self.ppw = speeds, device, ppw
        self._cache: dict[int, tuple] = {}

    def __len__(self) -> int:
        return len(self.speeds)

    def __getitem__(self, m: int):
        """``(A, cycle, kh)`` of medium ``m``: a :class:`StencilOperator`, a :class:`DifferentiableCycle`
        and the network's ``k h`` input (grid, float32) for checking against a dataset's."""
        m = int(m)
        if m not in self._cache:
            from solvers.linear.preconditioners import ShiftedLaplacian
            from solvers.problems.helmholtz_grid import assemble, wavenumber

            from ..precond.helmholtz import local_kh

            c = self.speeds[m]
            shape = c.shape
            n = shape[0] - 1
            A, k2M, _ = assemble(c, wavenumber(n, self.ppw))
            pc = ShiftedLaplacian().setup(A, {"grid": shape, "operators": {"k2M": k2M}})
            cycle = DifferentiableCycle(pc.hierarchy, shape, pc.omega, pc.sweeps, device=self.device)
            self._cache[m] = (StencilOperator.from_scipy(A, shape, device=self.device), cycle,
                              local_kh(k2M, shape).astype(np.float32))
        return self._cache[m]


def step_residual(e2: torch.Tensor, r1: torch.Tensor, A, cycle) -> torch.Tensor:
    """``r3``, the residual after the network's scaled step on ``r1`` and the scaled second cycle (complex
    grids; the preconditioner's ``_combine`` without its safeguard)."""
    Ae2 = A @ e2
    r2 = r1 - ls_scale(Ae2, r1) * Ae2
    Ae3 = A @ cycle(r2)
    return r2 - ls_scale(Ae3, r2) * Ae3


def cycle_loss(pred: torch.Tensor, r1: torch.Tensor, ops: list) -> torch.Tensor:
    """Mean over the batch of ``||r3||^2 / ||r1||^2`` (see the module docstring): ``pred`` and ``r1`` are
    (B, 2, H, W) real/imaginary channels in the media's own orientation, ``ops[b]`` the ``(A, cycle, ...)``
    of sample ``b``'s medium (:class:`MediumOperators`). 1 would be a step that leaves ``||r1||`` unchanged;
    a network that adds nothing (zero output) gives the second cycle's own value,
    ``||(I - beta A V) r1||^2 / ||r1||^2``, the baseline to beat."""
    out = []
    for b, (A, cycle, *_) in enumerate(ops):
        r = torch.complex(r1[b, 0], r1[b, 1]).to(torch.complex128)
        e2 = torch.complex(pred[b, 0], pred[b, 1]).to(torch.complex128)
        r3 = step_residual(e2, r, A, cycle)
        out.append(torch.vdot(r3.reshape(-1), r3.reshape(-1)).real / torch.vdot(r.reshape(-1), r.reshape(-1)).real)
    return torch.stack(out).mean().to(pred.dtype)
