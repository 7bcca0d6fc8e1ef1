"""Coefficient fields by name, for the command line: ``"two-phase:seed=3,index=7"``, ``"contrast"``, ``"5.0"``."""

from __future__ import annotations

from typing import Callable

import numpy as np

from .grf import gaussian_random_field_at
from .inclusions import inclusions_at


def _two_phase(high, low):
    def make(seed=0, index=0, alpha=2.0, tau=3.0, modes=64, high=high, low=low):
        def a(x):
            return np.where(gaussian_random_field_at(x, seed, index, alpha, tau, modes) >= 0, high, low)
        return a
    return make


def _log_normal(seed=0, index=0, alpha=2.0, tau=3.0, modes=64, sigma=1.0):
    def a(x):
        return np.exp(sigma * gaussian_random_field_at(x, seed, index, alpha, tau, modes))
    return a


def _inclusions(seed=0, index=0, count=6, background=1.0, value=1e3):
    def a(x):
        return inclusions_at(x, seed, index, int(count), background, value)
    return a


#: name -> factory(**params) -> callable x -> values (dolfinx interpolation convention)
FIELDS: dict[str, Callable] = {
    "two-phase": _two_phase(12.0, 3.0),      # FNO Darcy benchmark values
    "contrast": _two_phase(1e4, 1.0),        # high-contrast two-phase
    "log-normal": _log_normal,
    "inclusions": _inclusions,              # high-contrast disks
}


def field_from_spec(spec: str):
    """A number, or a callable ``x -> values`` for ``NAME[:key=value,...]``.

    >>> field_from_spec("2.5")
    2.5
    >>> a = field_from_spec("two-phase:seed=1,index=4")
    >>> sorted(set(a(np.array([[0.1, 0.5, 0.9], [0.2, 0.5, 0.7]])).tolist())) in ([3.0], [12.0], [3.0, 12.0])
    True
    """
    try:
        return float(spec)
    except ValueError:
        pass
    name, _, params = spec.partition(":")
    if name not in FIELDS:
        raise ValueError(f"unknown field {name!r}; use a number or one of: {', '.join(FIELDS)}")
    kwargs = {}
    for item in filter(None, params.split(",")):
        key, eq, value = item.partition("=")
        if not eq:
            raise ValueError(f"field parameter {item!r} in {spec!r} must be key=value")
        kwargs[key.strip()] = int(value) if key.strip() in ("seed", "index", "modes", "count") else float(value)
    try:
        return FIELDS[name](**kwargs)
    except TypeError as e:
        raise ValueError(f"bad parameters for field {name!r}: {e}") from None
