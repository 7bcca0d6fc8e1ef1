"""Coefficient fields by name, for the command line: ``"two-phase:seed=3,index=7"``, ``"contrast"``, ``"5.0"``."""

from __future__ import annotations

from typing import Callable

import numpy as np

from .grf import gaussian_random_field_at
from .inclusions import inclusions_at
from .phantoms import heart_lungs_at
from .params import check_params

_GRF = {"seed": 0, "index": 0, "alpha": 2.0, "tau": 3.0, "modes": 64}

#: name -> every parameter of the field with its default
FIELD_DEFAULTS: dict[str, dict] = {
    "two-phase": {**_GRF, "high": 12.0, "low": 3.0},   # FNO Darcy benchmark values
    "contrast": {**_GRF, "high": 1e4, "low": 1.0},     # high-contrast two-phase
    "log-normal": {**_GRF, "sigma": 1.0},
    "inclusions": {"seed": 0, "index": 0, "count": 6, "background": 1.0, "value": 1e3},  # high-contrast disks
    # EIT's heart and lungs, randomized per (seed, index): conductivities times exp(spread U(-1, 1)), shapes jittered
    "heart-lungs": {"seed": 0, "index": 0, "background": 1.0, "heart": 2.0, "lungs": 0.5, "spread": 0.5,
                    "jitter": 0.1},
}


def _two_phase(seed, index, alpha, tau, modes, high, low):
    def a(x):
        return np.where(gaussian_random_field_at(x, seed, index, alpha, tau, modes) >= 0, high, low)
    return a


def _log_normal(seed, index, alpha, tau, modes, sigma):
    def a(x):
        return np.exp(sigma * gaussian_random_field_at(x, seed, index, alpha, tau, modes))
    return a


def _inclusions(seed, index, count, background, value):
    def a(x):
        return inclusions_at(x, seed, index, count, background, value)
    return a


def _heart_lungs(seed, index, background, heart, lungs, spread, jitter):
    def a(x):
        return heart_lungs_at(x, seed, index, background, heart, lungs, spread, jitter)
    return a


#: name -> factory(**params) -> callable x -> values (dolfinx interpolation convention)
FIELDS: dict[str, Callable] = {"two-phase": _two_phase, "contrast": _two_phase, "log-normal": _log_normal,
                               "inclusions": _inclusions, "heart-lungs": _heart_lungs}


def field_params(name: str, params: dict | None = None) -> dict:
    """All parameters of field ``name`` (defaults filled in), checked: an unknown key or a bad value
    (non-finite, non-positive, ``low >= high``, ...) raises ``ValueError`` naming it."""
    if name not in FIELD_DEFAULTS:
        raise ValueError(f"unknown field {name!r}; use a number or one of: {', '.join(FIELDS)}")
    defaults = FIELD_DEFAULTS[name]
    for key in params or {}:
        if key not in defaults:
            raise ValueError(f"unknown parameter {key!r} for {name}; valid: {', '.join(sorted(defaults))}")
    return check_params({**defaults, **(params or {})}, name)


def make_field(name: str, **params) -> Callable:
    """The callable ``x -> values`` of field ``name`` with checked parameters."""
    checked = field_params(name, params)
    return FIELDS[name](**checked)


def _scalar(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text.strip()


def field_from_spec(spec: str):
    """A number, or a callable ``x -> values`` for ``NAME[:key=value,...]``.

    >>> field_from_spec("2.5")
    2.5
    >>> a = field_from_spec("two-phase:seed=1,index=4")
    >>> sorted(set(a(np.array([[0.1, 0.5, 0.9], [0.2, 0.5, 0.7]])).tolist())) in ([3.0], [12.0], [3.0, 12.0])
    True
    >>> field_from_spec("two-phase:tau=nan")
    Traceback (most recent call last):
    ...
    ValueError: two-phase: tau must be positive and finite, got nan
    """
    try:
        return float(spec)
    except ValueError:
        pass
    name, _, params = spec.partition(":")
    kwargs = {}
    for item in filter(None, params.split(",")):
        key, eq, value = item.partition("=")
        if not eq:
            raise ValueError(f"field parameter {item!r} in {spec!r} must be key=value")
        kwargs[key.strip()] = _scalar(value)
    return make_field(name, **kwargs)
