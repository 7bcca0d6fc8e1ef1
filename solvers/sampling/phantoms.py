"""The heart-and-lungs phantom of EIT, fixed or as a random family (numpy only).

Shapes live in coordinates normalized to the domain's bounding box (``[-1, 1]^2``; the unit square's center
is 0): an ellipse "heart" low in the middle and two tall ellipse "lungs" left and right, on a background.
:func:`heart_lungs_at` with ``spread = jitter = 0`` is the fixed phantom (the NIO paper's EIT example drawn by
hand); otherwise each sample ``(seed, index)`` multiplies the heart's and each lung's conductivity by
``exp(spread * U(-1, 1))`` and moves, stretches and turns each ellipse by ``jitter`` (centers by
``jitter * U(-1, 1)``, axes by ``1 + jitter * U(-1, 1)``, angles by ``jitter * U(-1, 1)`` radians): a
low-dimensional family, as in the NIO paper's heart-and-lungs data.
"""

from __future__ import annotations

import numpy as np

from .grf import _rng
from .params import check_params

#: (center x, center y, semi-axis x, semi-axis y, angle) in normalized coordinates
LUNGS = ((-0.5, 0.1, 0.22, 0.45, 0.1), (0.5, 0.1, 0.22, 0.45, -0.1))
HEART = (0.05, -0.25, 0.24, 0.17, 0.3)


def ellipse_mask(x, y, cx, cy, ax, ay, angle=0.0) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    u, v = c * (x - cx) + s * (y - cy), -s * (x - cx) + c * (y - cy)
    return (u / ax) ** 2 + (v / ay) ** 2 <= 1.0


def normalized(points, box=None):
    """``(x, y)`` of ``points`` ``(2, N)`` mapped from ``box = ((x0, y0), (x1, y1))`` (default the unit
    square) to ``[-1, 1]^2``."""
    xy = np.asarray(points, dtype=float)
    lo, hi = (np.zeros(2), np.ones(2)) if box is None else (np.asarray(box[0], float), np.asarray(box[1], float))
    c, h = (lo + hi) / 2, (hi - lo) / 2
    return (xy[0] - c[0]) / h[0], (xy[1] - c[1]) / h[1]


def heart_lungs_at(points, seed: int = 0, index: int = 0, background: float = 1.0, heart: float = 2.0,
                   lungs: float = 0.5, spread: float = 0.0, jitter: float = 0.0, box=None) -> np.ndarray:
    """Conductivity of the (randomized) heart-and-lungs phantom at ``points`` ``(2, N)``.

    >>> heart_lungs_at(np.array([[0.5, 0.75, 0.5], [0.5, 0.55, 0.4]]))  # center, a lung, the heart
    array([1. , 0.5, 2. ])
    """
    p = check_params({"background": background, "heart": heart, "lungs": lungs, "spread": spread, "jitter": jitter},
                     "heart-lungs")
    spread, jitter = p["spread"], p["jitter"]
    x, y = normalized(points, box)
    rng = _rng(seed, index) if spread or jitter else None

    def draw(shape, value):
        if rng is None:
            return shape, value
        cx, cy, ax, ay, angle = shape
        u = rng.uniform(-1, 1, size=6)
        return ((cx + jitter * u[0], cy + jitter * u[1], ax * (1 + jitter * u[2]), ay * (1 + jitter * u[3]),
                 angle + jitter * u[4]), value * np.exp(spread * u[5]))

    out = np.full(x.shape, float(p["background"]))
    for shape, value in [draw(s, p["lungs"]) for s in LUNGS] + [draw(HEART, p["heart"])]:
        out[ellipse_mask(x, y, *shape)] = value
    return out
