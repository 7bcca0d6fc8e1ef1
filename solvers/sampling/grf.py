"""Gaussian random fields with covariance ``(-Laplace + tau^2 I)^(-alpha)`` and the fields built on them.

The field is a truncated Karhunen-Loeve expansion in the Neumann eigenfunctions of the Laplacian on the
unit square, ``phi_k(x, y) = c_k1 c_k2 cos(pi k1 x) cos(pi k2 y)`` (``c_0 = 1``, ``c_k = sqrt(2)``):

    u(x) = sum_k  tau^(alpha - 1) (pi^2 |k|^2 + tau^2)^(-alpha / 2)  xi_k  phi_k(x),   xi_k ~ N(0, 1)

(the scaling of the FNO Darcy benchmark, whose thresholded version is :func:`two_phase`). The number of
modes does not depend on the grid, so sample ``(seed, index)`` is *the same function* at every
resolution: a field at ``n = 64`` is the field at ``n = 128`` restricted to every other node. Every
sampler is a pure function of ``(seed, index)``.
"""

from __future__ import annotations

import numpy as np

from .params import check_params


def _rng(seed: int, index: int) -> np.random.Generator:
    if int(seed) < 0 or int(index) < 0:
        raise ValueError(f"seed and index must be non-negative integers, got seed={seed}, index={index}")
    return np.random.default_rng([int(seed), int(index)])


def spectrum(modes: int, alpha: float, tau: float) -> np.ndarray:
    """Standard deviations ``sqrt(lambda_k)`` of the KL coefficients, shape ``(modes, modes)``."""
    modes, alpha, tau = check_params({"modes": modes, "alpha": alpha, "tau": tau}, "gaussian random field").values()
    k = np.arange(modes)
    K1, K2 = np.meshgrid(k, k, indexing="ij")
    return tau ** (alpha - 1) * (np.pi**2 * (K1**2 + K2**2) + tau**2) ** (-alpha / 2)


def _coefficients(seed, index, alpha, tau, modes) -> np.ndarray:
    coef = spectrum(modes, alpha, tau) * _rng(seed, index).standard_normal((modes, modes))
    coef[0, 0] = 0.0  # zero-mean field (as in the FNO data): the constant mode only shifts the threshold
    return coef


def _basis(t: np.ndarray, modes: int) -> np.ndarray:
    k = np.arange(modes)
    return np.cos(np.pi * np.outer(t, k)) * np.where(k == 0, 1.0, np.sqrt(2.0))


def gaussian_random_field_at(points: np.ndarray, seed: int = 0, index: int = 0, alpha: float = 2.0,
                             tau: float = 3.0, modes: int = 64) -> np.ndarray:
    """The same field evaluated at arbitrary points, ``points`` of shape ``(2 or 3, npoints)`` (dolfinx's
    interpolation convention), so any mesh of the unit square gets the nodal values of the same sample."""
    points = np.asarray(points)
    coef = _coefficients(seed, index, alpha, tau, modes)
    X, Y = _basis(points[0], modes), _basis(points[1], modes)
    return np.sum(X * (Y @ coef.T), axis=1)


def gaussian_random_field(n: int, seed: int = 0, index: int = 0, alpha: float = 2.0, tau: float = 3.0,
                          modes: int = 64, shape: tuple[int, int] | None = None) -> np.ndarray:
    """A GRF sampled at the ``(n+1) x (n+1)`` nodes of the unit square (row ``j`` at ``y = j/n``).

    Parameters
    ----------
    n : cells per side (or give ``shape=(ny+1, nx+1)``).
    seed, index : the sample is a function of these two integers only.
    alpha, tau : covariance ``(-Laplace + tau^2)^(-alpha)`` (FNO Darcy: alpha=2, tau=3).
    modes : KL modes per direction (independent of ``n``).

    >>> u64 = gaussian_random_field(64, seed=1, index=5)
    >>> u128 = gaussian_random_field(128, seed=1, index=5)
    >>> bool(np.allclose(u64, u128[::2, ::2]))
    True
    """
    ny1, nx1 = shape if shape is not None else (n + 1, n + 1)
    coef = _coefficients(seed, index, alpha, tau, modes)  # coef[k1, k2] multiplies phi_k1(x) phi_k2(y)
    return _basis(np.linspace(0, 1, ny1), modes) @ coef.T @ _basis(np.linspace(0, 1, nx1), modes).T


def two_phase(n: int, seed: int = 0, index: int = 0, high: float = 12.0, low: float = 3.0,
              alpha: float = 2.0, tau: float = 3.0, modes: int = 64) -> np.ndarray:
    """Thresholded GRF as in the FNO Darcy benchmark: ``high`` where the field is >= 0, else ``low``."""
    high, low = check_params({"high": high, "low": low}, "two-phase").values()
    u = gaussian_random_field(n, seed, index, alpha, tau, modes)
    return np.where(u >= 0, high, low)


def log_normal(n: int, seed: int = 0, index: int = 0, alpha: float = 2.0, tau: float = 3.0,
               modes: int = 64, sigma: float = 1.0) -> np.ndarray:
    """``exp(sigma * u)`` for a GRF ``u``: a positive, smoothly varying coefficient."""
    sigma = check_params({"sigma": sigma}, "log-normal")["sigma"]
    return np.exp(sigma * gaussian_random_field(n, seed, index, alpha, tau, modes))


def pointwise_variance(points: np.ndarray, alpha: float = 2.0, tau: float = 3.0, modes: int = 64) -> np.ndarray:
    """Exact variance of the field at ``points`` (for checking samplers): ``sum_k lambda_k phi_k(x)^2``."""
    lam = spectrum(modes, alpha, tau) ** 2
    lam[0, 0] = 0.0
    X, Y = _basis(np.asarray(points)[0], modes), _basis(np.asarray(points)[1], modes)
    return np.sum((X**2) * ((Y**2) @ lam.T), axis=1)
