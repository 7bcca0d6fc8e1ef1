"""Datasets made by ``hybrid generate``, read lazily as torch tensors, with normalization kept apart."""

from .dataset import FieldDataset
from .normalize import ChannelNormalizer, DataProcessor

__all__ = ["FieldDataset", "ChannelNormalizer", "DataProcessor"]
