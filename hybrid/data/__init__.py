"""Datasets made by ``hybrid generate``, read lazily as torch tensors, with normalization kept apart."""

from .dataset import DEFAULT_FIELDS, TRAINING_FIELDS, FieldDataset, default_fields
from .noise import additive_noise, multiplicative_noise, training_noise
from .normalize import ChannelNormalizer, DataProcessor

__all__ = ["FieldDataset", "default_fields", "TRAINING_FIELDS", "DEFAULT_FIELDS", "additive_noise", "multiplicative_noise", "training_noise", "ChannelNormalizer", "DataProcessor"]
