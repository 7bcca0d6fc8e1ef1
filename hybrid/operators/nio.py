"""``NIO``: Neural Inverse Operator (Molinaro, Yang, Engquist & Mishra, *Neural Inverse Operators for Solving
PDE Inverse Problems*, ICML 2023).

The input is a set of measurements: measurement ``l`` is a pair of boundary functions, e.g. in EIT a
Dirichlet pattern ``g_l`` and its current response ``Lambda_sigma g_l`` (the Dirichlet-to-Neumann map), stored
as channels of a tensor ``(batch, channels, measurements, boundary points)``. The output is the coefficient on
the ``(ny, nx)`` grid. Three stages:

1. a DeepONet on every measurement: the branch MLP reads the measurement's boundary functions (resampled
   periodically to ``sensors`` points, so any boundary resolution maps to the same branch), the trunk MLP
   reads grid coordinates in ``[0, 1]^2``, and their inner product gives ``lift`` channels on the grid;
2. the mean over measurements, so the result does not depend on their order or their number (the
   DeepONet is linear in its branch output, so the branch outputs are averaged before the inner product:
   the same function, computed once per grid instead of once per measurement), then a LayerNorm of the
   averaged branch features (without it the sample-specific part is ~1% of them at initialization and
   Adam's default weight decay keeps the network at the mean coefficient);
3. a grid operator (``decoder``) on the averaged field and the coordinates: the repository's FNO wrapper
   (``neuraloperator``, the paper's choice), ``MgNO``, or a small CNN; ``auto`` picks FNO when
   ``neuraloperator`` is installed and MgNO otherwise, and the checkpoint records the resolved choice.

In training mode each forward pass uses a random subset of the measurements (between ``min_measurements``
and all of them, the same subset for the whole batch), so the network learns to work with any number. The
draws come from a generator seeded by ``(seed, draws)`` where ``draws`` is a buffer saved in the checkpoint,
so a resumed run draws the same subsets as an uninterrupted one. In evaluation mode all measurements given
are used.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
from torch import nn
import torch.nn.functional as F

from .deeponet import fourier_features, mlp
from .fno import FNO, FNOConfig, neuraloperator_available
from .mgno import MgNO, MgNOConfig

DECODERS = ("auto", "fno", "mgno", "cnn")


@dataclass
class NIOConfig:
    #: channels per measurement (EIT: the boundary pattern and its Dirichlet-to-Neumann response)
    in_channels: int = 2
    out_channels: int = 1
    #: boundary points the branch reads (measurements are resampled to them, periodically)
    sensors: int = 128
    width: int = 128
    depth: int = 3
    #: DeepONet basis functions per lifted channel
    basis: int = 32
    #: channels of the averaged DeepONet field handed to the decoder
    lift: int = 16
    #: the trunk reads ``sin, cos(pi k x), sin, cos(pi k y)`` for ``k = 1..fourier`` besides ``(x, y)`` (an MLP
    #: of the bare coordinates learns the sharp features of a coefficient only slowly); 0: coordinates only
    fourier: int = 8
    decoder: str = "auto"
    decoder_channels: int = 32
    decoder_layers: int = 4
    #: FNO Fourier modes per dimension
    modes: int = 12
    #: MgNO levels (``[pre, post]`` smoothing steps, finest first); 4 levels fit grids down to 9 x 9
    decoder_levels: list = field(default_factory=lambda: [[1, 0], [1, 0], [1, 0], [2, 0]])
    #: MgNO padding: a coefficient field is not zero on the boundary, so reflect (``neumann``) by default
    decoder_boundary: str = "neumann"
    #: the branch's first layer also multiplies projections of the first channel (the pattern) with
    #: projections of the others (its response): a learned bilinear pairing ``<a_j, g> <b_j, Lambda g>``
    bilinear: bool = True
    random_measurements: bool = True
    min_measurements: int = 2
    seed: int = 0


def resample_periodic(u: torch.Tensor, points: int) -> torch.Tensor:
    """Piecewise-linear periodic resampling of the last axis (equispaced points on a closed curve, the first
    point at arclength 0) to ``points`` equispaced points."""
    nb = u.shape[-1]
    if nb == points:
        return u
    lead = u.shape[:-1]
    closed = torch.cat([u, u[..., :1]], dim=-1).reshape(-1, 1, nb + 1)
    out = F.interpolate(closed, size=points + 1, mode="linear", align_corners=True)[..., :points]
    return out.reshape(*lead, points)


def grid_coordinates(ny: int, nx: int, device=None, dtype=None) -> torch.Tensor:
    """``(ny, nx, 2)`` coordinates ``(x, y)`` in ``[0, 1]^2``, row ``j`` at ``y = j / (ny - 1)`` (as ``GridView``)."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, ny, device=device, dtype=dtype),
                            torch.linspace(0, 1, nx, device=device, dtype=dtype), indexing="ij")
    return torch.stack([xx, yy], dim=-1)


class Branch(nn.Module):
    """The DeepONet branch for one measurement ``(..., channels, sensors) -> (..., out)``: an MLP whose first layer,
    with ``bilinear``, adds ``(A u_0) * (B u_rest)`` to ``W u``. The products give the measurement's bilinear
    pairings (e.g. ``<a, g> <b, Lambda g>``, the entries of the Dirichlet-to-Neumann map in a learned basis)
    directly instead of leaving multiplication to be approximated by the activations."""

    def __init__(self, channels: int, sensors: int, width: int, depth: int, out: int, bilinear: bool):
        super().__init__()
        self.first = nn.Linear(channels * sensors, width)
        self.bilinear = bilinear and channels >= 2
        if self.bilinear:
            self.pattern = nn.Linear(sensors, width, bias=False)
            self.response = nn.Linear((channels - 1) * sensors, width, bias=False)
        self.act = nn.GELU()
        self.rest = mlp([width] * depth + [out])

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        h = self.first(u.flatten(-2))
        if self.bilinear:
            h = h + self.pattern(u[..., 0, :]) * self.response(u[..., 1:, :].flatten(-2))
        return self.rest(self.act(h))


class _CNN(nn.Module):
    """Residual 3x3 convolutions with GELU and a 1x1 head (the decoder when neither FNO nor MgNO is wanted)."""

    def __init__(self, cin: int, cout: int, channels: int, layers: int):
        super().__init__()
        self.inp = nn.Conv2d(cin, channels, 1)
        self.blocks = nn.ModuleList(nn.Conv2d(channels, channels, 3, padding=1, padding_mode="replicate")
                                    for _ in range(layers))
        self.head = nn.Conv2d(channels, cout, 1)

    def forward(self, x):
        x = self.inp(x)
        for conv in self.blocks:
            x = x + F.gelu(conv(x))
        return self.head(x)


class NIO(nn.Module):
    """Neural inverse operator for measurements ``(batch, in_channels, measurements, boundary points)``.

    >>> cfg = NIOConfig(sensors=16, width=16, basis=4, lift=4, decoder="cnn", decoder_channels=8, decoder_layers=1)
    >>> NIO(cfg).eval()(torch.randn(2, 2, 5, 32)).shape   # 32 boundary nodes of the unit square: a 9 x 9 grid
    torch.Size([2, 1, 9, 9])
    """

    def __init__(self, config: NIOConfig):
        super().__init__()
        c = config
        if c.decoder not in DECODERS:
            raise ValueError(f"unknown decoder {c.decoder!r}; use one of: {', '.join(DECODERS)}")
        if c.decoder == "auto":
            c = replace(c, decoder="fno" if neuraloperator_available() else "mgno")
        if not isinstance(c.fourier, int) or isinstance(c.fourier, bool) or c.fourier < 0:
            raise ValueError(f"NIO config fourier={c.fourier!r}: must be a non-negative integer")
        for name in ("in_channels", "out_channels", "sensors", "width", "depth", "basis", "lift", "decoder_channels",
                     "decoder_layers", "modes", "min_measurements"):
            value = getattr(c, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"NIO config {name}={value!r}: must be a positive integer")
        if c.sensors < 2:
            raise ValueError(f"NIO config sensors={c.sensors}: need at least 2 boundary points")
        self.config = c
        p = c.lift * c.basis
        self.branch = Branch(c.in_channels, c.sensors, c.width, c.depth, p, c.bilinear)
        self.trunk = mlp([2 + 4 * c.fourier] + [c.width] * c.depth + [p])
        self.bias = nn.Parameter(torch.zeros(c.lift))
        # the averaged branch features differ little between samples at initialization (what every measurement
        # shares dominates them); normalizing them makes the sample-specific part visible to the gradient
        self.norm = nn.LayerNorm(p)
        cin = c.lift + 2  # the averaged field and the coordinates
        if c.decoder == "fno":
            self.decoder = FNO(FNOConfig(in_channels=cin, out_channels=c.out_channels, modes=c.modes,
                                         channels=c.decoder_channels, layers=c.decoder_layers))
        elif c.decoder == "mgno":
            self.decoder = MgNO(MgNOConfig(in_channels=cin, out_channels=c.out_channels, channels=c.decoder_channels,
                                           layers=c.decoder_layers, levels=c.decoder_levels,
                                           boundary=c.decoder_boundary))
        else:
            self.decoder = _CNN(cin, c.out_channels, c.decoder_channels, c.decoder_layers)
        # training draws so far: the random subsets of measurements are a function of (seed, draws)
        self.register_buffer("draws", torch.zeros((), dtype=torch.long))

    def check_input(self, x: torch.Tensor) -> None:
        c = self.config
        if not torch.is_tensor(x) or x.ndim != 4:
            shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
            raise ValueError(f"NIO takes measurements shaped (batch, {c.in_channels} channels, measurements, boundary "
                             f"points), got {shape}; a single sample needs a batch axis (x[None])")
        if x.shape[1] != c.in_channels:
            raise ValueError(f"NIO was built for {c.in_channels} channels per measurement (e.g. the boundary pattern "
                             f"and its response), got {x.shape[1]} in shape {tuple(x.shape)}")
        if x.shape[2] < 1:
            raise ValueError(f"NIO needs at least one measurement, got shape {tuple(x.shape)}")
        if x.shape[3] < 2:
            raise ValueError(f"NIO needs at least 2 boundary points per measurement, got shape {tuple(x.shape)}")

    def _subset(self, count: int, device) -> torch.Tensor | None:
        """Random measurements for one training step (``None``: all)."""
        c = self.config
        low = min(c.min_measurements, count)
        if not (self.training and c.random_measurements) or low >= count:
            return None
        g = torch.Generator().manual_seed(c.seed * 1_000_003 + int(self.draws))
        self.draws += 1
        keep = int(torch.randint(low, count + 1, (1,), generator=g))
        return torch.randperm(count, generator=g)[:keep].sort().values.to(device)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Branch coefficients averaged over the measurements, ``(batch, lift, basis)``."""
        B, C, K, nb = x.shape
        u = resample_periodic(x, self.config.sensors).transpose(1, 2)  # (B, K, C, S): one row per measurement
        return self.norm(self.branch(u).mean(dim=1)).view(B, self.config.lift, self.config.basis)

    def forward(self, x: torch.Tensor, out_shape=None) -> torch.Tensor:
        """``(batch, out_channels, ny, nx)``; ``out_shape`` defaults to the unit square's grid for ``4 n`` boundary
        nodes, ``(n + 1, n + 1)``."""
        self.check_input(x)
        if out_shape is None:
            nb = x.shape[-1]
            if nb % 4:
                raise ValueError(f"{nb} boundary points are not the 4 n nodes of a unit-square grid: pass out_shape")
            out_shape = (nb // 4 + 1, nb // 4 + 1)
        ny, nx = (int(s) for s in out_shape)
        idx = self._subset(x.shape[2], x.device)
        if idx is not None:
            x = x.index_select(2, idx)
        c = self.config
        b = self.encode(x)
        xy = grid_coordinates(ny, nx, x.device, x.dtype)
        t = self.trunk(fourier_features(xy.reshape(-1, 2), c.fourier)).view(ny * nx, c.lift, c.basis)
        field = torch.einsum("bcp,ncp->bcn", b, t).view(x.shape[0], c.lift, ny, nx) + self.bias.view(1, -1, 1, 1)
        coords = xy.permute(2, 0, 1).unsqueeze(0).expand(x.shape[0], -1, -1, -1)
        return self.decoder(torch.cat([field, coords], dim=1))
