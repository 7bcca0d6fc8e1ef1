"""Training and evaluation of learned operators on toolkit-generated datasets."""

from .losses import relative_l2, relative_h1, h1_seminorm, l2_norm
from .checkpoint import save, load, CheckpointError
from .trainer import Trainer, TrainConfig, evaluate_model, split_indices

__all__ = ["relative_l2", "relative_h1", "h1_seminorm", "l2_norm", "save", "load", "CheckpointError", "Trainer",
           "TrainConfig", "evaluate_model", "split_indices"]
