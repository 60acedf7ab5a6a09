"""Training: per-task losses and metrics that honour label masks, loss
weighting strategies, callbacks."""

from mtrec.training.callbacks import LossWeightingLogger, MeanValidationScore, early_stopping
from mtrec.training.loss_weighting import (
    STRATEGIES, DynamicWeightAverage, FixedWeighting, GradNorm, LossWeighting, PCGrad,
    UncertaintyWeighting, combine_pcgrad)
from mtrec.training.losses import TaskLoss, per_example_loss
from mtrec.training.memory_release import ReleaseFreedMemory, release_freed_memory
from mtrec.training.metrics import MaskedAccuracy, MaskedAUC, MaskedRMSE, default_metrics
from mtrec.training.seed import set_seed

__all__ = ["LossWeightingLogger", "MeanValidationScore", "early_stopping", "STRATEGIES",
           "DynamicWeightAverage", "FixedWeighting", "GradNorm", "LossWeighting", "PCGrad",
           "UncertaintyWeighting", "combine_pcgrad", "TaskLoss", "per_example_loss",
           "MaskedAccuracy", "MaskedAUC", "MaskedRMSE", "default_metrics", "set_seed",
           "ReleaseFreedMemory", "release_freed_memory"]
