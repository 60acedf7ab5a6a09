"""Keras callbacks for multi-task training: loss-weighting logs, the mean
validation score, early stopping, and the guard against a diverged loss."""

import warnings

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

    A task whose score is undefined (NaN: its validation labels hold one
    class, or none) is left out of the mean; since the validation data is
    the same every epoch, so is the set of tasks averaged. When no task has
    a score the mean is NaN, which `early_stopping` skips.
    """

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        scores = []
        for task in self.model.schema.tasks:
            kind = task_kind(task.kind)
            value = logs.get(f"val_{task.name}_{kind.monitor}")
            scores.append(None if value is None else kind.score(float(value)))
        if all(s is not None for s in scores):
            defined = [s for s in scores if np.isfinite(s)]
            logs["val_mean_score"] = float(np.mean(defined)) if defined else float("nan")


class NanSkippingEarlyStopping(keras.callbacks.EarlyStopping):
    """Keras' `EarlyStopping`, except that an epoch whose monitored value is
    NaN (an undefined metric, e.g. AUC over one class) is skipped: it is
    never the best epoch, never the fallback "best" weights, and does not
    count towards `patience`. A `RuntimeWarning` names the key the first
    time. (Keras compares NaN as "no improvement" but still takes the first
    epoch's weights as the best when it is NaN.)
    """

    def on_epoch_end(self, epoch, logs=None):
        current = self.get_monitor_value(logs)
        if current is not None and not np.isfinite(float(current)):
            if not getattr(self, "_warned_nan", False):
                self._warned_nan = True
                warnings.warn(
                    f"Early stopping: '{self.monitor}' is {float(current)} at epoch "
                    f"{epoch + 1} (undefined: e.g. AUC over validation labels of one "
                    f"class); such epochs are never taken as the best.",
                    RuntimeWarning, stacklevel=2)
            return
        super().on_epoch_end(epoch, logs)


def early_stopping(monitor="mean", patience=3, tasks=None):
    """Callbacks for early stopping on the validation split, restoring the
    best weights. Epochs whose monitored value is NaN (undefined) are
    skipped (`NanSkippingEarlyStopping`).

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
    callbacks.append(NanSkippingEarlyStopping(
        monitor=key, mode=mode, patience=patience, restore_best_weights=True))
    return callbacks


class TrainingDiverged(ArithmeticError):
    """Training stopped on a non-finite loss or weights.

    Attributes:
        epoch: int, 1-based epoch of the step that diverged.
        step: int, 1-based step within that epoch (None at validation).
        tasks: list of str, the tasks whose loss was not finite.
    """

    def __init__(self, message, epoch=None, step=None, tasks=()):
        super().__init__(message)
        self.epoch = epoch
        self.step = step
        self.tasks = list(tasks)


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops training at the first step whose loss is NaN or infinite, naming
    the epoch, the step and the tasks whose loss is not finite (Keras'
    `TerminateOnNaN` only sets `stop_training`, so the run would go on to
    evaluate and save a broken model; this raises `TrainingDiverged`).

    Checks every training step (the running loss of the epoch is non-finite
    from the first bad step on) and the validation loss at each epoch end.
    Place it before `TrainingCheckpoint`, so a diverged step is never saved.

    Args:
        task_names: list of str, the model's trained tasks (their log keys
            are `<task>_loss`).
        checkpoints: str or path where the last good checkpoint is, for the
            message; None when the run keeps none.
    """

    # Under steps_per_execution = N it checks every N-th step: the running
    # loss stays non-finite from the bad step on (`mtrec.training.steps_per_execution`).
    counts_steps_itself = True

    def __init__(self, task_names, checkpoints=None, step_offset=0):
        super().__init__()
        self.task_names = list(task_names)
        self.checkpoints = checkpoints
        self.step_offset = step_offset
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self._check(logs, "", step=self.step_offset + batch + 1)

    def on_epoch_end(self, epoch, logs=None):
        self.step_offset = 0
        self._check(logs, "val_", step=None)

    def _check(self, logs, prefix, step):
        if not logs or np.isfinite(float(logs.get(f"{prefix}loss", 0.0))):
            return
        tasks = [t for t in self.task_names
                 if not np.isfinite(float(logs.get(f"{prefix}{t}_loss", 0.0)))]
        where = (f"epoch {self._epoch + 1}, step {step}" if step is not None
                 else f"epoch {self._epoch + 1}, validation")
        which = (f"task(s) {', '.join(repr(t) for t in tasks)}" if tasks
                 else "the total loss (no single task's)")
        kept = (f"the last good checkpoint in {self.checkpoints} is kept"
                if self.checkpoints else "nothing was saved")
        raise TrainingDiverged(
            f"Training diverged: the {'validation ' if prefix else ''}loss is "
            f"{float(logs[f'{prefix}loss'])} at {where}, in {which}; training "
            f"stopped and {kept}. Lower training.learning_rate (or check the "
            f"labels of those tasks for NaN/inf), then rerun with --restart.",
            epoch=self._epoch + 1, step=step, tasks=tasks)
