"""Tests for mtrec.training.metrics: masked metrics, NaN where undefined."""

import math

import numpy as np
import pytest

from mtrec.training.metrics import MaskedAUC, MaskedAccuracy, MaskedRMSE


def result(metric, y_true, y_pred):
    metric.update_state(np.asarray(y_true, "float32"), np.asarray(y_pred, "float32"))
    return float(metric.result())


@pytest.mark.parametrize("labels", [[1.0, 1.0, np.nan], [0.0, 0.0], [np.nan, np.nan]])
def test_auc_is_nan_with_one_class_or_no_label(labels):
    # Keras' AUC says 0.0 here, which reads as the worst possible model
    assert math.isnan(result(MaskedAUC(num_thresholds=50), labels, [0.2] * len(labels)))


def test_auc_is_the_auc_of_the_labelled_examples():
    value = result(MaskedAUC(num_thresholds=1000), [0, 1, np.nan, 1], [0.1, 0.9, 0.0, 0.8])
    assert value == pytest.approx(1.0, abs=1e-3)
    metric = MaskedAUC(num_thresholds=50)
    result(metric, [1.0], [0.9])          # one class so far: undefined
    assert result(metric, [0.0], [0.1]) == pytest.approx(1.0, abs=1e-3)


def test_rmse_and_accuracy_are_nan_without_labels():
    assert math.isnan(result(MaskedRMSE(), [np.nan, np.nan], [1.0, 2.0]))
    assert result(MaskedRMSE(), [1.0, np.nan], [3.0, 2.0]) == pytest.approx(2.0)
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8]], "float32")
    assert math.isnan(result(MaskedAccuracy(), [np.nan, np.nan], probabilities))
    assert result(MaskedAccuracy(), [0.0, np.nan], probabilities) == 1.0
