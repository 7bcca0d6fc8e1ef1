"""Normalization as a small processor saved with the checkpoint (not inside the model or the trainer).

Per-channel mean and standard deviation (not per-pixel): the statistics do not depend on the grid,
so a model trained at one resolution is evaluated at another with the same processor.

EIT measurements (channels ``patterns, dtn``) get :class:`DtNNormalizer` instead: the response minus the
background Dirichlet-to-Neumann map's response to the same pattern (difference data, as in difference
imaging), so that what varies between conductivities is not buried under what every sample shares.
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


class DtNNormalizer(nn.Module):
    """EIT measurements ``(N, 2, K, nb)``: channel 0 a boundary pattern ``g``, channel 1 its response ``d``
    (Dirichlet-to-Neumann data at ``nb`` boundary nodes). Encodes ``(g / s_g, (d - L0 g) / s_d)``.

    ``L0`` (``nb x nb``) is the minimum-norm least-squares linear map from the training patterns to the
    training responses (for one fixed set of patterns, ``L0 g_k`` is the mean response to ``g_k``: the
    background DtN map on the span of the patterns); ``s_g`` and ``s_d`` are scalar standard deviations. A
    linear map of the pattern, applied to every measurement alike, keeps the encoding independent of the
    order and number of measurements (what NIO's averaging relies on), unlike per-pattern statistics.
    Why: the mean response is most of every sample's data (for contrast-10 inclusions it carries the
    background level), and a per-channel normalizer leaves the sample-specific part a few percent of the
    input; a model then first learns the mean conductivity and little else.

    >>> g = torch.randn(1, 1, 3, 8).expand(5, 1, 3, 8)
    >>> x = torch.cat([g, 2 * g + 0.1 * torch.randn(5, 1, 3, 8)], dim=1)
    >>> enc = DtNNormalizer(8).fit(x).encode(x)
    >>> bool(enc[:, 1].abs().mean() < 2), round(float(enc[:, 1].std()), 3)
    (True, 1.0)
    """

    def __init__(self, boundary_points: int, eps: float = 1e-12):
        super().__init__()
        self.eps = eps
        self.register_buffer("background", torch.zeros(boundary_points, boundary_points))
        self.register_buffer("pattern_scale", torch.ones(()))
        self.register_buffer("response_scale", torch.ones(()))

    def _check(self, x: torch.Tensor) -> None:
        nb = self.background.shape[0]
        if x.ndim != 4 or x.shape[1] != 2 or x.shape[-1] != nb:
            raise ValueError(f"EIT measurements must be shaped (batch, 2 channels: pattern and response, patterns, "
                             f"{nb} boundary points), got {tuple(x.shape)}")

    def fit(self, x: torch.Tensor) -> "DtNNormalizer":
        self._check(x)
        if not torch.isfinite(x).all():
            raise ValueError(f"cannot fit the normalizer: {int((~torch.isfinite(x)).sum())} of {x.numel()} values "
                             f"are non-finite")
        g = x[:, 0].double().reshape(-1, x.shape[-1])
        d = x[:, 1].double().reshape(-1, x.shape[-1])
        L0t = torch.linalg.pinv(g) @ d  # (nb, nb): g @ L0t ~ d, minimum norm
        self.background.copy_(L0t.T.to(self.background.dtype))
        self.pattern_scale.fill_(float(g.std()) or 1.0)
        self.response_scale.fill_(float((d - g @ L0t).std()) or 1.0)
        return self

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        g, d = x[:, 0], x[:, 1]
        r = d - g @ self.background.T.to(x)
        return torch.stack([g / (self.pattern_scale.to(x) + self.eps), r / (self.response_scale.to(x) + self.eps)], 1)

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        g = x[:, 0] * (self.pattern_scale.to(x) + self.eps)
        d = x[:, 1] * (self.response_scale.to(x) + self.eps) + g @ self.background.T.to(x)
        return torch.stack([g, d], 1)


#: input normalizers by name (``DataProcessor(inputs=...)``)
INPUT_NORMALIZERS = ("channel", "dtn")


class DataProcessor(nn.Module):
    """Input and output normalizers; ``preprocess`` before the model, ``postprocess`` after.

    ``inputs="channel"`` (default): :class:`ChannelNormalizer`; ``inputs="dtn"``: :class:`DtNNormalizer` for EIT
    measurements with ``boundary_points`` boundary nodes."""

    def __init__(self, in_channels: int, out_channels: int, inputs: str = "channel", boundary_points: int = 0):
        super().__init__()
        if inputs not in INPUT_NORMALIZERS:
            raise ValueError(f"unknown input normalizer {inputs!r}; use one of: {', '.join(INPUT_NORMALIZERS)}")
        if inputs == "dtn" and (in_channels != 2 or boundary_points < 2):
            raise ValueError(f"the dtn normalizer takes 2 input channels (pattern, response) and >= 2 boundary "
                             f"points, got {in_channels} channels and {boundary_points} points")
        self.inputs, self.in_channels = inputs, in_channels
        self.inp = ChannelNormalizer(in_channels) if inputs == "channel" else DtNNormalizer(boundary_points)
        self.out = ChannelNormalizer(out_channels)

    def spec(self) -> dict:
        """What rebuilds an empty processor of this kind (stored in checkpoints beside the state dict)."""
        return {"in_channels": self.in_channels, "out_channels": int(self.out.mean.numel()), "inputs": self.inputs,
                "boundary_points": int(self.inp.background.shape[0]) if self.inputs == "dtn" else 0}

    def fit(self, x: torch.Tensor, y: torch.Tensor) -> "DataProcessor":
        self.inp.fit(x)
        self.out.fit(y)
        return self

    def preprocess(self, x, y=None):
        return self.inp.encode(x), (None if y is None else self.out.encode(y))

    def postprocess(self, y_normalized):
        return self.out.decode(y_normalized)
