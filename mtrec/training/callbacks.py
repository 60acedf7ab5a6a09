"""Keras callbacks for multi-task training."""

import keras
import numpy as np

from mtrec.schema.task_kinds import task_kind


class LossWeightingLogger(keras.callbacks.Callback):
    """Runs the loss weighting's epoch hook and logs its task weights.

    `model.fit` adds it automatically; the logs (and History) get
    `weight_<task>` per epoch.
    """

    def on_epoch_end(self, epoch, logs=None):
        weighting = self.model.loss_weighting
        weighting.on_epoch_end()
        if logs is not None:
            weights = np.asarray(weighting.task_weights())
            for name, value in zip(weighting.task_names, weights):
                logs[f"weight_{name}"] = float(value)


class MeanValidationScore(keras.callbacks.Callback):
    """Adds `val_mean_score`: the mean over tasks of each task's validation
    score (its kind's `monitor` metric, negated when smaller is better: AUC
    for binary, accuracy for multiclass, -RMSE for regression),
    so early stopping can select on all tasks at once. Place it before the
    EarlyStopping / ModelCheckpoint callbacks that monitor it.
    """

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        scores = []
        for task in self.model.schema.tasks:
            kind = task_kind(task.kind)
            value = logs.get(f"val_{task.name}_{kind.monitor}")
            scores.append(None if value is None else kind.score(value))
        if all(s is not None for s in scores):
            logs["val_mean_score"] = float(np.mean(scores))


def early_stopping(monitor="mean", patience=3, tasks=None):
    """Callbacks for early stopping on the validation split, restoring the
    best weights.

    Args:
        monitor: `"mean"` (mean validation score over tasks), a task name
            (that task's validation score), or any Keras log key such as
            `"val_loss"`.
        patience: int. Epochs without improvement before stopping.
        tasks: list of TaskSpec (to resolve a task name's metric).

    Returns:
        list of callbacks to pass to `fit`.
    """
    callbacks = []
    if monitor == "mean":
        callbacks.append(MeanValidationScore())
        key, mode = "val_mean_score", "max"
    elif tasks and monitor in {t.name for t in tasks}:
        task = next(t for t in tasks if t.name == monitor)
        kind = task_kind(task.kind)
        key, mode = f"val_{task.name}_{kind.monitor}", kind.monitor_mode
    else:
        key = monitor
        mode = "min" if "loss" in monitor or "rmse" in monitor else "max"
    callbacks.append(keras.callbacks.EarlyStopping(
        monitor=key, mode=mode, patience=patience, restore_best_weights=True))
    return callbacks
