"""What a run directory may hold: a new run refuses a directory with a checkpoint of another model or
model config, and ``--resume`` refuses a checkpoint made with other data or other training settings,
naming what differs (the two would otherwise mix silently: metrics of one model reported under
another's name, a schedule or loss switched half-way)."""

from __future__ import annotations

import json
from pathlib import Path

from .checkpoint import read_payload

CHECKPOINTS = ("last.pt", "best.pt")


def _plain(value):
    """Tuples as lists, as a checkpoint stores them (JSON-like comparison)."""
    return json.loads(json.dumps(value, default=str))


def differences(recorded: dict, current: dict) -> list[str]:
    """``"key: checkpoint A, now B"`` for every key whose values differ."""
    recorded, current = _plain(recorded), _plain(current)
    return [f"{k}: checkpoint {recorded.get(k)!r}, now {current.get(k)!r}"
            for k in sorted(set(recorded) | set(current)) if recorded.get(k) != current.get(k)]


def model_differences(model_name: str, recorded: dict, current: dict) -> list[str]:
    """:func:`differences` of two model configs, where a key the checkpoint lacks (an option added after
    it was written) counts as that option's default, which keeps the old behaviour."""
    from dataclasses import asdict, is_dataclass

    from ..operators import MODELS

    entry = MODELS.get(model_name)
    defaults = {}
    if entry is not None:
        try:
            cfg = entry[1]()
            defaults = asdict(cfg) if is_dataclass(cfg) else {}
        except TypeError:  # a config class with required fields has no defaults to fill in
            defaults = {}
    filled = {**{k: v for k, v in defaults.items() if k not in recorded}, **recorded}
    return differences(filled, current)


def check_new_run(out: Path, model_name: str, model_config: dict) -> None:
    """A fresh run may overwrite a run of the same model and config, nothing else."""
    for name in CHECKPOINTS:
        path = Path(out) / name
        if not path.exists():
            continue
        payload = read_payload(path)
        advice = f"use another run directory, remove {out}, or resume the run there with its own settings"
        if payload.get("model") != model_name:
            raise ValueError(f"{out} holds a {payload.get('model')} checkpoint ({name}); this run is {model_name}: "
                             f"{advice}")
        diff = model_differences(model_name, payload.get("config", {}), model_config)
        if diff:
            raise ValueError(f"{out} holds a {model_name} checkpoint ({name}) whose model config differs: "
                             f"{'; '.join(diff)}: {advice}")


def check_resume(path: Path, payload: dict, model_name: str, model_config: dict, train_config: dict,
                 data: dict) -> None:
    """Refuse to resume ``path`` with another model, model config, training config or dataset."""
    state = payload.get("train", {})
    diff = differences({"model": payload.get("model")}, {"model": model_name})
    diff += model_differences(model_name, payload.get("config", {}), model_config)
    # a training option the checkpoint lacks (added after it was written) counts as its default
    from dataclasses import asdict

    from .trainer import TrainConfig

    recorded_train = state.get("config", {})
    defaults = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(TrainConfig()).items()}
    diff += differences({**{k: v for k, v in defaults.items() if k not in recorded_train}, **recorded_train},
                        train_config)
    recorded = state.get("data")
    if isinstance(recorded, str):  # older checkpoints: the path as given
        recorded = {"path": str(Path(recorded).resolve())}
    if recorded is not None and any(recorded[k] != data.get(k) for k in recorded):
        diff.append(f"data: checkpoint {recorded['path']} (created {recorded.get('created', '?')}), "
                    f"now {data['path']} (created {data.get('created', '?')})")
    if diff:
        raise ValueError(f"cannot resume {path}: {'; '.join(diff)}; resume with the run's settings or start a "
                         f"new run directory")
