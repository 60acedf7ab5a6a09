"""Per-task losses that skip missing labels."""

import keras
from keras import ops

from mtrec.schema.task_kinds import task_kind
from mtrec.training.distribution import replica_share


@keras.saving.register_keras_serializable(package="mtrec")
class TaskLoss(keras.losses.Loss):
    """Mean loss of one task over the examples that have a label.

    A NaN label marks "no label for this task" (e.g. CVR on unclicked
    impressions): the example drops out of this task's loss, and of no
    other task's. Sample weights multiply the per-example loss; the mean
    divides by the sum of weights of labelled examples.

    Args:
        kind: str. A task kind of `mtrec.schema.task_kinds`, whose entry
            holds the per-example loss: `"binary"` (cross-entropy on
            probabilities), `"regression"` (squared error) or
            `"multiclass"` (sparse cross-entropy on probabilities).

    Call arguments:
        y_true: `(batch,)` labels, NaN where missing.
        y_pred: `(batch,)` predictions; `(batch, classes)` for multiclass.

    Returns:
        scalar: the masked mean (0 when no example has a label).
    """

    def __init__(self, kind="binary", name=None, **kwargs):
        kwargs.pop("reduction", None)
        super().__init__(name=name or f"{kind}_loss", reduction="sum", **kwargs)
        task_kind(kind)   # raises for an unknown kind, naming the known ones
        self.kind = kind

    def __call__(self, y_true, y_pred, sample_weight=None):
        # The value of the latest call (a tensor of the step being traced):
        # MultiTaskModel's loss weighting reads it back instead of computing
        # the task's loss a second time in the same step.
        # Under tf.distribute, this replica's share (gradients are summed
        # over replicas; Keras does the same for mean-reduced losses only).
        self.last_value = replica_share(
            super().__call__(y_true, y_pred, sample_weight=sample_weight))
        return self.last_value

    def call(self, y_true, y_pred):
        per_example, valid = per_example_loss(self.kind, y_true, y_pred)
        # reduction="sum" adds these up: the mean over labelled examples.
        return per_example / ops.maximum(ops.sum(valid), 1.0)

    def get_config(self):
        return {"kind": self.kind, "name": self.name}


def per_example_loss(kind, y_true, y_pred):
    """Per-example loss of task kind `kind` (its entry in the task-kind
    table), with zeros where the label is missing.

    Returns:
        `(loss, valid)`, both float32 `(batch,)`.
    """
    y_true = ops.reshape(ops.cast(y_true, "float32"), (-1,))
    valid = ops.logical_not(ops.isnan(y_true))
    labels = ops.where(valid, y_true, 0.0)
    y_pred = ops.cast(y_pred, "float32")
    loss = task_kind(kind).loss(labels, y_pred)
    valid = ops.cast(valid, "float32")
    return ops.where(valid > 0, loss, 0.0), valid
