"""Noise on batches of training/evaluation inputs (torch), the two models of :mod:`hybrid.inverse.noise`
(which adds them to single observation vectors and returns the noise norm for the discrepancy principle):
multiplicative (the NIO paper validates with 10%) and additive, scaled by each sample's RMS."""

from __future__ import annotations

import math
from typing import Sequence

import torch


def _check_level(level) -> float:
    if isinstance(level, bool) or not (isinstance(level, (int, float)) and math.isfinite(level) and level >= 0):
        raise ValueError(f"noise level must be a non-negative finite number (0.1 = 10%), got {level!r}")
    return float(level)


def additive_noise(x: torch.Tensor, level: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """``x + level * rms(x) * xi`` per sample (``x`` shaped ``(N, ...)``; noise norm about ``level * ||x||``,
    the additive model of :func:`hybrid.inverse.add_noise`). ``level=0`` returns ``x`` itself."""
    if _check_level(level) == 0:
        return x
    rms = x.pow(2).mean(dim=tuple(range(1, x.ndim)), keepdim=True).sqrt()
    xi = torch.randn(x.shape, generator=generator, dtype=x.dtype)
    return x + level * rms * xi


def multiplicative_noise(x: torch.Tensor, level: float, channels: Sequence[int] | None = None,
                         seed: int = 0) -> torch.Tensor:
    """``x * (1 + level * N(0, 1))`` entrywise on ``channels`` of ``x`` shaped ``(N, C, ...)`` (all when ``None``);
    other channels (known inputs such as EIT's boundary patterns) are returned unchanged. Deterministic in
    ``seed``, so a noisy validation set is the same at every epoch. ``level=0`` returns ``x`` itself.

    >>> x = torch.ones(2, 2, 3)
    >>> y = multiplicative_noise(x, 0.1, channels=[1], seed=3)
    >>> bool((y[:, 0] == 1).all()), bool((y[:, 1] != 1).all())
    (True, True)
    """
    if _check_level(level) == 0:
        return x
    channels = range(x.shape[1]) if channels is None else list(channels)
    bad = [c for c in channels if not 0 <= c < x.shape[1]]
    if bad:
        raise ValueError(f"noise channels {bad} out of range for {x.shape[1]} channels")
    g = torch.Generator().manual_seed(int(seed))
    out = x.clone()
    for c in channels:
        eps = torch.randn(x[:, c].shape, generator=g, dtype=torch.float64).to(x.dtype)
        out[:, c] = x[:, c] * (1 + level * eps.to(x.device))
    return out


def training_noise(x: torch.Tensor, max_level: float, channels: Sequence[int] | None, seed: int) -> torch.Tensor:
    """Noise augmentation for a training batch: :func:`multiplicative_noise` with a level drawn per sample,
    uniform in ``[0, max_level]`` (the model sees clean and noisy data alike), deterministic in ``seed``.

    >>> x = torch.ones(3, 2, 4)
    >>> y = training_noise(x, 0.1, [1], seed=0)
    >>> bool((y[:, 0] == 1).all()), bool(((y[:, 1] - 1).abs() < 0.6).all())
    (True, True)
    """
    if _check_level(max_level) == 0:
        return x
    channels = range(x.shape[1]) if channels is None else list(channels)
    g = torch.Generator().manual_seed(int(seed))
    level = max_level * torch.rand(x.shape[0], generator=g, dtype=torch.float64)
    out = x.clone()
    for c in channels:
        eps = torch.randn(x[:, c].shape, generator=g, dtype=torch.float64)
        scale = 1 + level.view(-1, *([1] * (eps.ndim - 1))) * eps
        out[:, c] = x[:, c] * scale.to(device=x.device, dtype=x.dtype)
    return out
