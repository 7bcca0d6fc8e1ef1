"""FNO baseline: the reference implementation from the ``neuraloperator`` library (optional extra).

``pip install 'hybrid-solvers[baselines]'`` (after torch) provides it; it pulls wandb and many more
packages, so it is not a core dependency. This wrapper only gives it the toolkit's typed config.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn


@dataclass
class FNOConfig:
    in_channels: int = 1
    out_channels: int = 1
    modes: int = 12
    channels: int = 32
    layers: int = 4


def neuraloperator_available() -> bool:
    try:
        import neuralop  # noqa: F401
    except Exception:
        return False
    return True


class FNO(nn.Module):
    """``neuralop.models.FNO`` with ``n_modes=(modes, modes)``; inputs ``(batch, C, ny, nx)``."""

    def __init__(self, config: FNOConfig):
        super().__init__()
        try:
            from neuralop.models import FNO as _FNO
        except Exception as e:
            raise ImportError("the FNO baseline needs the neuraloperator library: "
                              "pip install 'hybrid-solvers[baselines]' (after torch)") from e
        self.config = config
        self.net = _FNO(n_modes=(config.modes, config.modes), hidden_channels=config.channels,
                        in_channels=config.in_channels, out_channels=config.out_channels,
                        n_layers=config.layers)

    def forward(self, x):
        return self.net(x)
