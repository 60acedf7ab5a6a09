"""Streaming Keras metrics that skip examples whose label is missing (NaN)."""

import keras
from keras import ops

from mtrec.schema.task_kinds import task_kind


def _masked(y_true, y_pred, sample_weight, flatten_pred):
    y_true = ops.reshape(ops.cast(y_true, "float32"), (-1,))
    valid = ops.logical_not(ops.isnan(y_true))
    weight = ops.cast(valid, "float32")
    if sample_weight is not None:
        weight = weight * ops.reshape(ops.cast(sample_weight, "float32"), (-1,))
    if flatten_pred:
        y_pred = ops.reshape(y_pred, (-1,))
    return ops.where(valid, y_true, 0.0), y_pred, weight


@keras.saving.register_keras_serializable(package="mtrec")
class MaskedAUC(keras.metrics.AUC):
    """ROC AUC (streaming, bucketed) over labelled examples only."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred, weight = _masked(y_true, y_pred, sample_weight, True)
        return super().update_state(y_true, y_pred, sample_weight=weight)


@keras.saving.register_keras_serializable(package="mtrec")
class MaskedRMSE(keras.metrics.RootMeanSquaredError):
    """Root mean squared error over labelled examples only."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred, weight = _masked(y_true, y_pred, sample_weight, True)
        return super().update_state(y_true, y_pred, sample_weight=weight)


@keras.saving.register_keras_serializable(package="mtrec")
class MaskedAccuracy(keras.metrics.SparseCategoricalAccuracy):
    """Multiclass accuracy over labelled examples only."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred, weight = _masked(y_true, y_pred, sample_weight, False)
        return super().update_state(y_true, y_pred, sample_weight=weight)


def default_metrics(kind):
    """The streaming metrics `compile()` attaches to a task of `kind` (the
    `metrics` entry of the task-kind table, `mtrec.schema.task_kinds`)."""
    return task_kind(kind).metrics()
