"""``MgConv``: a multigrid V-cycle whose smoothers and transfers are convolutions (He, Liu & Xu,
*MgNO: Efficient parameterization of linear operators via multigrid*, ICLR 2024).

On level ``l`` (finest ``l = 0``) with right-hand side ``f_l`` and iterate ``u_l``:

- pre-smoothing ``u <- u + S(f - A u)`` (the first step on the finest level is ``u = S f``);
- restriction ``f_{l+1} = R f_l`` and ``u_{l+1} = Pi u_l`` (3x3 convolutions with stride 2);
- after the coarser level returns, prolongation ``u_l <- u_l + P u_{l+1}`` (transposed convolution)
  and post-smoothing.

Every operation is linear and bias-free, so ``MgConv`` is a linear operator of ``f`` (superposition
holds to round-off); ``MgNO`` adds the nonlinearity between layers. Boundary conditions enter through
the padding of ``A``, ``S``, ``R`` and ``Pi``: zeros (Dirichlet), reflect (Neumann), circular
(periodic). Grids of ``2^k + 1`` nodes (P1 meshes) coarsen exactly as vertex-centred grids
(``65 -> 33 -> 17 ...``), and the prolongation's output size is always the fine grid's, so odd and
even sizes both work (``prolongation_kernel=4`` reproduces the reference code's even-grid transfer).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
import torch.nn.functional as F

PADDING = {"dirichlet": "zeros", "neumann": "reflect", "periodic": "circular"}


def padding_for(boundary: str) -> str:
    """PyTorch padding mode for a boundary-condition kind (``dirichlet``/``neumann``/``periodic``)."""
    try:
        return PADDING[boundary]
    except KeyError:
        raise ValueError(f"unknown boundary kind {boundary!r}; use one of {', '.join(PADDING)}") from None


def boundary_kind(bcs, boundaries) -> str:
    """``dirichlet`` / ``neumann`` from a problem's boundary conditions on a square's four sides.

    ``bcs`` are ``solvers`` conditions (``None``: Dirichlet everywhere, the problems' default); sides
    without a condition are natural (Neumann). Mixed sides have no single padding: ``ValueError``.
    """
    from solvers import Dirichlet

    if bcs is None:
        return "dirichlet"
    kinds = {name: "neumann" for name in boundaries}
    for bc in bcs:
        kinds[bc.boundary] = "dirichlet" if isinstance(bc, Dirichlet) else "neumann"
    found = set(kinds.values())
    if len(found) != 1:
        raise ValueError(f"mixed boundary conditions {kinds}: one padding mode cannot represent them")
    return found.pop()


def _conv3(cin, cout, padding_mode, stride=1):
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False, padding_mode=padding_mode)


def prolong(conv: nn.ConvTranspose2d | None, u_coarse, fine_shape, boundary: str, weight=None, groups: int = 1):
    """Transposed convolution onto the fine grid's exact shape (``weight`` replaces ``conv.weight``).

    PyTorch's transposed convolution only zero-pads, so for reflect/circular boundaries the coarse grid is
    padded by one cell with that mode first and the result cropped: the prolongation respects the boundary.
    """
    w = conv.weight if weight is None else weight
    mode = padding_for(boundary)
    if mode != "zeros":
        full = F.conv_transpose2d(F.pad(u_coarse, (1, 1, 1, 1), mode=mode), w, stride=2, padding=1, groups=groups)
        return full[..., 2:2 + fine_shape[0], 2:2 + fine_shape[1]]
    if w.shape[-1] == 4:
        if fine_shape[0] % 2 or fine_shape[1] % 2:
            raise ValueError(f"prolongation_kernel=4 needs even grid sizes, got {tuple(fine_shape)}; use 3")
        return F.conv_transpose2d(u_coarse, w, stride=2, padding=1)
    out_pad = [fine_shape[d] - ((u_coarse.shape[-2 + d] - 1) * 2 - 2 + 3) for d in range(2)]
    if min(out_pad) < 0 or max(out_pad) > 1:
        raise ValueError(f"cannot prolong a {tuple(u_coarse.shape[-2:])} grid onto {tuple(fine_shape)}")
    return F.conv_transpose2d(u_coarse, w, stride=2, padding=1, output_padding=tuple(out_pad), groups=groups)


class SmoothingStep(nn.Module):
    """``u <- u + S(f - A u)`` (or ``u = S f`` for the first step from zero)."""

    def __init__(self, cu: int, cf: int, padding_mode: str, first: bool = False):
        super().__init__()
        self.S = _conv3(cf, cu, padding_mode)
        self.A = None if first else _conv3(cu, cf, padding_mode)

    def forward(self, u, f):
        if self.A is None:
            return self.S(f) if u is None else u + self.S(f)
        if u is None:
            return self.S(f)
        return u + self.S(f - self.A(u))


@dataclass
class MgConvConfig:
    """``levels[l] = (pre, post)`` smoothing steps on level ``l`` (finest first, at the training grid).

    ``coarsest=None`` (the reference configuration): exactly ``len(levels)`` levels at every input size.
    ``coarsest=c``: the number of levels follows the input (coarsen until the next grid would have fewer
    than ``c`` nodes per side), see :class:`hybrid.operators.multilevel_mgconv.MultilevelMgConv`; there
    ``scheme`` is ``"reference"`` (restrict ``f`` and the iterate, as the authors' code) or
    ``"correction"`` (restrict the residual, coarse iterate from zero, one ``A`` per level), and
    ``dirichlet_mask`` zeroes the iterate on boundary nodes (Dirichlet only), and ``transfers`` is ``learned``
    (one restriction/prolongation per level pair), ``shared`` (one learned pair for all levels) or ``fixed``
    (full weighting and bilinear interpolation, channel by channel); ``spacing_scaling`` (``uniform``,
    ``moments``, ``moments-relative``) and ``transfer_above`` (levels above this spacing factor only
    transfer) as in that module's docstring.
    """

    in_channels: int = 1
    channels: int = 24
    levels: list = field(default_factory=lambda: [[1, 0]] * 5 + [[2, 0]])
    boundary: str = "dirichlet"
    prolongation_kernel: int = 3
    coarsest: int | None = None
    scheme: str = "reference"
    dirichlet_mask: bool = False
    transfers: str = "learned"
    spacing_scaling: str = "uniform"
    transfer_above: int | None = None


class MgConv(nn.Module):
    """V-cycle ``f -> u`` with ``in_channels`` inputs and ``channels`` outputs (see module docstring).

    >>> import torch
    >>> m = MgConv(MgConvConfig(in_channels=1, channels=4, levels=[[1, 1], [1, 1], [2, 0]]))
    >>> m(torch.randn(2, 1, 17, 17)).shape
    torch.Size([2, 4, 17, 17])
    """

    def __init__(self, config: MgConvConfig):
        super().__init__()
        self.config = config
        cu, cf = config.channels, config.in_channels
        pad = padding_for(config.boundary)
        if config.prolongation_kernel not in (3, 4):
            raise ValueError(f"prolongation_kernel must be 3 or 4, got {config.prolongation_kernel}")
        if not config.levels or any(len(l) != 2 or min(l) < 0 for l in config.levels):
            raise ValueError(f"levels must be a non-empty list of [pre, post] counts, got {config.levels}")
        if config.levels[0][0] < 1:
            raise ValueError("the finest level needs at least one pre-smoothing step")
        self.pre = nn.ModuleList()
        self.post = nn.ModuleList()
        for l, (npre, npost) in enumerate(config.levels):
            self.pre.append(nn.ModuleList(SmoothingStep(cu, cf, pad, first=(l == 0 and i == 0)) for i in range(npre)))
            self.post.append(nn.ModuleList(SmoothingStep(cu, cf, pad) for _ in range(npost)))
        nl = len(config.levels) - 1
        self.restrict_u = nn.ModuleList(_conv3(cu, cu, pad, stride=2) for _ in range(nl))
        self.restrict_f = nn.ModuleList(_conv3(cf, cf, pad, stride=2) for _ in range(nl))
        k = config.prolongation_kernel
        self.prolong = nn.ModuleList(nn.ConvTranspose2d(cu, cu, k, stride=2, padding=1, bias=False)
                                     for _ in range(nl))

    def _prolong(self, l: int, u_coarse, fine_shape):
        return prolong(self.prolong[l], u_coarse, fine_shape, self.config.boundary)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        """Down: pre-smooth and restrict ``(u, f)``; up: add the prolongated correction, post-smooth."""
        us, fs = [], []
        u = None
        for l in range(len(self.config.levels)):
            for step in self.pre[l]:
                u = step(u, f)
            us.append(u)
            fs.append(f)
            if l < len(self.config.levels) - 1:
                if f.shape[-1] < 3 or f.shape[-2] < 3:
                    raise ValueError(f"input too small for {len(self.config.levels)} levels: level {l} is {tuple(f.shape[-2:])}")
                f = self.restrict_f[l](f)
                u = self.restrict_u[l](u) if u is not None else None
        u = us[-1]
        for l in range(len(self.config.levels) - 2, -1, -1):
            u = us[l] + self._prolong(l, u, fs[l].shape[-2:])
            for step in self.post[l]:
                u = step(u, fs[l])
        return u
