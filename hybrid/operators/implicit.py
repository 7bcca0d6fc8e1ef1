"""An implicit layer: a learned 3x3 stencil per channel, inverted over the whole grid by FFT.

After Lerer, Ben-Yair & Treister, "Multigrid-augmented deep learning preconditioners for the Helmholtz
equation using compact implicit layers" (SIAM J. Sci. Comput. 2024): on the coarsest grid of an
encoder-decoder, a layer that *solves* ``K_c * u_c = x_c`` for each channel ``c`` (``K_c`` a learned
3x3 convolution kernel) gives every output pixel a view of the whole grid, which a stack of small
convolutions only gets with a depth that grows with the grid. The inverse is the regularized
``conj(K^) / (|K^|^2 + eps)`` in Fourier space (defined for any kernel, stable where ``K^`` vanishes),
and the input is zero-padded to twice its size so the FFT's periodic wrap-around does not couple
opposite sides (the problem's boundaries are absorbing, not periodic).

Residual form ``x + gamma_c u_c`` with ``gamma = 0`` at initialization: added to a trained network it
changes nothing until training finds a use for it. Written here because torch has no convolution
inverse; ``torch.fft`` does the work.
"""

from __future__ import annotations

import torch
from torch import nn


class ImplicitStencil(nn.Module):
    """``x + gamma * K^{-1} x`` per channel, ``K`` a learned 3x3 stencil (initially the 5-point Laplacian
    plus ``shift`` on the diagonal: a screened Poisson solve), inverted by FFT on the zero-padded grid.

    >>> layer = ImplicitStencil(4)
    >>> x = torch.randn(2, 4, 9, 9)
    >>> bool(torch.equal(layer(x), x))   # gamma = 0 at initialization
    True
    """

    def __init__(self, channels: int, shift: float = 0.5, eps: float = 1e-4):
        super().__init__()
        k = torch.tensor([[0.0, -1.0, 0.0], [-1.0, 4.0 + shift, -1.0], [0.0, -1.0, 0.0]])
        self.kernel = nn.Parameter(k.repeat(channels, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(channels))
        self.eps = float(eps)

    def solve(self, x: torch.Tensor) -> torch.Tensor:
        """``u`` with ``K_c * u_c ~ x_c`` (regularized least squares in Fourier space), same shape as ``x``."""
        h, w = x.shape[-2:]
        H, W = 2 * h, 2 * w
        xp = torch.zeros(*x.shape[:-2], H, W, dtype=x.dtype, device=x.device)
        xp[..., :h, :w] = x
        # the stencil centred at (0, 0) of the periodic (H, W) grid
        kp = torch.zeros(self.kernel.shape[0], H, W, dtype=x.dtype, device=x.device)
        for di in (-1, 0, 1):
            for dj in (-1, 0, 1):
                kp[:, di % H, dj % W] = self.kernel[:, di + 1, dj + 1]
        kh = torch.fft.rfft2(kp)
        uh = torch.fft.rfft2(xp) * (kh.conj() / (kh.abs() ** 2 + self.eps))
        return torch.fft.irfft2(uh, s=(H, W))[..., :h, :w]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.gamma[:, None, None] * self.solve(x)
