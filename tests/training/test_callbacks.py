"""Tests for mtrec.training.callbacks: early stopping never picks a NaN epoch."""

import math
import types

import keras
import numpy as np
import pytest

from mtrec import TaskSpec
from mtrec.training.callbacks import MeanValidationScore, NanSkippingEarlyStopping, \
    early_stopping


class Weights:
    """A model stand-in whose weights are the epoch it was asked at."""

    def __init__(self):
        self.epoch, self.stop_training, self.restored = 0, False, None

    def get_weights(self):
        return [np.array(self.epoch)]

    def set_weights(self, weights):
        self.restored = int(weights[0])


def run(values, patience=5):
    stopper = NanSkippingEarlyStopping(monitor="val_auc", mode="max", patience=patience,
                                       restore_best_weights=True)
    stopper.set_model(Weights())
    stopper.on_train_begin()
    with pytest.warns(RuntimeWarning, match="'val_auc' is nan") if any(
            math.isnan(v) for v in values) else _nothing():
        for epoch, value in enumerate(values):
            stopper.model.epoch = epoch
            stopper.on_epoch_end(epoch, {"val_auc": value})
    stopper.on_train_end()
    return stopper


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_nan_epochs_are_never_the_best():
    stopper = run([float("nan"), 0.6, float("nan"), 0.7, 0.65])
    assert stopper.best == 0.7 and stopper.best_epoch == 3 and stopper.model.restored == 3


def test_all_nan_restores_nothing_and_does_not_stop():
    stopper = run([float("nan")] * 4, patience=1)
    assert stopper.best_weights is None and stopper.model.restored is None
    assert not stopper.model.stop_training


def test_early_stopping_uses_it():
    (stopper,) = early_stopping("click", tasks=[TaskSpec("click")])
    assert isinstance(stopper, NanSkippingEarlyStopping)
    assert isinstance(stopper, keras.callbacks.EarlyStopping)
    assert stopper.monitor == "val_click_auc"


def test_mean_score_averages_the_tasks_that_have_one():
    callback = MeanValidationScore()
    callback.set_model(types.SimpleNamespace(schema=types.SimpleNamespace(tasks=[
        TaskSpec("click"), TaskSpec("buy"), TaskSpec("spend", "regression")])))
    logs = {"val_click_auc": 0.8, "val_buy_auc": float("nan"), "val_spend_rmse": 0.4}
    callback.on_epoch_end(0, logs)
    assert logs["val_mean_score"] == pytest.approx((0.8 - 0.4) / 2)
    logs = {"val_click_auc": float("nan"), "val_buy_auc": float("nan"),
            "val_spend_rmse": float("nan")}
    callback.on_epoch_end(0, logs)
    assert math.isnan(logs["val_mean_score"])
