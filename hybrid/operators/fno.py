"""FNO baseline: the reference implementation from the ``neuraloperator`` library (optional extra).

``pip install 'hybrid-solvers[baselines]'`` (after torch) provides it; it pulls wandb and many more
packages, so it is not a core dependency. This wrapper only gives it the toolkit's typed config.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class FNOConfig:
    """``modes`` as neuraloperator's ``n_modes`` (``corners=False``: ``(m, m)`` keeps the ``m`` lowest
    frequencies along y, -m/2..m/2-1, and ``m // 2 + 1`` along x), or as in the FNO paper
    (``corners=True``: two ``m x m`` corners of the real FFT, frequencies -m..m-1 along y and 0..m-1 along x,
    i.e. ``n_modes=(2m, 2m - 2)``). ``coordinates`` is neuraloperator's grid embedding (x, y channels)."""

    in_channels: int = 1
    out_channels: int = 1
    modes: int = 12
    channels: int = 32
    layers: int = 4
    corners: bool = False
    coordinates: bool = True


def n_modes(config: FNOConfig) -> tuple[int, int]:
    """neuraloperator's ``n_modes`` for a config (see :class:`FNOConfig`).

    >>> n_modes(FNOConfig(modes=12, corners=True)), n_modes(FNOConfig(modes=12))
    ((24, 22), (12, 12))
    """
    m = config.modes
    return (2 * m, 2 * m - 2) if config.corners else (m, m)


def neuraloperator_available() -> bool:
    try:
        import neuralop  # noqa: F401
    except Exception:
        return False
    return True


class FNO(nn.Module):
    """``neuralop.models.FNO`` with ``n_modes`` from :func:`n_modes`; inputs ``(batch, C, ny, nx)``."""

    def __init__(self, config: FNOConfig):
        super().__init__()
        try:
            from neuralop.models import FNO as _FNO
        except Exception as e:
            raise ImportError("the FNO baseline needs the neuraloperator library: "
                              "pip install 'hybrid-solvers[baselines]' (after torch)") from e
        self.config = config
        self.net = _FNO(n_modes=n_modes(config), hidden_channels=config.channels,
                        in_channels=config.in_channels, out_channels=config.out_channels,
                        n_layers=config.layers, positional_embedding="grid" if config.coordinates else None)

    def forward(self, x):
        return self.net(x)

    def state_dict(self, *args, **kwargs):
        """Tensors only: neuraloperator adds a ``_metadata`` entry (a Python dict) at the top level of whatever
        state_dict it is part of, which ``load_state_dict`` of an enclosing model then rejects."""
        out = super().state_dict(*args, **kwargs)
        for key in [k for k, v in out.items() if k.endswith("_metadata") and not torch.is_tensor(v)]:
            del out[key]
        return out

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        return super().load_state_dict({k: v for k, v in state_dict.items() if not k.endswith("_metadata")},
                                       strict=strict, assign=assign)

    def _apply(self, fn, recurse=True):
        """``.double()`` / ``.float()`` leave complex weights alone; the spectral weights follow the real ones."""
        super()._apply(fn, recurse)
        real = next((p.dtype for p in self.parameters() if p.is_floating_point()), None)
        target = {torch.float64: torch.complex128, torch.float32: torch.complex64}.get(real)
        for p in self.parameters():
            if p.is_complex() and target is not None and p.dtype != target:
                p.data = p.data.to(target)
        return self
