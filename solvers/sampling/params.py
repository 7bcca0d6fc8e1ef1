"""One check for sampler parameters, shared by ``field_from_spec`` (``hybrid solve --coefficient``) and the
data generators (``hybrid generate --param``), so both refuse the same values with the same message.

>>> check_params({"tau": 3, "modes": 64.0}, "two-phase")
{'tau': 3.0, 'modes': 64}
>>> check_params({"tau": float("nan")}, "two-phase")
Traceback (most recent call last):
...
ValueError: two-phase: tau must be positive and finite, got nan
"""

from __future__ import annotations

import math
import numbers


def _number(value) -> float | None:
    """``value`` as a float, or ``None`` for non-numbers (strings, booleans, ...)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    return float(value)


def integer_rule(minimum: int, text: str):
    """Integers ``>= minimum`` (also given as integral floats, e.g. ``64.0`` from JSON)."""
    def check(value):
        x = _number(value)
        return int(x) if x is not None and x.is_integer() and x >= minimum else None
    return check, text


def real_rule(ok, text: str):
    """Finite real numbers with ``ok(x)``; ``text`` says what the value must be."""
    def check(value):
        x = _number(value)
        return x if x is not None and math.isfinite(x) and ok(x) else None
    return check, text


POSITIVE = real_rule(lambda x: x > 0, "positive and finite")
FINITE = real_rule(lambda x: True, "a finite number")

#: parameter -> (check returning the coerced value or None, what it must be)
RULES = {
    "seed": integer_rule(0, "a non-negative integer"),
    "index": integer_rule(0, "a non-negative integer"),
    "modes": integer_rule(1, "a positive integer"),
    "count": integer_rule(0, "a non-negative integer"),
    "patterns": integer_rule(1, "a positive integer"),
    # covariance (-Laplace + tau^2)^(-alpha): finite pointwise variance in 2-D needs alpha > d/2 = 1
    "alpha": real_rule(lambda x: x > 1, "a finite number above 1"),
    "tau": POSITIVE,
    "sigma": POSITIVE,
    "high": POSITIVE,
    "low": POSITIVE,
    "background": POSITIVE,
    "value": POSITIVE,
    "heart": POSITIVE,
    "lungs": POSITIVE,
    "spread": real_rule(lambda x: 0 <= x <= 1, "a number in [0, 1]"),
    "jitter": real_rule(lambda x: 0 <= x <= 1, "a number in [0, 1]"),
}


def check_param(key: str, value, where: str, rules: dict | None = None):
    """``value`` coerced to its type (int or float); ``ValueError`` naming ``where``, ``key`` and ``value``."""
    check, text = (rules or RULES)[key]
    out = check(value)
    if out is None:
        raise ValueError(f"{where}: {key} must be {text}, got {value!r}")
    return out


def check_params(params: dict, where: str, rules: dict | None = None) -> dict:
    """Check (and coerce) every parameter of ``params`` that has a rule; others pass through unchanged.
    Also ``low < high`` when both are given (the two values of a two-phase field)."""
    rules = {**RULES, **(rules or {})}
    out = {k: check_param(k, v, where, rules) if k in rules else v for k, v in params.items()}
    if "low" in out and "high" in out and not out["low"] < out["high"]:
        raise ValueError(f"{where}: low must be below high, got low={out['low']!r}, high={out['high']!r}")
    return out
