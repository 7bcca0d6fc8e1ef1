"""The network of the learned Helmholtz preconditioner (:mod:`hybrid.precond.helmholtz`): a U-Net from
the residual left by the shifted-Laplacian cycle and the local ``k h`` to the error, optionally with an
implicit layer on its coarsest grid (:class:`~hybrid.operators.implicit.ImplicitStencil`). Torch only (no
solver imports), so it also trains on a machine without DOLFINx (scripts/device_helmholtz_train.py)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .implicit import ImplicitStencil
from .unet import UNet, UNetConfig


@dataclass
class HelmholtzNetConfig:
    channels: int = 12
    depth: int = 4
    implicit: bool = False   # an implicit layer (FFT-inverted stencil per channel) after the bottom block


class HelmholtzNet(nn.Module):
    """U-Net ``(residual re, residual im, k h) -> (error re, error im)`` on the node grid."""

    def __init__(self, config: HelmholtzNetConfig | None = None):
        super().__init__()
        self.config = config or HelmholtzNetConfig()
        self.unet = UNet(UNetConfig(in_channels=3, out_channels=2, channels=self.config.channels,
                                    depth=self.config.depth))
        if self.config.implicit:
            self.unet.bottleneck = ImplicitStencil(self.config.channels * 2**self.config.depth)

    def forward(self, r: torch.Tensor, kh: torch.Tensor) -> torch.Tensor:
        """``r``: (B, 2, H, W) normalized residual; ``kh``: (B, 1, H, W). Returns (B, 2, H, W)."""
        return self.unet(torch.cat([r, kh], dim=1))

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())
