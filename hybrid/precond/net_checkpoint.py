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


def load_net(path, kind: str, build: Callable[[dict], torch.nn.Module], device="cpu",
             new_layers: str | None = None) -> torch.nn.Module:
    """``build(config_dict)`` makes the untrained network; its weights come from the file; eval mode.
    ``new_layers``: a parameter-name prefix that may be missing from the file (layers ``build`` adds to a
    trained network, which keep their initial values); any other mismatch is refused."""
    try:
        payload = torch.load(Path(path), map_location=device, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as e:  # noqa: BLE001 - not a checkpoint, or one carrying code (refused by weights_only)
        raise ValueError(f"{path}: not a loadable {kind} checkpoint ({type(e).__name__}: "
                         f"{_first_sentence(str(e))})") from None
    if not isinstance(payload, dict) or payload.get("kind") != kind:
        found = payload.get("kind") if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(f"{path}: not a {kind} checkpoint (kind={found!r})")
    net = build(payload["config"])
    try:
        missing, unexpected = net.load_state_dict(payload["state_dict"], strict=False)
    except RuntimeError as e:  # a weight of another shape
        raise ValueError(f"{path}: the {kind} weights do not fit the network ({str(e).splitlines()[-1].strip()[:200]})") from None
    missing = [k for k in missing if not (new_layers and k.startswith(new_layers))]
    if missing or unexpected:
        raise ValueError(f"{path}: the {kind} weights do not fit the network (missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]})")
    net.eval()
    net.checkpoint_extra = payload.get("extra") or {}  # what the file says of its training (plain types)
    return net


def _first_sentence(text: str, limit: int = 160) -> str:
    """The first sentence of an error message (torch's unpickling errors run to paragraphs), whole words
    only; a user trial found it cut mid-word at 120 characters."""
    first = text.strip().splitlines()[0].split(". ")[0] if text.strip() else ""
    return first if len(first) <= limit else first[:limit].rsplit(" ", 1)[0] + " ..."
