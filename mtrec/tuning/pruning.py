"""The Keras callback that tells an Optuna trial how its epochs went."""

import math

import keras
import optuna

__all__ = ["ReportToTrial"]


class ReportToTrial(keras.callbacks.Callback):
    """Reports one validation log value to an Optuna trial at each epoch end
    (`trial.report(value, step=epoch)`, epochs counted from 1) and raises
    `optuna.TrialPruned` when the study's pruner says so.

    Place it after the callbacks that add the key (`MeanValidationScore`
    for `val_mean_score`); `mtrec.experiments.runner.train` runs the
    callbacks it is given after its own, checkpoints included. An epoch
    whose value is NaN (undefined, e.g. AUC over one class) is not reported.

    Args:
        trial: `optuna.Trial`.
        key: str, the validation log key (`val_mean_score`, `val_loss`).
        reported: optional `{epoch: value}` already reported (a retried
            trial resuming from the checkpoints of the one it retries).

    Attributes:
        values: `{epoch: value}` of every epoch reported.
    """

    def __init__(self, trial, key, reported=None):
        super().__init__()
        self.trial = trial
        self.key = key
        self.values = {}
        for epoch, value in sorted((reported or {}).items()):
            self._report(int(epoch), float(value))

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.key not in logs:
            raise ValueError(
                f"tune.metric reads '{self.key}', which the validation logs of epoch "
                f"{epoch + 1} do not have; they have "
                f"{sorted(k for k in logs if k.startswith('val_'))}. Name one of them "
                f"in tune.metric.")
        value = float(logs[self.key])
        if not math.isfinite(value):
            return
        self._report(epoch + 1, value)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {epoch + 1}: {self.key} "
                                     f"{value:.6g}")

    def _report(self, epoch, value):
        self.values[epoch] = value
        self.trial.report(value, step=epoch)
