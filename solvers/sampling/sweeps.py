"""Sequences of related coefficients for solver-in-the-loop studies (numpy only)."""

from __future__ import annotations

from typing import Iterator

import numpy as np

from .grf import gaussian_random_field


def rotating_log_normal(n: int, solves: int, sigma: float = 2.0, seed: int = 0) -> Iterator[np.ndarray]:
    """``a_t = exp(sigma (cos t g0 + sin t g1))`` for ``t`` in ``[0, pi/2]`` (``solves`` values), as
    ``(n+1, n+1)`` grids: two fixed Gaussian random fields rotate into each other, so the field's
    statistics stay those of a log-normal field while its geometry moves. Lazy (a generator).

    >>> a = list(rotating_log_normal(8, 3))
    >>> len(a), a[0].shape, bool(np.all(a[1] > 0))
    (3, (9, 9), True)
    """
    if int(solves) != solves or solves < 1:
        raise ValueError(f"solves must be a positive integer, got {solves!r}")
    if not (np.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be positive and finite, got {sigma!r}")
    g0, g1 = (gaussian_random_field(n, seed=seed, index=i) for i in (0, 1))
    for t in np.linspace(0.0, np.pi / 2, int(solves)):
        yield np.exp(sigma * (np.cos(t) * g0 + np.sin(t) * g1))
