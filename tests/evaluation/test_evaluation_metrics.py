"""Every metric of mtrec.evaluation.metrics against scikit-learn or by hand."""

import math
import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

from mtrec.evaluation import metrics


@pytest.fixture(scope="module")
def binary_arrays():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 2, 200).astype("float64")
    y_pred = np.clip(0.3 * y_true + rng.random(200) * 0.7, 0, 1)
    return y_true, y_pred


def test_auc_matches_sklearn(binary_arrays):
    y_true, y_pred = binary_arrays
    assert metrics.auc(y_true, y_pred) == pytest.approx(skm.roc_auc_score(y_true, y_pred))


def test_auc_is_nan_for_a_single_class():
    assert math.isnan(metrics.auc([1, 1, 1], [0.2, 0.5, 0.9]))


def test_binary_logloss_matches_sklearn_and_clips(binary_arrays):
    y_true, y_pred = binary_arrays
    assert metrics.binary_logloss(y_true, y_pred) == pytest.approx(
        skm.log_loss(y_true, y_pred))
    # a certain, wrong prediction costs -log(1e-7), not infinity
    assert metrics.binary_logloss([1.0], [0.0]) == pytest.approx(-math.log(1e-7))


def test_calibration_by_hand():
    # mean prediction 0.25, positive rate 0.5
    assert metrics.calibration([1, 0, 0, 1], [0.3, 0.3, 0.2, 0.2]) == pytest.approx(0.5)
    assert math.isnan(metrics.calibration([0, 0], [0.1, 0.2]))


def test_ece_by_hand_with_two_bins():
    # bin [0, 0.5): preds 0.1, 0.3 (mean 0.2), labels 0, 1 (rate 0.5) -> gap 0.3
    # bin [0.5, 1]: preds 0.5, 0.9, 1.0 (mean 0.8), labels 1, 1, 0 -> gap 2/15
    # ECE = 2/5 * 0.3 + 3/5 * 2/15 = 0.12 + 0.08 = 0.2
    y_true = np.array([0, 1, 1, 1, 0])
    y_pred = np.array([0.1, 0.3, 0.5, 0.9, 1.0])
    assert metrics.expected_calibration_error(y_true, y_pred, num_bins=2) == \
        pytest.approx(0.2)


def test_ece_is_zero_when_calibrated_and_rejects_bad_bins():
    assert metrics.expected_calibration_error([0, 1, 0, 1], [0.5] * 4) == 0.0
    with pytest.raises(ValueError, match="num_bins"):
        metrics.expected_calibration_error([0, 1], [0.1, 0.9], num_bins=0)


def test_group_auc_by_hand_skips_single_class_groups():
    # group a (3 rows): the positive (0.9) beats both negatives      -> AUC 1
    # group b (4 rows): positives 0.4, 0.8 vs negatives 0.6, 0.1:
    #                   0.4>0.1, 0.8>0.6, 0.8>0.1; 0.4<0.6            -> AUC 3/4
    # group c (2 rows): positives only                                -> skipped
    # GAUC = (3 * 1 + 4 * 0.75) / (3 + 4) = 6/7
    groups = ["a", "b", "c", "a", "b", "b", "c", "a", "b"]
    y_true = [1, 1, 1, 0, 0, 1, 1, 0, 0]
    y_pred = [0.9, 0.4, 0.3, 0.2, 0.6, 0.8, 0.7, 0.5, 0.1]
    gauc, num_groups = metrics.group_auc(y_true, y_pred, groups)
    assert gauc == pytest.approx(6 / 7)
    assert num_groups == 2


def test_group_auc_matches_sklearn_per_group_with_ties():
    rng = np.random.default_rng(1)
    groups = rng.integers(0, 12, 400)
    y_true = rng.integers(0, 2, 400)
    y_pred = np.round(rng.random(400), 1)  # many ties
    expected, weights = [], []
    for g in np.unique(groups):
        rows = groups == g
        if len(np.unique(y_true[rows])) == 2:
            expected.append(skm.roc_auc_score(y_true[rows], y_pred[rows]))
            weights.append(rows.sum())
    gauc, num_groups = metrics.group_auc(y_true, y_pred, groups)
    assert num_groups == len(expected)
    assert gauc == pytest.approx(np.average(expected, weights=weights))


def test_group_auc_without_usable_groups_and_missing_ids():
    gauc, num_groups = metrics.group_auc([1, 0, 1], [0.9, 0.1, 0.5], ["a", "b", "c"])
    assert math.isnan(gauc) and num_groups == 0
    # rows without a group id are left out: group a alone remains
    gauc, num_groups = metrics.group_auc(
        [1, 0, 0, 1], [0.9, 0.1, 0.95, 0.0], ["a", "a", None, None])
    assert (gauc, num_groups) == (1.0, 1)
    with pytest.raises(ValueError, match="groups has 2 entries"):
        metrics.group_auc([1, 0, 1], [0.9, 0.1, 0.5], ["a", "b"])


def test_binary_metrics_keys():
    row = metrics.binary_metrics([1, 0, 1, 0], [0.8, 0.3, 0.6, 0.4], groups=[1, 1, 2, 2])
    assert set(row) == {"count", "auc", "gauc", "gauc_groups", "logloss", "calibration",
                        "ece", "positive_rate", "mean_prediction"}
    assert row["count"] == 4 and row["positive_rate"] == 0.5
    assert row["mean_prediction"] == pytest.approx(0.525)
    assert "gauc" not in metrics.binary_metrics([1, 0], [0.8, 0.3])


def test_regression_metrics_by_hand_and_sklearn():
    row = metrics.regression_metrics([1.0, 2.0, 3.0], [1.0, 2.0, 5.0])
    assert row == {"count": 3, "rmse": pytest.approx(math.sqrt(4 / 3)),
                   "mae": pytest.approx(2 / 3)}
    rng = np.random.default_rng(2)
    y, p = rng.normal(size=50), rng.normal(size=50)
    assert metrics.rmse(y, p) == pytest.approx(math.sqrt(skm.mean_squared_error(y, p)))
    assert metrics.mae(y, p) == pytest.approx(skm.mean_absolute_error(y, p))


@pytest.fixture(scope="module")
def multiclass_arrays():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(120, 4))
    y_prob = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y_true = rng.integers(0, 4, 120).astype("float64")
    return y_true, y_prob


def test_multiclass_metrics_match_sklearn(multiclass_arrays):
    y_true, y_prob = multiclass_arrays
    row = metrics.multiclass_metrics(y_true, y_prob, top_k=(1, 2, 4))
    assert row["count"] == 120
    assert row["accuracy"] == pytest.approx(
        skm.accuracy_score(y_true, y_prob.argmax(axis=1)))
    assert row["top_1_accuracy"] == pytest.approx(row["accuracy"])
    assert row["logloss"] == pytest.approx(skm.log_loss(y_true, y_prob, labels=range(4)))
    assert row["top_2_accuracy"] == pytest.approx(
        skm.top_k_accuracy_score(y_true, y_prob, k=2, labels=range(4)))
    assert row["top_4_accuracy"] == 1.0


def test_top_k_accuracy_by_hand():
    y_prob = np.array([[0.5, 0.3, 0.2], [0.1, 0.3, 0.6], [0.2, 0.7, 0.1]])
    # ranks of the labels: 3rd, 2nd, 1st
    y_true = [2, 1, 1]
    assert metrics.top_k_accuracy(y_true, y_prob, 1) == pytest.approx(1 / 3)
    assert metrics.top_k_accuracy(y_true, y_prob, 2) == pytest.approx(2 / 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # k >= classes: 1.0, without sklearn's warning
        assert metrics.top_k_accuracy(y_true, y_prob, 3) == 1.0
    # two classes: top-1 is accuracy
    two = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    assert metrics.top_k_accuracy([0, 0, 1], two, 1) == pytest.approx(1 / 3)


def test_multiclass_rejects_bad_labels_and_k():
    y_prob = np.full((2, 3), 1 / 3)
    with pytest.raises(ValueError, match=r"integers in \[0, 3\)"):
        metrics.accuracy([0, 3], y_prob)
    with pytest.raises(ValueError, match="k must be"):
        metrics.top_k_accuracy([0, 1], y_prob, 0)


def test_undefined_metrics_are_nan_not_zero_nor_an_error():
    # one class: AUC is undefined; the rest is computed
    row = metrics.binary_metrics([1, 1, 1], [0.2, 0.5, 0.9])
    assert math.isnan(row["auc"]) and row["logloss"] > 0
    # no example at all (a task without labels in the split)
    empty = np.zeros(0)
    for name, value in metrics.binary_metrics(empty, empty).items():
        assert name == "count" and value == 0 or math.isnan(value), name
    assert all(math.isnan(v) for k, v in metrics.regression_metrics(empty, empty).items()
               if k != "count")
    row = metrics.multiclass_metrics(empty, np.zeros((0, 3)))
    assert all(math.isnan(v) for k, v in row.items() if k != "count")
