"""Named learned solver configurations (``"learned-amg+cg"`` ...), beside ``solvers.linear.METHODS``.

A learned method needs a trained model: each factory takes the model (a checkpoint path or an
already-loaded network) and returns a fresh algorithm value. The command line (``hybrid solve
--method learned-amg+cg --model PATH``) and ``hybrid bench hybrid`` take their names from here.
"""

from __future__ import annotations

from typing import Callable

from solvers.linear import CG, Algorithm


def _learned_amg_cg(model) -> Algorithm:
    from .learned_amg import LearnedAMG

    return CG(precond=LearnedAMG(model))


#: name -> factory(model) returning a fresh algorithm value
LEARNED_METHODS: dict[str, Callable[[object], Algorithm]] = {
    "learned-amg+cg": _learned_amg_cg,
}


def learned_method(name: str, model) -> Algorithm:
    """The learned algorithm ``name`` with ``model``; unknown names or a missing model raise ``ValueError``."""
    if name not in LEARNED_METHODS:
        raise ValueError(f"unknown learned method {name!r}; choose one of: {', '.join(LEARNED_METHODS)}")
    if model is None:
        raise ValueError(f"method {name!r} needs a trained model: pass --model PATH (e.g. bench/models/learned_amg.pt)")
    return LEARNED_METHODS[name](model)
