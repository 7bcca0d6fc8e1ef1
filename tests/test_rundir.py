"""Run directories across versions: a checkpoint written before a model option existed is the same model
as one with that option at its default (the demo's out/demo/mgno broke after MgNO gained options)."""

from dataclasses import asdict

import pytest

from hybrid.operators import MgNOConfig
from hybrid.training.rundir import model_differences


def test_missing_option_counts_as_its_default():
    current = asdict(MgNOConfig())
    old = {k: v for k, v in current.items() if k not in ("scheme", "coordinates")}  # an older checkpoint
    assert model_differences("mgno", old, current) == []


def test_explicit_non_default_option_differs():
    current = asdict(MgNOConfig())
    old = {k: v for k, v in current.items() if k != "coordinates"}
    changed = dict(current, coordinates=not current["coordinates"])
    diff = model_differences("mgno", old, changed)
    assert len(diff) == 1 and diff[0].startswith("coordinates:")


@pytest.mark.parametrize("key", ["channels", "layers"])
def test_real_config_change_differs(key):
    current = asdict(MgNOConfig())
    changed = dict(current, **{key: current[key] + 1})
    assert [d.split(":")[0] for d in model_differences("mgno", current, changed)] == [key]
