"""Learned operators: ``(batch, channels, ny, nx) -> (batch, channels, ny, nx)``, each with a typed config;
``DeepONet`` and ``NIO`` take ``out_shape`` for an output grid other than the input's (``NIO`` reads
measurements ``(batch, channels, measurements, boundary points)``).

``MODELS[name] = (Module class, Config class)``; :func:`build` makes one from a config dict (as stored in
checkpoints).
"""

from dataclasses import asdict

import torch

from .mgconv import MgConv, MgConvConfig, padding_for, boundary_kind
from .multilevel_mgconv import MultilevelMgConv
from .symmetric_mgconv import SymmetricMgConv
from .mgno import MgNO, MgNOConfig
from .unet import UNet, UNetConfig
from .deeponet import DeepONet, DeepONetConfig
from .fno import FNO, FNOConfig, neuraloperator_available
from .nio import NIO, NIOConfig
from .algebraic_mgno import AlgebraicMgNO, AlgebraicMgNOConfig

MODELS = {"mgno": (MgNO, MgNOConfig), "unet": (UNet, UNetConfig), "fno": (FNO, FNOConfig),
          "deeponet": (DeepONet, DeepONetConfig), "nio": (NIO, NIOConfig),
          "algebraic-mgno": (AlgebraicMgNO, AlgebraicMgNOConfig)}


def build(name: str, config: dict | None = None):
    """Model ``name`` from a config dict; unknown names or keys raise ``ValueError``."""
    try:
        cls, cfg_cls = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}") from None
    try:
        cfg = cfg_cls(**(config or {}))
    except TypeError as e:
        raise ValueError(f"bad config for {name}: {e}") from None
    return cls(cfg)


def config_dict(model) -> dict:
    return asdict(model.config)


def real_parameter_count(model) -> int:
    """Trainable parameters counted in real numbers: a complex weight (FNO's spectral weights) counts twice.

    >>> real_parameter_count(torch.nn.Linear(3, 2)), real_parameter_count(torch.nn.ParameterList(
    ...     [torch.nn.Parameter(torch.zeros(4, dtype=torch.complex64))]))
    (8, 8)
    """
    return sum(p.numel() * (2 if p.is_complex() else 1) for p in model.parameters() if p.requires_grad)


__all__ = ["MgConv", "MgConvConfig", "MultilevelMgConv", "real_parameter_count", "SymmetricMgConv", "MgNO", "MgNOConfig", "UNet", "UNetConfig", "DeepONet", "DeepONetConfig",
           "FNO", "FNOConfig", "NIO", "NIOConfig", "AlgebraicMgNO", "AlgebraicMgNOConfig", "MODELS", "build", "config_dict", "padding_for", "boundary_kind", "neuraloperator_available"]
