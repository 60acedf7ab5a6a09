"""Streaming Keras metrics that skip examples whose label is missing (NaN).

A metric with nothing to measure is NaN, never a number: AUC when the
labelled examples seen hold a single class (or none), RMSE and accuracy
when no example had a label. Keras' own metrics report 0.0 there (their
divisions are `divide_no_nan`), which reads as a real, terrible score in
logs and History and, for RMSE, as the best possible epoch to early
stopping; `mtrec.training.early_stopping` skips NaN epochs.
"""

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


def _nan_unless(defined, value):
    return ops.where(defined, value, ops.cast(float("nan"), value.dtype))


@keras.saving.register_keras_serializable(package="mtrec")
class MaskedAUC(keras.metrics.AUC):
    """ROC AUC (streaming, bucketed) over labelled examples only; NaN until
    both a positive and a negative labelled example have been seen."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred, weight = _masked(y_true, y_pred, sample_weight, True)
        return super().update_state(y_true, y_pred, sample_weight=weight)

    def result(self):
        # At the lowest threshold every example counts: the (weighted)
        # positives are tp + fn, the negatives fp + tn.
        positives = self.true_positives[0] + self.false_negatives[0]
        negatives = self.false_positives[0] + self.true_negatives[0]
        return _nan_unless(ops.logical_and(positives > 0, negatives > 0), super().result())


@keras.saving.register_keras_serializable(package="mtrec")
class MaskedRMSE(keras.metrics.RootMeanSquaredError):
    """Root mean squared error over labelled examples only; NaN before any."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred, weight = _masked(y_true, y_pred, sample_weight, True)
        return super().update_state(y_true, y_pred, sample_weight=weight)

    def result(self):
        return _nan_unless(self.count > 0, super().result())


@keras.saving.register_keras_serializable(package="mtrec")
class MaskedAccuracy(keras.metrics.SparseCategoricalAccuracy):
    """Multiclass accuracy over labelled examples only; NaN before any."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred, weight = _masked(y_true, y_pred, sample_weight, False)
        return super().update_state(y_true, y_pred, sample_weight=weight)

    def result(self):
        return _nan_unless(self.count > 0, super().result())


def default_metrics(kind):
    """The streaming metrics `compile()` attaches to a task of `kind` (the
    `metrics` entry of the task-kind table, `mtrec.schema.task_kinds`)."""
    return task_kind(kind).metrics()
