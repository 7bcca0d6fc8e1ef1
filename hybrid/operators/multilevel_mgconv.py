"""``MultilevelMgConv``: an MgConv V-cycle whose number of levels follows the input (issue 13 item 1).

The fixed-depth :class:`~hybrid.operators.mgconv.MgConv` has ``len(levels)`` levels at every grid size, so a
model trained at 65 x 65 (coarsest grid 3 x 3) meets a 5 x 5 coarsest grid at 129 x 129, and every stencil
learned for spacing ``2^l / 64`` is applied at ``2^l / 128``. Here instead

- the input is coarsened until the next grid would have fewer than ``coarsest`` nodes per side, so the
  coarsest grid (and with it the reach of the cycle) is the same at every resolution;
- weights are indexed **from the coarsest level**: level ``j`` (``j = 0`` coarsest) uses the weights learned
  for level ``k = min(j, K - 1)`` of the ``K`` learned levels. Coarser inputs use the coarse weights at
  their own spacing; finer inputs add fine levels that share the finest learned weights;
- a level ``j`` using the weights of level ``k`` runs at spacing ``h_j = h_k / s`` with ``s = 2^(j - k)``;
  its operator is scaled as a second-order differential operator and its smoother as an inverse one,
  ``A -> s^2 A`` and ``S -> S / s^2`` (the iteration ``I - S A`` is unchanged, and ``S f`` shrinks like
  ``h^2`` as a Jacobi step of a finer discretization does); transfers are scale-free (averages and
  interpolations of nodal values). At the training resolution ``s = 1`` everywhere.

``spacing_scaling`` says how a shared level's ``A`` and ``S`` follow ``s``:

``uniform`` (default)
    ``A -> s^2 A``, ``S -> S / s^2`` as above: right for a kernel that is a pure second-order stencil.
``moments``
    a learned 3x3 kernel is not: with ``m0`` its sum and ``m1 = (mx, my)`` its first moments (per channel
    pair), ``A = m0 delta + mx Dx + my Dy + R`` (``delta`` the centre tap, ``Dx``, ``Dy`` the central
    differences ``[-1/2, 0, 1/2]``, ``R`` the remainder with zero sum and zero first moments, which keeps
    ``A``'s second moments). Read as a Taylor expansion at spacing ``h_k``, ``A u ~ m0 u + h_k m1 . grad u +
    O(h_k^2)``: the same operator at ``h_k / s`` has the parts scaled by ``1``, ``s`` and ``s^2``,
    ``A -> m0 delta + s m1 . D + s^2 R`` (exactly ``A`` at ``s = 1``, a pure centre tap unscaled);
    ``S -> S / s^2``.
``moments-relative``
    ``A`` as ``moments``; ``S`` follows the scaled ``A`` instead of ``1 / s^2``: output channel ``c`` of
    ``S`` (iterate channel ``c``) is divided by the growth ``||A_s[:, c]|| / ||A[:, c]||`` of ``A``'s
    column ``c`` (``1 / s^2`` for a second-order column, ``1`` for a pure reaction term).

``transfer_above`` (``None``: off) is a baseline, not a scaling: levels whose spacing factor exceeds it do
no smoothing at all, the residual (``f``) is restricted by the transfer and the coarse correction
prolongated, so above the training resolution the learned cycle runs on the restricted input and its
result is interpolated. With ``transfer_above`` at least the largest ``s`` of the training resolution
the cycle is unchanged there.

Two cycle forms (``scheme``):

``reference``
    the authors' code: on the way down ``f <- R f`` and ``u <- Pi u`` (a restriction of the iterate),
    smoothing steps ``u <- u + S (f - A u)`` each with their own ``A`` and ``S``; on the way up
    ``u <- u + P u_coarse`` and post-smoothing.
``correction``
    the textbook correction scheme: one ``A`` per level; after pre-smoothing the **residual** is
    restricted, ``f_coarse = R (f - A u)``, the coarse iterate starts from zero (``u = S f_coarse``), and
    the prolongated coarse solution corrects the fine iterate. Every level has the same structure, so
    sharing weights with added fine levels is exact in form.

With ``dirichlet_mask`` (Dirichlet boundaries) the iterate is zero on the boundary nodes of every level
(set after each smoothing step and each correction), as in a finite-element space with the boundary
eliminated; zero padding then only supplies the zero outside values those nodes already have.
Everything stays linear and bias-free in ``f``.
"""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from .mgconv import _conv3, padding_for, prolong

SCHEMES = ("reference", "correction")
TRANSFERS = ("learned", "shared", "fixed")
SPACING_SCALINGS = ("uniform", "moments", "moments-relative")
_HAT = torch.tensor([0.5, 1.0, 0.5])


def kernel_moments(w: torch.Tensor):
    """Sum ``m0`` and first moments ``(mx, my)`` of 3x3 kernels ``w (..., 3, 3)`` (offsets ``-1, 0, 1`` along
    the last axis (x) and the one before (y), as ``conv2d`` applies them), each shaped ``w.shape[:-2]``."""
    d = torch.tensor([-1.0, 0.0, 1.0], dtype=w.dtype, device=w.device)
    return w.sum((-1, -2)), (w * d).sum((-1, -2)), (w * d[:, None]).sum((-1, -2))


def moment_parts(w: torch.Tensor):
    """``w = m0 delta + (mx Dx + my Dy) + R``: the centre tap times the sum, the central differences times
    the first moments, and a remainder with zero sum and zero first moments; returns the three kernels."""
    m0, mx, my = kernel_moments(w)
    zeroth = torch.zeros_like(w)
    zeroth[..., 1, 1] = m0
    first = torch.zeros_like(w)
    first[..., 1, 2] = mx / 2
    first[..., 1, 0] = -mx / 2
    first[..., 2, 1] = first[..., 2, 1] + my / 2
    first[..., 0, 1] = first[..., 0, 1] - my / 2
    return zeroth, first, w - zeroth - first


def moment_scaled(w: torch.Tensor, s: float) -> torch.Tensor:
    """``w`` at ``1 / s`` of its spacing read as a differential operator: sum, first moments and remainder
    scaled by ``1``, ``s``, ``s^2`` (see the module docstring); ``w`` itself at ``s = 1``."""
    if s == 1.0:
        return w
    zeroth, first, rest = moment_parts(w)
    return zeroth + s * first + (s * s) * rest


def level_sizes(size: int, coarsest: int) -> list[int]:
    """Grid sizes finest first: halve (stride-2 convolution, ``m -> (m - 1) // 2 + 1``) while the result
    keeps at least ``coarsest`` nodes.

    >>> level_sizes(65, 5), level_sizes(129, 5), level_sizes(64, 5)
    ([65, 33, 17, 9, 5], [129, 65, 33, 17, 9, 5], [64, 32, 16, 8])
    """
    sizes = [size]
    while (sizes[-1] - 1) // 2 + 1 >= coarsest and sizes[-1] > 2:
        sizes.append((sizes[-1] - 1) // 2 + 1)
    return sizes


def interior_mask(shape, like: torch.Tensor) -> torch.Tensor:
    """1 on interior nodes, 0 on the boundary rows and columns, shaped ``(1, 1, ny, nx)``."""
    m = torch.zeros(1, 1, *shape, dtype=like.dtype, device=like.device)
    m[..., 1:-1, 1:-1] = 1
    return m


def _conv(x, conv: nn.Conv2d, mode: str, weight: torch.Tensor | None = None):
    """``conv(x)``, or with ``weight`` in place of its own (3x3, padding 1 in the boundary's mode)."""
    w = conv.weight if weight is None else weight
    if mode != "zeros":
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode=mode), w, stride=conv.stride)
    return F.conv2d(x, w, stride=conv.stride, padding=1)


class Level(nn.Module):
    """One learned level: smoothers ``S`` (and operators ``A``) of the pre- and post-smoothing steps;
    for ``correction`` a single ``A``."""

    def __init__(self, cu: int, cf: int, pre: int, post: int, scheme: str, pad: str):
        super().__init__()
        self.S_pre = nn.ModuleList(_conv3(cf, cu, pad) for _ in range(pre))
        self.S_post = nn.ModuleList(_conv3(cf, cu, pad) for _ in range(post))
        if scheme == "correction":
            self.A = _conv3(cu, cf, pad)
        else:
            self.A_pre = nn.ModuleList(_conv3(cu, cf, pad) for _ in range(pre))
            self.A_post = nn.ModuleList(_conv3(cu, cf, pad) for _ in range(post))


class MultilevelMgConv(nn.Module):
    """V-cycle ``f -> u`` whose depth follows the input (see the module docstring); linear in ``f``.

    >>> import torch
    >>> from hybrid.operators import MgConvConfig
    >>> m = MultilevelMgConv(MgConvConfig(channels=4, levels=[[1, 1], [1, 1], [2, 0]], coarsest=5,
    ...                                   scheme="correction", dirichlet_mask=True))
    >>> [m(torch.randn(2, 1, n, n)).shape[-1] for n in (17, 33, 65)]
    [17, 33, 65]
    >>> m.depth(65), m.depth(17)
    (5, 3)
    """

    def __init__(self, config):
        super().__init__()
        if config.scheme not in SCHEMES:
            raise ValueError(f"scheme must be one of {', '.join(SCHEMES)}, got {config.scheme!r}")
        if config.coarsest is None or config.coarsest < 2:
            raise ValueError(f"coarsest must be at least 2 nodes per side, got {config.coarsest}")
        if config.prolongation_kernel != 3:
            raise ValueError("the multilevel V-cycle maps vertex grids of any size: prolongation_kernel must be 3")
        if len(config.levels) < 2 or any(len(l) != 2 or min(l) < 0 for l in config.levels):
            raise ValueError(f"levels must be a list of at least two [pre, post] counts, got {config.levels}")
        if any(l[0] < 1 for l in config.levels):
            raise ValueError("every level needs at least one pre-smoothing step")
        if config.transfers not in TRANSFERS:
            raise ValueError(f"transfers must be one of {', '.join(TRANSFERS)}, got {config.transfers!r}")
        if config.dirichlet_mask and config.boundary != "dirichlet":
            raise ValueError(f"dirichlet_mask needs boundary='dirichlet', got {config.boundary!r}")
        if config.spacing_scaling not in SPACING_SCALINGS:
            raise ValueError(f"spacing_scaling must be one of {', '.join(SPACING_SCALINGS)}, "
                             f"got {config.spacing_scaling!r}")
        if config.transfer_above is not None and config.transfer_above < 1:
            raise ValueError(f"transfer_above must be a spacing factor >= 1 (or None), got {config.transfer_above}")
        self.config = config
        self.mode = padding_for(config.boundary)
        cu, cf, scheme = config.channels, config.in_channels, config.scheme
        pad = self.mode
        # learned levels coarsest first: index k uses levels[K - 1 - k] (the config lists them finest first)
        self.levels = nn.ModuleList(Level(cu, cf, pre, post, scheme, pad) for pre, post in reversed(config.levels))
        # transfers between learned level k (fine) and k - 1 (coarse), index k - 1 (one pair when shared)
        k = {"learned": len(config.levels) - 1, "shared": 1, "fixed": 0}[config.transfers]
        self.restrict_f = nn.ModuleList(_conv3(cf, cf, pad, stride=2) for _ in range(k))
        self.restrict_u = nn.ModuleList(_conv3(cu, cu, pad, stride=2) for _ in range(k)) \
            if scheme == "reference" else None
        self.prolong = nn.ModuleList(nn.ConvTranspose2d(cu, cu, 3, stride=2, padding=1, bias=False)
                                     for _ in range(k))
        hat = torch.outer(_HAT, _HAT)
        self.register_buffer("full_weighting", (hat / 4)[None, None], persistent=False)
        self.register_buffer("bilinear", hat[None, None], persistent=False)

    def depth(self, size: int) -> int:
        """Number of levels this cycle runs on an input of ``size`` nodes per side."""
        return len(level_sizes(size, self.config.coarsest))

    def _plan(self, shape):
        """Per level finest first: (learned level index, spacing factor ``s``)."""
        depth = min(self.depth(shape[0]), self.depth(shape[1]))
        K = len(self.levels)
        if depth < 2 and K > 1:
            raise ValueError(f"input {tuple(shape)} is too small: needs at least {2 * self.config.coarsest - 1} "
                             f"nodes per side for a coarsest grid of {self.config.coarsest}")
        plan = []
        for i in range(depth):  # i: position from the finest
            j = depth - 1 - i   # position from the coarsest
            k = min(j, K - 1)
            plan.append((k, float(2 ** (j - k))))
        return plan

    def _restrict(self, x, t: int, which: str):
        """Transfer ``t`` (learned level ``t + 1`` -> ``t``) of ``f`` or ``u``, by ``transfers``."""
        if self.config.transfers == "fixed":
            c = x.shape[1]
            xp = F.pad(x, (1, 1, 1, 1), mode=self.mode) if self.mode != "zeros" else F.pad(x, (1, 1, 1, 1))
            return F.conv2d(xp, self.full_weighting.expand(c, 1, 3, 3), stride=2, groups=c)
        convs = self.restrict_f if which == "f" else self.restrict_u
        return _conv(x, convs[min(t, len(convs) - 1)], self.mode)

    def _prolong(self, u, t: int, fine_shape):
        if self.config.transfers == "fixed":
            c = u.shape[1]
            return prolong(None, u, fine_shape, self.config.boundary, weight=self.bilinear.expand(c, 1, 3, 3),
                           groups=c)
        return prolong(self.prolong[min(t, len(self.prolong) - 1)], u, fine_shape, self.config.boundary)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        plan = self._plan(f.shape[-2:])
        correction = self.config.scheme == "correction"
        mask = self.config.dirichlet_mask
        us, fs = [], []
        u = None
        for i, (k, s) in enumerate(plan):
            lvl = self.levels[k]
            m = interior_mask(f.shape[-2:], f) if mask else None
            if self._smoothes(s):
                u = self._smooth(u, f, lvl, lvl.S_pre, None if correction else lvl.A_pre, s, m)
            us.append(u)
            fs.append(f)
            if i < len(plan) - 1:
                t = plan[i + 1][0]  # learned transfer t + 1 -> t (the finest learned one, when shared)
                r = f - self._apply_A(u, lvl.A, s) if correction and u is not None else f
                f = self._restrict(r, t, "f")
                u = None if correction or u is None else self._restrict(u, t, "u")
        u = us[-1]
        for i in range(len(plan) - 2, -1, -1):
            k, s = plan[i]
            lvl = self.levels[k]
            up = self._prolong(u, plan[i + 1][0], fs[i].shape[-2:])
            u = up if us[i] is None else us[i] + up
            m = interior_mask(fs[i].shape[-2:], u) if mask else None
            if m is not None:
                u = u * m
            if self._smoothes(s):
                u = self._smooth(u, fs[i], lvl, lvl.S_post, None if correction else lvl.A_post, s, m)
        return u

    def _smoothes(self, s: float) -> bool:
        """Whether a level at spacing factor ``s`` smoothes (``False`` above ``transfer_above``)."""
        return self.config.transfer_above is None or s <= self.config.transfer_above

    def _A_weight(self, conv: nn.Conv2d, s: float) -> torch.Tensor:
        """``A``'s kernel at spacing factor ``s`` (``spacing_scaling``)."""
        if s == 1.0:
            return conv.weight
        if self.config.spacing_scaling == "uniform":
            return conv.weight * (s * s)
        return moment_scaled(conv.weight, s)

    def _apply_A(self, u, conv: nn.Conv2d, s: float):
        return _conv(u, conv, self.mode, weight=self._A_weight(conv, s))

    def _S_weight(self, conv: nn.Conv2d, a: nn.Conv2d, s: float) -> torch.Tensor:
        """``S``'s kernel at spacing factor ``s``: ``S / s^2``, or (``moments-relative``) each output channel
        divided by the growth of the matching column of the scaled ``a``."""
        if s == 1.0:
            return conv.weight
        if self.config.spacing_scaling != "moments-relative":
            return conv.weight / (s * s)
        dims = (0, 2, 3)
        norm = lambda w: w.square().sum(dims).sqrt() + 1e-12  # noqa: E731
        growth = norm(self._A_weight(a, s)) / norm(a.weight)
        return conv.weight / growth[:, None, None, None]

    def _smooth(self, u, f, lvl: Level, S, A, s: float, m):
        """Smoothing steps ``u <- u + S(f - A u)`` (``u = S f`` from zero); scaled by the spacing factor."""
        for n, conv in enumerate(S):
            a = lvl.A if A is None else A[n]
            w = self._S_weight(conv, a, s)
            if u is None:
                step = _conv(f, conv, self.mode, weight=w)
            else:
                step = _conv(f - self._apply_A(u, a, s), conv, self.mode, weight=w)
            u = step if u is None else u + step
            if m is not None:
                u = u * m
        return u
