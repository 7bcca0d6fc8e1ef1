"""Checkpoints that describe their own model: config, weights, normalizer, version, training state.

Saved with ``torch.save`` as plain containers and loaded with ``torch.load(weights_only=True)``: no
pickled code runs on load. A file that is not a toolkit checkpoint, or one whose contents were
altered so the weights no longer fit the model, is refused with a clear error.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .. import __version__
from ..data import DataProcessor
from ..operators import build, config_dict

FORMAT = "hybrid-checkpoint"


class CheckpointError(ValueError):
    pass


def save(path, model_name: str, model, processor: DataProcessor | None, extra: dict | None = None,
         config: dict | None = None) -> Path:
    """Write a checkpoint atomically; ``config`` defaults to the model's typed config (``model.config``)."""
    path = Path(path)
    config = config_dict(model) if config is None else config
    payload = {"format": FORMAT, "version": __version__, "model": model_name, "config": config,
               # tensors only: some libraries (neuraloperator) put Python objects in their state_dict, which
               # would make the file unloadable with weights_only=True
               "state_dict": {k: v for k, v in model.state_dict().items() if torch.is_tensor(v)},
               "processor": None if processor is None else {**processor.spec(), "state_dict": processor.state_dict()},
               **(extra or {})}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(payload, tmp)
    tmp.replace(path)  # never a half-written checkpoint
    return path


def read_payload(path, device="cpu") -> dict:
    """The stored dict (model name, config, training state, ...) without building the model."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{path} cannot be loaded safely (weights_only=True): {e}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a {FORMAT} file (a bare state_dict or another tool's checkpoint?)")
    return payload


def load(path, device="cpu"):
    """``(model_name, model, processor, payload)``; raises :class:`CheckpointError` on foreign/tampered files."""
    path = Path(path)
    payload = read_payload(path, device)
    if payload.get("task") == "precond":
        raise CheckpointError(f"{path} holds a preconditioner ({payload.get('model')}), not an operator: load it with "
                              f"NeuralPreconditioner.from_checkpoint or hybrid.training.precond.load_model")
    try:
        model = build(payload["model"], payload["config"])
        model.load_state_dict(payload["state_dict"])
    except (KeyError, RuntimeError, ValueError, TypeError) as e:
        raise CheckpointError(f"{path}: weights do not match the recorded model/config ({e})") from None
    processor = None
    if payload.get("processor"):
        p = payload["processor"]
        # checkpoints written before the EIT normalizer existed have no "inputs": per-channel statistics
        processor = DataProcessor(p["in_channels"], p["out_channels"], p.get("inputs", "channel"),
                                  p.get("boundary_points", 0))
        try:
            processor.load_state_dict(p["state_dict"])
        except RuntimeError as e:
            raise CheckpointError(f"{path}: normalizer does not match ({e})") from None
    return payload["model"], model.to(device), processor, payload
