"""``MgNO``: layers ``u <- sigma(MgConv(u) + Conv1x1(u) + b)`` and a 1x1 output head.

No lifting or projection network: the first layer's ``MgConv`` reads the input channels directly
(as in the authors' Darcy model, whose reference configuration has 572,661 parameters; ours has the
same count with ``prolongation_kernel=4``, a test checks it).

``coarsest=c`` switches to :class:`~hybrid.operators.multilevel_mgconv.MultilevelMgConv` (levels follow the
input, weights indexed from the coarsest level, spacing-scaled sharing; ``scheme`` ``reference`` or
``correction``), which carries across resolutions. ``dirichlet_mask`` also fixes the output on the boundary
nodes to one learned constant per channel (the normalized image of the zero Dirichlet value, whatever the
data normalization). ``coordinates`` appends the ``x, y`` channels (in ``[0, 1]``) to the input.

``output_boundary`` (with ``dirichlet_mask``): ``mask`` sets the boundary nodes to the learned value and leaves
the first interior nodes to the network, which then learns the jump between them at the training spacing: at
``h / 2`` the same jump sits half as far from the boundary, an ``O(1)`` boundary-layer error that does not
shrink with ``h`` (issue 13: most of the error at 2x the training resolution). ``distance`` makes the output
continuous instead: ``out = b + d g`` with ``g`` the head's output, ``b`` the learned boundary value and
``d = tanh(dist / boundary_width)``, ``dist`` the distance to the boundary of ``[0, 1]^2``: zero on the
boundary nodes, about 1 beyond a band of ``boundary_width``, a function of the position, not of the grid.

``resample_above=s`` (with ``coarsest``) is a baseline, not an operator that transfers: an input whose finest
level would run at a spacing factor above ``s`` is injected (every other node, as the training's subsampled
batches) until it does not, the whole network runs there and its output is interpolated back (bilinear).
At the training resolution (``s`` at least its finest spacing factor) nothing changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from .mgconv import MgConv, MgConvConfig, prolong
from .multilevel_mgconv import MultilevelMgConv, interior_mask

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
    coarsest: int | None = None      # None: fixed depth len(levels) (the reference configuration)
    scheme: str = "reference"        # with coarsest: "reference" or "correction"
    dirichlet_mask: bool = False     # with coarsest and a Dirichlet boundary
    coordinates: bool = False
    transfers: str = "learned"       # with coarsest: "learned", "shared" or "fixed"
    spacing_scaling: str = "uniform"  # with coarsest: "uniform", "moments" or "moments-relative"
    transfer_above: int | None = None  # with coarsest: levels above this spacing factor do no smoothing
    resample_above: int | None = None  # with coarsest: run the network on an injected input above this factor
    output_boundary: str = "mask"      # with dirichlet_mask: "mask" or "distance" (out = b + d(x, y) g)
    boundary_width: float = 1 / 32    # output_boundary="distance": d = tanh(distance to the boundary / width)


#: named configurations: the authors' Darcy model, and the resolution-aware one (issue 13: levels follow the
#: input, correction scheme, fixed transfers, moment-wise spacing scaling, continuous boundary output; 1.14x its
#: own error at 2x the training resolution) that ``hybrid bench operators`` trains as ``mgno-moments-distance``
PRESETS = {
    "reference": {"prolongation_kernel": 4},
    "resolution-aware": {"coarsest": 5, "scheme": "correction", "dirichlet_mask": True, "transfers": "fixed",
                         "levels": [[1, 1], [1, 1], [2, 2]], "spacing_scaling": "moments",
                         "output_boundary": "distance"},
}


def coordinate_channels(x: torch.Tensor) -> torch.Tensor:
    """``x`` with two more channels: the node coordinates ``x`` (along the last axis) and ``y`` in ``[0, 1]``."""
    ny, nx = x.shape[-2:]
    gy, gx = torch.meshgrid(torch.linspace(0, 1, ny, dtype=x.dtype, device=x.device),
                            torch.linspace(0, 1, nx, dtype=x.dtype, device=x.device), indexing="ij")
    grid = torch.stack([gx, gy])[None].expand(x.shape[0], 2, ny, nx)
    return torch.cat([x, grid], dim=1)


def distance_factor(like: torch.Tensor, width: float) -> torch.Tensor:
    """``tanh(dist / width)`` on the node grid of ``[0, 1]^2``, ``dist`` the distance to the boundary, shaped
    ``(1, 1, ny, nx)`` (exactly zero on the boundary nodes)."""
    ny, nx = like.shape[-2:]
    y = torch.linspace(0, 1, ny, dtype=like.dtype, device=like.device)
    x = torch.linspace(0, 1, nx, dtype=like.dtype, device=like.device)
    dist = torch.minimum(torch.minimum(y, 1 - y)[:, None], torch.minimum(x, 1 - x)[None, :])
    return torch.tanh(dist / width)[None, None]


class MgNO(nn.Module):
    """Multigrid neural operator for ``(batch, in_channels, ny, nx)`` inputs.

    >>> import torch
    >>> m = MgNO(MgNOConfig(channels=8, layers=2, levels=[[1, 0], [1, 0], [2, 0]]))
    >>> m(torch.randn(3, 1, 33, 33)).shape
    torch.Size([3, 1, 33, 33])
    >>> m = MgNO(MgNOConfig(channels=8, layers=2, levels=[[1, 0], [2, 0]], coarsest=5, scheme="correction"))
    >>> m(torch.randn(3, 1, 65, 65)).shape
    torch.Size([3, 1, 65, 65])
    """

    def __init__(self, config: MgNOConfig):
        super().__init__()
        if config.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {config.activation!r}; use one of {', '.join(ACTIVATIONS)}")
        if config.layers < 1:
            raise ValueError(f"layers must be >= 1, got {config.layers}")
        if config.coarsest is None and (config.scheme != "reference" or config.dirichlet_mask):
            raise ValueError("scheme='correction' and dirichlet_mask need coarsest (the multilevel V-cycle)")
        if config.coarsest is None and (config.spacing_scaling != "uniform" or config.transfer_above is not None
                                        or config.resample_above is not None):
            raise ValueError("spacing_scaling, transfer_above and resample_above need coarsest (the multilevel V-cycle)")
        if config.output_boundary not in ("mask", "distance"):
            raise ValueError(f"output_boundary must be 'mask' or 'distance', got {config.output_boundary!r}")
        if config.output_boundary == "distance" and not config.dirichlet_mask:
            raise ValueError("output_boundary='distance' needs dirichlet_mask (zero Dirichlet boundaries)")
        if config.boundary_width <= 0:
            raise ValueError(f"boundary_width must be positive, got {config.boundary_width}")
        self.config = config
        self.act = ACTIVATIONS[config.activation]()
        self.mg = nn.ModuleList()
        self.local = nn.ModuleList()
        cycle = MgConv if config.coarsest is None else MultilevelMgConv
        first = config.in_channels + (2 if config.coordinates else 0)
        for i in range(config.layers):
            cin = first if i == 0 else config.channels
            self.mg.append(cycle(MgConvConfig(cin, config.channels, config.levels, config.boundary,
                                              config.prolongation_kernel, config.coarsest, config.scheme,
                                              config.dirichlet_mask, config.transfers,
                                              config.spacing_scaling, config.transfer_above)))
            self.local.append(nn.Conv2d(cin, config.channels, 1, bias=True))
        self.head = nn.Conv2d(config.channels, config.out_channels, 1, bias=False)
        if config.dirichlet_mask:
            self.boundary_value = nn.Parameter(torch.zeros(1, config.out_channels, 1, 1))
        hat = torch.tensor([0.5, 1.0, 0.5])
        self.register_buffer("bilinear", torch.outer(hat, hat)[None, None], persistent=False)

    @torch.no_grad()
    def init_boundary_value(self, value: torch.Tensor) -> None:
        """Start the learned boundary value at ``value`` (per output channel: the normalized zero)."""
        if self.config.dirichlet_mask:
            self.boundary_value.copy_(value.reshape(self.boundary_value.shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Stages: (coordinates), ``layers`` x (V-cycle + pointwise linear + bias, activation), the 1x1 head,
        (the boundary nodes set to the learned boundary value); with ``resample_above`` around all of it
        injection of the input and interpolation of the output."""
        if self.config.resample_above is None:
            return self._forward(x)
        steps = 0
        while self.mg[0]._plan(x.shape[-2:])[0][1] > self.config.resample_above:
            if (x.shape[-1] - 1) % 2 or (x.shape[-2] - 1) % 2:
                raise ValueError(f"resample_above injects every other node: needs odd grid sizes, got "
                                 f"{tuple(x.shape[-2:])}")
            x = x[..., ::2, ::2]
            steps += 1
        out = self._forward(x)
        for _ in range(steps):
            c = out.shape[1]
            fine = tuple(2 * n - 1 for n in out.shape[-2:])
            out = prolong(None, out, fine, self.config.boundary, weight=self.bilinear.to(out.dtype).expand(c, 1, 3, 3),
                          groups=c)
        return out

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.config.coordinates:
            x = coordinate_channels(x)
        for mg, local in zip(self.mg, self.local):
            x = self.act(mg(x) + local(x))
        out = self.head(x)
        if self.config.dirichlet_mask and self.config.output_boundary == "distance":
            return self.boundary_value + distance_factor(out, self.config.boundary_width) * out
        if self.config.dirichlet_mask:
            m = interior_mask(out.shape[-2:], out)
            out = out * m + self.boundary_value * (1 - m)
        return out
