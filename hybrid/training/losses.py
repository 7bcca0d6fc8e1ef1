"""Losses on grids: relative L2 and relative H1 with finite differences that respect Dirichlet edges.

The H1 seminorm uses one-sided differences *inside* the grid (no periodic wrap-around, unlike the
FFT-based H1 of periodic benchmarks): ``du/dx ~ (u[:, 1:] - u[:, :-1]) / h``. Norms are discrete
approximations of the continuous ones on ``[0, 1]^2`` (spacing ``1 / (n - 1)``), so they are
comparable across resolutions.
"""

from __future__ import annotations

import torch


def _flat(x):
    return x.reshape(x.shape[0], -1)


def l2_norm(u: torch.Tensor) -> torch.Tensor:
    """Per-sample discrete L2 norm on the unit square, ``(batch,)``."""
    ny, nx = u.shape[-2:]
    return torch.sqrt(_flat(u**2).sum(1) / ((ny - 1) * (nx - 1)))


def h1_seminorm(u: torch.Tensor) -> torch.Tensor:
    ny, nx = u.shape[-2:]
    dx = (u[..., :, 1:] - u[..., :, :-1]) * (nx - 1)
    dy = (u[..., 1:, :] - u[..., :-1, :]) * (ny - 1)
    return torch.sqrt((_flat(dx**2).sum(1) + _flat(dy**2).sum(1)) / ((ny - 1) * (nx - 1)))


def relative_l2(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Per-sample ``||pred - true|| / ||true||``."""
    return l2_norm(pred - true) / l2_norm(true).clamp_min(1e-30)


def relative_h1(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Per-sample relative H1 (L2 + seminorm) error."""
    e, t = pred - true, true
    num = torch.sqrt(l2_norm(e) ** 2 + h1_seminorm(e) ** 2)
    den = torch.sqrt(l2_norm(t) ** 2 + h1_seminorm(t) ** 2).clamp_min(1e-30)
    return num / den


LOSSES = {"l2": relative_l2, "h1": relative_h1}
