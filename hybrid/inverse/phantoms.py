"""Conductivity phantoms for EIT, as callables ``xy (2, N) -> values (N,)`` on any domain.

Shapes are placed in coordinates normalized to the domain's bounding box (``[-1, 1]^2``: the unit square's
center is 0, the unit disk is itself), so one phantom fits the unit square and the disk alike.

- ``heart-lungs``: a background (``background``, default 1), an ellipse "heart" of higher conductivity
  (``heart``, default 2) low in the middle, and two tall ellipse "lungs" of lower conductivity (``lungs``,
  default 0.5) left and right (the NIO paper's EIT phantom, drawn by hand);
- ``inclusions``: ``count`` random ellipses (seeded) inside radius 0.7, conductivities log-uniform between
  ``low`` and ``high`` (defaults 0.3 and 3), on ``background``.

>>> import numpy as np
>>> f = phantom("heart-lungs:lungs=0.3")
>>> f(np.array([[0.5, 0.75, 0.5], [0.5, 0.55, 0.4]]))     # unit square: center, a lung, the heart
array([1. , 0.3, 2. ])
"""

from __future__ import annotations

import numpy as np

from solvers.sampling.phantoms import ellipse_mask, heart_lungs_at, normalized

PHANTOMS = ("heart-lungs", "inclusions")
_DEFAULTS = {"heart-lungs": {"background": 1.0, "heart": 2.0, "lungs": 0.5},
             "inclusions": {"background": 1.0, "low": 0.3, "high": 3.0, "count": 3, "seed": 0}}


def heart_lungs(background=1.0, heart=2.0, lungs=0.5, box=None):
    """The heart-and-lungs phantom (:func:`solvers.sampling.phantoms.heart_lungs_at`, not randomized);
    ``box = ((x0, y0), (x1, y1))`` the domain's bounding box (default the unit square)."""
    def f(xy):
        return heart_lungs_at(xy, background=background, heart=heart, lungs=lungs, box=box)
    return f


def random_inclusions(seed=0, count=3, low=0.3, high=3.0, background=1.0, box=None):
    """``count`` random ellipses (``seed``) with log-uniform conductivities in ``[low, high]``."""
    rng = np.random.default_rng(int(seed))
    shapes = []
    for _ in range(int(count)):
        r, phi = 0.7 * np.sqrt(rng.random()), 2 * np.pi * rng.random()
        ax, ay = rng.uniform(0.12, 0.3, size=2)
        shapes.append((r * np.cos(phi), r * np.sin(phi), ax, ay, np.pi * rng.random(),
                       float(np.exp(rng.uniform(np.log(low), np.log(high))))))

    def f(xy):
        x, y = normalized(xy, box)
        out = np.full(x.shape, float(background))
        for cx, cy, ax, ay, angle, value in shapes:
            out[ellipse_mask(x, y, cx, cy, ax, ay, angle)] = value
        return out
    return f


def phantom(spec: str, box=None):
    """A phantom from ``name[:key=value,...]`` (names :data:`PHANTOMS`), for a domain with bounding ``box``."""
    name, _, rest = str(spec).partition(":")
    if name not in PHANTOMS:
        raise ValueError(f"unknown phantom {name!r}; use one of: {', '.join(PHANTOMS)} (with :key=value,...)")
    params = dict(_DEFAULTS[name])
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq or key not in params:
            raise ValueError(f"phantom {name}: bad parameter {item!r}; valid keys: {', '.join(params)}")
        try:
            params[key] = float(value)
        except ValueError:
            raise ValueError(f"phantom {name}: {key}={value!r} is not a number") from None
    positive = [k for k in ("background", "heart", "lungs", "low", "high") if k in params and not params[k] > 0]
    if positive:
        raise ValueError(f"phantom {name}: conductivities must be positive: {', '.join(positive)}")
    if name == "inclusions" and (params["count"] < 0 or params["count"] != int(params["count"])):
        raise ValueError(f"phantom inclusions: count must be a non-negative integer, got {params['count']}")
    return (heart_lungs if name == "heart-lungs" else random_inclusions)(**params, box=box)
