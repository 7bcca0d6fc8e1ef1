"""Checkpoints of the small setup-time networks (learned AMG, LevelNet): ``{"kind", "state_dict",
"config", "extra"}`` with plain types only, so they load with ``torch.load(weights_only=True)``; a file of
another kind, or one that is not a checkpoint at all, is refused with a message naming it."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Callable

import torch


def save_net(path, kind: str, net, extra: dict | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"kind": kind, "state_dict": net.state_dict(), "config": asdict(net.config), "extra": extra or {}},
               path)
    return path


def load_net(path, kind: str, build: Callable[[dict], torch.nn.Module], device="cpu") -> torch.nn.Module:
    """``build(config_dict)`` makes the untrained network; its weights come from the file; eval mode."""
    try:
        payload = torch.load(Path(path), map_location=device, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as e:  # noqa: BLE001 - not a checkpoint, or one carrying code (refused by weights_only)
        raise ValueError(f"{path}: not a loadable {kind} checkpoint ({type(e).__name__}: "
                         f"{str(e).splitlines()[0][:120] if str(e) else ''})") from None
    if not isinstance(payload, dict) or payload.get("kind") != kind:
        found = payload.get("kind") if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(f"{path}: not a {kind} checkpoint (kind={found!r})")
    net = build(payload["config"])
    net.load_state_dict(payload["state_dict"])
    net.eval()
    return net
