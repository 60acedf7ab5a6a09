"""Training helpers: per-task losses and metrics that honour label masks."""

from mtrec.training.losses import TaskLoss, per_example_loss
from mtrec.training.metrics import MaskedAccuracy, MaskedAUC, MaskedRMSE, default_metrics

__all__ = ["TaskLoss", "per_example_loss", "MaskedAccuracy", "MaskedAUC",
           "MaskedRMSE", "default_metrics"]
