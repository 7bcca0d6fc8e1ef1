"""U-Net baseline (Ronneberger et al. 2015): conv blocks, max-pool down, transposed-conv up, skips.

Inputs of any size work: the input is padded (replicate) to a multiple of ``2**depth`` and the output
cropped back, so odd P1 grids (``2^k + 1`` nodes) are handled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
import torch.nn.functional as F

from .mgno import coordinate_channels
from .unet_lean import layout, supports_lean, unet_forward_lean

#: grids of at least this many pixels run :func:`~hybrid.operators.unet_lean.unet_forward_lean` when no
#: gradient is recorded on the CPU (the same result with well under half the memory; a plain pass below).
#: Measured for the Helmholtz network on one core (scripts/helmholtz_net_memory.py,
#: bench/results/helmholtz-net-memory.json; NCHW): at 513^2 the strips cost time (0.23 against 0.19 s per
#: pass), at 1025^2 they gain (0.83 against 1.19 s), at 2049^2 too (3.66 against 5.85 s) and cut the memory
#: that matters there (510 against 1,167 MB)
LEAN_MIN_PIXELS = 1024 * 1024


def cpu_layout(module: nn.Module) -> nn.Module:
    """``module`` (in place) with its convolution weights in ``channels_last`` layout, for CPU inference:
    :class:`UNet` then runs every plane channels-last, where oneDNN's convolutions are faster. Measured
    for the Helmholtz network on one core (``scripts/helmholtz_net_memory.py``,
    ``bench/results/helmholtz-net-memory.json``, seconds per pass NCHW -> channels-last): 0.19 -> 0.15 at
    513^2 (plain pass), 0.83 -> 0.72 at 1025^2 and 3.66 -> 3.88 at 2049^2 (lean pass; before its group
    statistics were summed in float64 instead of by ``torch.var_mean``, 1.17 and 4.7). The values are the
    same function's: within 4e-6 of a float64 pass on the lean path, 5e-5 on the plain path (torch's
    channels-last GroupNorm accumulates in float32) against 2.5e-6 in NCHW; the learned preconditioner's
    iteration counts did not change."""
    return module.to(memory_format=torch.channels_last)


@dataclass
class UNetConfig:
    in_channels: int = 1
    out_channels: int = 1
    channels: int = 16
    depth: int = 3
    coordinates: bool = False    # append x, y channels in [0, 1] to the input


def _block(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.GroupNorm(math.gcd(8, cout), cout), nn.GELU(),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.GroupNorm(math.gcd(8, cout), cout), nn.GELU())


class UNet(nn.Module):
    """U-Net for ``(batch, in_channels, ny, nx)`` inputs.

    >>> UNet(UNetConfig(channels=8, depth=2))(torch.randn(2, 1, 33, 33)).shape
    torch.Size([2, 1, 33, 33])
    """

    def __init__(self, config: UNetConfig):
        super().__init__()
        self.config = config
        c, d = config.channels, config.depth
        cin = config.in_channels + (2 if config.coordinates else 0)
        self.down = nn.ModuleList([_block(cin if i == 0 else c * 2 ** (i - 1), c * 2**i)
                                   for i in range(d)])
        self.bottom = _block(c * 2 ** (d - 1), c * 2**d)
        #: applied after the bottom block, on the coarsest grid (identity; e.g. an implicit layer, HelmholtzNet)
        self.bottleneck = nn.Identity()
        self.up = nn.ModuleList([nn.ConvTranspose2d(c * 2 ** (i + 1), c * 2**i, 2, stride=2) for i in reversed(range(d))])
        self.dec = nn.ModuleList([_block(c * 2 ** (i + 1), c * 2**i) for i in reversed(range(d))])
        self.head = nn.Conv2d(c, config.out_channels, 1)

    def forward(self, x):
        """Stages: pad, ``depth`` x (block, pool), bottom block, ``depth`` x (up, concat skip, block), head, crop.
        Large CPU inputs without autograd take the memory-lean path (same stages; :mod:`.unet_lean`)."""
        if (not torch.is_grad_enabled() and x.device.type == "cpu" and x.shape[-1] * x.shape[-2] >= LEAN_MIN_PIXELS
                and supports_lean(self)):
            return unet_forward_lean(self, x)
        if self.config.coordinates:
            x = coordinate_channels(x)
        ny, nx = x.shape[-2:]
        m = 2**self.config.depth
        py, px = (-ny) % m, (-nx) % m
        x = F.pad(x, (0, px, 0, py), mode="replicate").contiguous(memory_format=layout(self.down[0][0].weight))
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottleneck(self.bottom(x))
        for up, dec, skip in zip(self.up, self.dec, reversed(skips)):
            x = dec(torch.cat([up(x), skip], dim=1))
        return self.head(x)[..., :ny, :nx]
