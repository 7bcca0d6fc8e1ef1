"""High-contrast inclusions: random disks of a high value in a background (numpy only)."""

from __future__ import annotations

import numpy as np

from .grf import _rng
from .params import check_params


def inclusion_disks(seed: int, index: int, count: int = 6, radius: tuple[float, float] = (0.05, 0.15)) -> np.ndarray:
    """Centers and radii ``(count, 3)`` of non-overlapping disks inside the unit square (rejection sampling)."""
    rng = _rng(seed, index)
    disks = []
    for _ in range(1000 * count):
        if len(disks) == count:
            break
        r = rng.uniform(*radius)
        c = rng.uniform(r, 1 - r, size=2)
        if all(np.hypot(*(c - d[:2])) > r + d[2] for d in disks):
            disks.append((c[0], c[1], r))
    return np.array(disks).reshape(-1, 3)


def inclusions_at(points: np.ndarray, seed: int = 0, index: int = 0, count: int = 6, background: float = 1.0,
                  value: float = 1e3, radius: tuple[float, float] = (0.05, 0.15)) -> np.ndarray:
    """Coefficient ``value`` inside the disks, ``background`` outside, at ``points`` of shape ``(2|3, npts)``."""
    count, background, value = check_params({"count": count, "background": background, "value": value},
                                            "inclusions").values()
    pts = np.asarray(points)
    out = np.full(pts.shape[1], float(background))
    for cx, cy, r in inclusion_disks(seed, index, count, radius):
        out[(pts[0] - cx) ** 2 + (pts[1] - cy) ** 2 <= r * r] = value
    return out


def boundary_patterns(points: np.ndarray, count: int) -> np.ndarray:
    """``count`` Dirichlet patterns on the boundary of the unit square, ``(count, npts)``.

    Trigonometric functions of the arclength ``s`` (perimeter 4, counter-clockwise from the origin):
    ``cos(2 pi j s / 4)`` and ``sin(2 pi j s / 4)`` for ``j = 1, 2, ...`` (the EIT current/voltage patterns).
    """
    x, y = np.asarray(points)[0], np.asarray(points)[1]
    s = np.where(np.isclose(y, 0.0), x,
        np.where(np.isclose(x, 1.0), 1.0 + y,
        np.where(np.isclose(y, 1.0), 3.0 - x, 4.0 - y)))
    pats = []
    for m in range(count):
        j = m // 2 + 1
        pats.append(np.cos(2 * np.pi * j * s / 4) if m % 2 == 0 else np.sin(2 * np.pi * j * s / 4))
    return np.array(pats).reshape(count, -1)
