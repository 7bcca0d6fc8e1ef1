"""Wave-speed media for Helmholtz on the ``(n+1) x (n+1)`` nodes of the unit square (numpy only).

Each medium is a function of ``(n, seed, index)`` with speeds in ``[1, c_max]`` (``c >= 1``: a grid with
10 points per wavelength at speed 1 keeps at least 10 everywhere). Row ``j`` is ``y = j / n`` (depth
grows with ``1 - y``, as in seismic sections plotted with ``origin="lower"``).

In distribution (used for training): ``grf`` (smooth Gaussian random field), ``layered`` (near-horizontal
layers with gently curved interfaces), ``inclusions`` (a smooth background with elliptic inclusions),
``mixed`` (one of the three by ``index``), ``voronoi`` (piecewise constant on the cells of 4-40 random
points: sharp interfaces meeting at corners, the kind of edges natural images give Azulay & Treister's
training media). Out of distribution (never trained on): ``dipping`` (straight
interfaces dipping at 15-35 degrees), ``salt`` (a high-contrast salt-body-like blob in a depth-graded
background, up to ``1.5 c_max``), ``checkerboard`` (sharp squares alternating between 1 and ``c_max``).
"""

from __future__ import annotations

import re

import numpy as np

from .grf import gaussian_random_field

IN_DISTRIBUTION = ("grf", "layered", "inclusions", "mixed", "voronoi")
OUT_OF_DISTRIBUTION = ("dipping", "salt", "checkerboard")
MEDIA = IN_DISTRIBUTION + OUT_OF_DISTRIBUTION


def _rng(seed: int, index: int, salt: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(index), salt])


def _grid(n: int):
    t = np.linspace(0.0, 1.0, n + 1)
    return np.meshgrid(t, t)  # X[j, i] = i / n, Y[j, i] = j / n


def _scale(g: np.ndarray, c_max: float) -> np.ndarray:
    lo, hi = g.min(), g.max()
    return 1.0 + (c_max - 1.0) * ((g - lo) / (hi - lo) if hi > lo else np.zeros_like(g))


def grf(n, seed=0, index=0, c_max=2.0):
    return _scale(gaussian_random_field(n, seed, index, alpha=2.5, tau=4.0, modes=32), c_max)


def layered(n, seed=0, index=0, c_max=2.0):
    rng = _rng(seed, index, 1)
    X, Y = _grid(n)
    depth = 1.0 - Y
    nlayers = int(rng.integers(3, 7))
    tops = np.sort(rng.uniform(0.05, 0.95, nlayers - 1))
    speeds = np.sort(rng.uniform(1.0, c_max, nlayers))  # faster with depth, as in sediments
    c = np.full_like(X, speeds[0])
    for top, s in zip(tops, speeds[1:]):
        amp, freq, phase = rng.uniform(0, 0.04), rng.uniform(0.5, 2.0), rng.uniform(0, 2 * np.pi)
        c = np.where(depth > top + amp * np.sin(2 * np.pi * freq * X + phase), s, c)
    return c


def inclusions(n, seed=0, index=0, c_max=2.0):
    rng = _rng(seed, index, 2)
    X, Y = _grid(n)
    c = 1.0 + 0.5 * (_scale(gaussian_random_field(n, seed, index, alpha=3.0, tau=3.0, modes=16), c_max) - 1.0)
    for _ in range(int(rng.integers(1, 5))):
        x0, y0 = rng.uniform(0.15, 0.85, 2)
        a, b = rng.uniform(0.04, 0.18, 2)
        th = rng.uniform(0, np.pi)
        u = ((X - x0) * np.cos(th) + (Y - y0) * np.sin(th)) / a
        v = (-(X - x0) * np.sin(th) + (Y - y0) * np.cos(th)) / b
        c = np.where(u**2 + v**2 <= 1.0, rng.uniform(1.0, c_max), c)
    return c


def mixed(n, seed=0, index=0, c_max=2.0):
    return (grf, layered, inclusions)[int(index) % 3](n, seed, index, c_max)


def voronoi(n, seed=0, index=0, c_max=2.0):
    rng = _rng(seed, index, 6)
    X, Y = _grid(n)
    points = rng.uniform(0.0, 1.0, (int(rng.integers(4, 41)), 2))
    speeds = rng.uniform(1.0, c_max, len(points))
    c, best = np.full_like(X, speeds[0]), np.full_like(X, np.inf)
    for (px, py), s in zip(points, speeds):  # one grid-sized distance at a time
        d = (X - px) ** 2 + (Y - py) ** 2
        c[d < best] = s
        np.minimum(best, d, out=best)
    return c


def dipping(n, seed=0, index=0, c_max=2.0):
    rng = _rng(seed, index, 3)
    X, Y = _grid(n)
    angle = np.deg2rad(rng.uniform(15, 35)) * rng.choice([-1, 1])
    s = (1.0 - Y) * np.cos(angle) + (X - 0.5) * np.sin(angle)  # distance across the dipping beds
    tops = np.sort(rng.uniform(s.min(), s.max(), 4))
    speeds = np.sort(rng.uniform(1.0, c_max, 5))
    c = np.full_like(X, speeds[0])
    for top, v in zip(tops, speeds[1:]):
        c = np.where(s > top, v, c)
    return c


def salt(n, seed=0, index=0, c_max=2.0):
    rng = _rng(seed, index, 4)
    X, Y = _grid(n)
    depth = 1.0 - Y
    c = 1.0 + 0.6 * (c_max - 1.0) * depth  # compaction gradient
    x0, y0 = rng.uniform(0.35, 0.65), rng.uniform(0.35, 0.6)
    r, th = np.hypot(X - x0, Y - y0), np.arctan2(Y - y0, X - x0)
    k = np.arange(1, 6)
    amp = rng.uniform(0, 0.05, 5) / k
    ph = rng.uniform(0, 2 * np.pi, 5)
    radius = 0.2 + np.sum(amp[:, None, None] * np.cos(k[:, None, None] * th + ph[:, None, None]), axis=0)
    return np.where(r <= radius, 1.5 * c_max, c)


def checkerboard(n, seed=0, index=0, c_max=2.0):
    rng = _rng(seed, index, 5)
    X, Y = _grid(n)
    squares = int(rng.choice([4, 6, 8]))
    ix = np.minimum((X * squares).astype(int), squares - 1)
    iy = np.minimum((Y * squares).astype(int), squares - 1)
    return np.where((ix + iy) % 2 == 0, 1.0, c_max)


_MAKERS = {"grf": grf, "layered": layered, "inclusions": inclusions, "mixed": mixed, "dipping": dipping,
           "salt": salt, "checkerboard": checkerboard, "voronoi": voronoi}


def parse_medium(spec: str) -> tuple[str, float | None]:
    """``"checkerboard@1.4"`` -> ``("checkerboard", 1.4)`` (a medium with its own contrast ``c_max``); a
    plain name -> ``(name, None)``. Names and values are checked."""
    name, sep, value = str(spec).partition("@")
    if name not in _MAKERS:
        raise ValueError(f"unknown medium {name!r}; choose one of {', '.join(MEDIA)} (optionally NAME@C_MAX, "
                         f"e.g. checkerboard@1.4)")
    if not sep:
        return name, None
    # a plain decimal number only (float() would also take "1_5" as 15, " 1.4" and "nan")
    if not _NUMBER.fullmatch(value):
        raise ValueError(f"medium {spec!r}: c_max {value!r} is not a number")
    return name, _check_c_max(float(value), f"medium {spec!r}: ")


_NUMBER = re.compile(r"[0-9]+(\.[0-9]*)?([eE][+-]?[0-9]+)?|\.[0-9]+([eE][+-]?[0-9]+)?")


def _check_c_max(c_max, where: str = "") -> float:
    try:
        value = float(c_max)
    except (TypeError, ValueError):
        value = float("nan")
    if isinstance(c_max, (bool, np.bool_)) or not (np.isfinite(value) and value >= 1.0):
        raise ValueError(f"{where}c_max must be a finite number >= 1, got {c_max!r}")
    return value


def wave_speed(medium: str, n: int, seed: int = 0, index: int = 0, c_max: float | None = None) -> np.ndarray:
    """Wave speed of ``medium`` (one of :data:`MEDIA`, or ``NAME@C_MAX`` for another contrast than the
    default ``c_max = 2``) on the ``(n+1) x (n+1)`` grid."""
    name, spec_c_max = parse_medium(medium)
    given = None if c_max is None else _check_c_max(c_max)
    if spec_c_max is not None and given is not None and given != spec_c_max:
        raise ValueError(f"medium {medium!r} sets c_max = {spec_c_max}, but c_max = {c_max!r} was also given")
    c_max = spec_c_max if spec_c_max is not None else (2.0 if given is None else given)
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"n must be an integer of at least 2, got {n!r}")
    return _MAKERS[name](int(n), int(seed), int(index), float(c_max))
