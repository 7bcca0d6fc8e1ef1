"""DeepONet (Lu et al. 2021): ``G(a)(x) = sum_k b_k(a) t_k(x) + b_0``.

The branch net reads the input field at ``sensors x sensors`` points, or ``sy x sx`` for
``sensors=[sy, sx]`` (bilinear resampling of the grid, so any input resolution maps to the same sensors;
EIT measurements ``(patterns, boundary nodes)`` want e.g. ``[16, 128]``, which does not undersample the
boundary); the trunk net reads output coordinates in ``[0, 1]^2``, so the output can be evaluated on any
grid. The inverse-problem work builds on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
import torch.nn.functional as F


@dataclass
class DeepONetConfig:
    in_channels: int = 1
    out_channels: int = 1
    sensors: int | list = 17
    width: int = 128
    depth: int = 3
    basis: int = 64
    #: the trunk also reads ``sin, cos(pi k x), sin, cos(pi k y)``, ``k = 1..fourier`` (as NIO's trunk; an MLP of
    #: the bare coordinates learns sharp output features only slowly); 0: coordinates only (Lu et al.)
    fourier: int = 0


def mlp(sizes, act=nn.GELU):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


def fourier_features(xy: torch.Tensor, count: int) -> torch.Tensor:
    """``(..., 2) -> (..., 2 + 4 count)``: the coordinates and ``sin, cos(pi k x)``, ``sin, cos(pi k y)``, ``k <= count``."""
    if count == 0:
        return xy
    k = torch.arange(1, count + 1, device=xy.device, dtype=xy.dtype) * torch.pi
    angles = (xy.unsqueeze(-1) * k).flatten(-2)  # (..., 2 count)
    return torch.cat([xy, torch.sin(angles), torch.cos(angles)], dim=-1)


def _sensor_shape(sensors) -> tuple[int, int]:
    shape = (sensors, sensors) if isinstance(sensors, int) else tuple(sensors)
    if len(shape) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 2 for s in shape):
        raise ValueError(f"DeepONet sensors={sensors!r}: an integer >= 2 or a pair [sy, sx] of them")
    return shape


class DeepONet(nn.Module):
    """DeepONet for ``(batch, in_channels, ny, nx)`` inputs; ``out_shape`` picks the output grid.

    >>> DeepONet(DeepONetConfig(sensors=5, width=16, basis=8))(torch.randn(2, 1, 9, 9)).shape
    torch.Size([2, 1, 9, 9])
    """

    def __init__(self, config: DeepONetConfig):
        super().__init__()
        self.config = config
        c = config
        p = c.basis * c.out_channels
        self.sensor_shape = _sensor_shape(c.sensors)
        self.branch = mlp([c.in_channels * self.sensor_shape[0] * self.sensor_shape[1]] + [c.width] * c.depth + [p])
        if not isinstance(c.fourier, int) or isinstance(c.fourier, bool) or c.fourier < 0:
            raise ValueError(f"DeepONet fourier={c.fourier!r}: must be a non-negative integer")
        self.trunk = mlp([2 + 4 * c.fourier] + [c.width] * c.depth + [p], act=nn.GELU)
        self.bias = nn.Parameter(torch.zeros(c.out_channels))

    def forward(self, x, out_shape=None):
        """Stages: resample to sensors, branch MLP; trunk MLP on the output grid; inner product."""
        if x.ndim != 4 or x.shape[1] != self.config.in_channels:
            raise ValueError(f"DeepONet takes (batch, {self.config.in_channels} channels, ny, nx) inputs, got "
                             f"{tuple(x.shape)}")
        B = x.shape[0]
        ny, nx = out_shape or x.shape[-2:]
        sens = F.interpolate(x, size=self.sensor_shape, mode="bilinear", align_corners=True).reshape(B, -1)
        b = self.branch(sens).view(B, self.config.out_channels, self.config.basis)
        yy, xx = torch.meshgrid(torch.linspace(0, 1, ny, device=x.device, dtype=x.dtype),
                                torch.linspace(0, 1, nx, device=x.device, dtype=x.dtype), indexing="ij")
        t = self.trunk(fourier_features(torch.stack([xx, yy], dim=-1).reshape(-1, 2), self.config.fourier))
        t = t.view(ny * nx, self.config.out_channels, self.config.basis)
        out = torch.einsum("bcp,ncp->bcn", b, t) + self.bias.view(1, -1, 1)
        return out.view(B, self.config.out_channels, ny, nx)
