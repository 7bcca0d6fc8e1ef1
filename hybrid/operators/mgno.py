"""``MgNO``: layers ``u <- sigma(MgConv(u) + Conv1x1(u) + b)`` and a 1x1 output head.

No lifting or projection network: the first layer's ``MgConv`` reads the input channels directly
(as in the authors' Darcy model, whose reference configuration has 572,661 parameters; ours has the
same count with ``prolongation_kernel=4``, a test checks it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from .mgconv import MgConv, MgConvConfig

ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU, "tanh": nn.Tanh, "silu": nn.SiLU}


@dataclass
class MgNOConfig:
    in_channels: int = 1
    out_channels: int = 1
    channels: int = 24
    layers: int = 4
    levels: list = field(default_factory=lambda: [[1, 0]] * 5 + [[2, 0]])
    boundary: str = "dirichlet"
    activation: str = "gelu"
    prolongation_kernel: int = 3


class MgNO(nn.Module):
    """Multigrid neural operator for ``(batch, in_channels, ny, nx)`` inputs.

    >>> import torch
    >>> m = MgNO(MgNOConfig(channels=8, layers=2, levels=[[1, 0], [1, 0], [2, 0]]))
    >>> m(torch.randn(3, 1, 33, 33)).shape
    torch.Size([3, 1, 33, 33])
    """

    def __init__(self, config: MgNOConfig):
        super().__init__()
        if config.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {config.activation!r}; use one of {', '.join(ACTIVATIONS)}")
        if config.layers < 1:
            raise ValueError(f"layers must be >= 1, got {config.layers}")
        self.config = config
        self.act = ACTIVATIONS[config.activation]()
        self.mg = nn.ModuleList()
        self.local = nn.ModuleList()
        for i in range(config.layers):
            cin = config.in_channels if i == 0 else config.channels
            self.mg.append(MgConv(MgConvConfig(cin, config.channels, config.levels, config.boundary,
                                               config.prolongation_kernel)))
            self.local.append(nn.Conv2d(cin, config.channels, 1, bias=True))
        self.head = nn.Conv2d(config.channels, config.out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Stages: ``layers`` x (V-cycle + pointwise linear + bias, activation), then the 1x1 head."""
        for mg, local in zip(self.mg, self.local):
            x = self.act(mg(x) + local(x))
        return self.head(x)
