"""Training and evaluation of learned operators on toolkit-generated datasets."""

from .losses import relative_l2, relative_h1, h1_seminorm, l2_norm
from .checkpoint import save, load, CheckpointError
from .split import default_sizes, split_indices
from .trainer import Trainer, TrainConfig, TrainingError, evaluate_model, predict
from .precond import PrecondTrainConfig, train_preconditioner

__all__ = ["relative_l2", "relative_h1", "h1_seminorm", "l2_norm", "save", "load", "CheckpointError", "Trainer",
           "TrainConfig", "TrainingError", "evaluate_model", "predict", "split_indices", "default_sizes",
           "PrecondTrainConfig", "train_preconditioner"]
