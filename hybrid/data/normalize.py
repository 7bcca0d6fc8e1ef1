"""Normalization as a small processor saved with the checkpoint (not inside the model or the trainer).

Per-channel mean and standard deviation (not per-pixel): the statistics do not depend on the grid,
so a model trained at one resolution is evaluated at another with the same processor.
"""

from __future__ import annotations

import torch
from torch import nn


class ChannelNormalizer(nn.Module):
    """``(x - mean_c) / (std_c + eps)`` per channel; statistics live in buffers (saved in state_dict)."""

    def __init__(self, channels: int, eps: float = 1e-8):
        super().__init__()
        self.eps = eps
        self.register_buffer("mean", torch.zeros(channels))
        self.register_buffer("std", torch.ones(channels))

    def fit(self, x: torch.Tensor) -> "ChannelNormalizer":
        """Statistics over batch and space of ``x`` shaped ``(N, C, ...)``."""
        if x.shape[1] != self.mean.numel():
            raise ValueError(f"expected {self.mean.numel()} channels, got shape {tuple(x.shape)}")
        if x.is_complex():
            raise ValueError(f"cannot fit the normalizer on complex data ({x.dtype}); use real and imaginary parts")
        if not torch.isfinite(x).all():
            raise ValueError(f"cannot fit the normalizer: {int((~torch.isfinite(x)).sum())} of {x.numel()} values "
                             f"are non-finite (they would turn every normalized sample into NaN)")
        dims = [0, *range(2, x.ndim)]
        self.mean.copy_(x.double().mean(dim=dims).to(self.mean.dtype))
        self.std.copy_(x.double().std(dim=dims).to(self.std.dtype))
        return self

    def _view(self, t, x):
        return t.view(1, -1, *([1] * (x.ndim - 2))).to(x)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self._view(self.mean, x)) / (self._view(self.std, x) + self.eps)

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        return x * (self._view(self.std, x) + self.eps) + self._view(self.mean, x)


class DataProcessor(nn.Module):
    """Input and output normalizers; ``preprocess`` before the model, ``postprocess`` after."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.inp = ChannelNormalizer(in_channels)
        self.out = ChannelNormalizer(out_channels)

    def fit(self, x: torch.Tensor, y: torch.Tensor) -> "DataProcessor":
        self.inp.fit(x)
        self.out.fit(y)
        return self

    def preprocess(self, x, y=None):
        return self.inp.encode(x), (None if y is None else self.out.encode(y))

    def postprocess(self, y_normalized):
        return self.out.decode(y_normalized)
