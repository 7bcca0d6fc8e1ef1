"""Noise models for synthetic observations, scaled by a relative level ``delta``.

- ``additive``: ``d + delta ||d|| xi / sqrt(K)`` with ``xi ~ N(0, I_K)`` (Gaussian white noise whose expected
  norm is about ``delta ||d||``);
- ``multiplicative``: ``d_i (1 + delta xi_i)`` (as in the NIO paper's validation noise).

Both return the noisy data and the realized noise norm ``||d_noisy - d||`` (what the discrepancy principle
compares the misfit with when the noise is known).
"""

from __future__ import annotations

import numpy as np

NOISE_MODELS = ("additive", "multiplicative")


def check_noise_level(level) -> float:
    try:
        value = float(level)
    except (TypeError, ValueError):
        raise ValueError(f"noise level must be a number, got {level!r}") from None
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"noise level must be finite and non-negative, got {level!r}")
    return value


def add_noise(data, level: float, model: str = "additive", seed: int = 0) -> tuple[np.ndarray, float]:
    """``(noisy data, noise norm)`` for relative noise ``level`` (0.01 = 1%) of ``model``."""
    level = check_noise_level(level)
    if model not in NOISE_MODELS:
        raise ValueError(f"unknown noise model {model!r}; use one of: {', '.join(NOISE_MODELS)}")
    d = np.asarray(data, dtype=float)
    if d.ndim != 1 or d.size == 0:
        raise ValueError(f"data must be a non-empty vector, got shape {d.shape}")
    if not np.all(np.isfinite(d)):
        raise ValueError(f"data has non-finite values at entries {np.flatnonzero(~np.isfinite(d))[:5].tolist()}")
    xi = np.random.default_rng(seed).standard_normal(d.size)
    if model == "additive":
        eta = level * np.linalg.norm(d) / np.sqrt(d.size) * xi
    else:
        eta = level * d * xi
    return d + eta, float(np.linalg.norm(eta))
