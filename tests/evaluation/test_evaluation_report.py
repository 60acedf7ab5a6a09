"""mtrec.evaluate: per-task rows, NaN masks, groups for GAUC, input paths."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

import mtrec
from mtrec.evaluation import metrics


class FixedModel:
    """Stands in for a model: fixed predictions, looked up by a `row` feature."""

    def __init__(self, tasks, predictions):
        self.schema = SimpleNamespace(
            tasks=[mtrec.TaskSpec(name, kind) for name, kind in tasks.items()])
        self.task_names = list(tasks)
        self.predictions = predictions

    def predict_on_batch(self, features):
        rows = np.asarray(features["row"])
        return {task: values[rows] for task, values in self.predictions.items()}


def batches(labels, batch_size=4):
    rows = len(next(iter(labels.values())))
    return [({"row": np.arange(start, min(start + batch_size, rows))},
             {task: values[start:start + batch_size] for task, values in labels.items()})
            for start in range(0, rows, batch_size)]


@pytest.fixture(scope="module")
def fixed():
    """10 rows of three tasks, each with its own missing labels."""
    rng = np.random.default_rng(0)
    nan = np.nan
    labels = {
        "click": np.array([1, nan, 0, 1, nan, 0, 1, 0, 1, 0]),
        "spend": np.array([1.0, 2.0, nan, 4.0, nan, 6.0, 7.0, nan, 9.0, 10.0]),
        "grade": np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, nan]),
    }
    logits = rng.normal(size=(10, 3))
    predictions = {
        "click": np.array([0.9, 0.2, 0.3, 0.6, 0.5, 0.4, 0.7, 0.1, 0.45, 0.8]),
        "spend": rng.normal(5, 3, size=10),
        "grade": np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True),
    }
    model = FixedModel({"click": "binary", "spend": "regression",
                        "grade": "multiclass"}, predictions)
    groups = np.array(["u1", "u2", "u1", "u2", "u3", "u2", "u3", "u3", "u1", "u1"])
    return model, labels, predictions, groups


def test_nan_labels_are_excluded_per_task_only(fixed):
    model, labels, predictions, _ = fixed
    report = mtrec.evaluate(model, batches(labels))
    assert list(report.index) == ["click", "spend", "grade"]
    assert report.index.name == "task"
    assert list(report["count"]) == [8, 7, 9]
    keep = {task: ~np.isnan(values) for task, values in labels.items()}
    y, p = labels["click"][keep["click"]], predictions["click"][keep["click"]]
    click = report.loc["click"]
    assert click["auc"] == pytest.approx(skm.roc_auc_score(y, p))
    assert click["logloss"] == pytest.approx(skm.log_loss(y, p))
    assert click["positive_rate"] == pytest.approx(y.mean())
    assert click["mean_prediction"] == pytest.approx(p.mean())
    assert click["calibration"] == pytest.approx(p.mean() / y.mean())
    assert click["ece"] == pytest.approx(metrics.expected_calibration_error(y, p))
    y, p = labels["spend"][keep["spend"]], predictions["spend"][keep["spend"]]
    assert report.loc["spend", "rmse"] == pytest.approx(
        np.sqrt(skm.mean_squared_error(y, p)))
    assert report.loc["spend", "mae"] == pytest.approx(skm.mean_absolute_error(y, p))
    y, p = labels["grade"][keep["grade"]], predictions["grade"][keep["grade"]]
    grade = report.loc["grade"]
    assert grade["accuracy"] == pytest.approx(skm.accuracy_score(y, p.argmax(axis=1)))
    assert grade["logloss"] == pytest.approx(skm.log_loss(y, p, labels=range(3)))
    assert grade["top_1_accuracy"] == pytest.approx(grade["accuracy"])
    assert grade["top_3_accuracy"] == 1.0
    # metrics of another kind are NaN, not made up
    assert np.isnan(report.loc["spend", "auc"]) and np.isnan(report.loc["click", "rmse"])


def test_groups_give_gauc_on_the_task_mask(fixed):
    model, labels, predictions, groups = fixed
    report = mtrec.evaluate(model, batches(labels), groups=groups, top_k=(2,))
    keep = ~np.isnan(labels["click"])
    expected, num_groups = metrics.group_auc(
        labels["click"][keep], predictions["click"][keep], groups[keep])
    assert report.loc["click", "gauc"] == pytest.approx(expected)
    assert report.loc["click", "gauc_groups"] == num_groups == 3
    assert "top_2_accuracy" in report.columns and "top_3_accuracy" not in report.columns
    assert pd.isna(report.loc["spend", "gauc"])


def test_groups_length_mismatch_raises(fixed):
    model, labels, _, groups = fixed
    with pytest.raises(ValueError, match="groups has 9 entries but the data has 10 rows"):
        mtrec.evaluate(model, batches(labels), groups=groups[:9])


def test_argument_errors(fixed):
    model, labels, _, groups = fixed
    with pytest.raises(ValueError, match="either groups"):
        mtrec.evaluate(model, batches(labels), groups=groups, group_column="user")
    with pytest.raises(ValueError, match="top_k"):
        mtrec.evaluate(model, batches(labels), top_k=(0,))
    with pytest.raises(ValueError, match="without labels"):
        mtrec.evaluate(model, [{"row": np.arange(3)}])
    with pytest.raises(ValueError, match="empty"):
        mtrec.evaluate(model, [])


def test_end_to_end_on_a_trained_model(trained_mmoe, table, schema):
    data = mtrec.data.from_pandas(table, schema, batch_size=64)
    report = mtrec.evaluate(trained_mmoe, data)
    assert list(report.index) == ["click", "spend", "grade"]
    assert list(report["kind"]) == ["binary", "regression", "multiclass"]
    assert list(report["count"]) == [300, 300, 300]
    assert "gauc" not in report.columns
    predictions = trained_mmoe.predict(data, verbose=0)
    click = table["click"].to_numpy()
    assert report.loc["click", "auc"] == pytest.approx(
        skm.roc_auc_score(click, predictions["click"]), rel=1e-6)
    assert report.loc["click", "logloss"] == pytest.approx(
        skm.log_loss(click, predictions["click"]), rel=1e-5)
    assert report.loc["spend", "rmse"] == pytest.approx(
        np.sqrt(skm.mean_squared_error(table["spend"], predictions["spend"])), rel=1e-5)
    assert report.loc["grade", "top_1_accuracy"] == report.loc["grade", "accuracy"]
    assert report.loc["grade", "top_3_accuracy"] == 1.0  # three classes
    assert 0 <= report.loc["click", "ece"] <= 1


def test_dataframe_input_with_group_column(trained_mmoe, table, schema):
    from_df = mtrec.evaluate(trained_mmoe, table, group_column="user_id")
    data = mtrec.data.from_pandas(table, schema, batch_size=64)
    from_dataset = mtrec.evaluate(trained_mmoe, data, groups=table["user_id"])
    pd.testing.assert_frame_equal(from_df, from_dataset, rtol=1e-6)
    predictions = trained_mmoe.predict(data, verbose=0)["click"]
    gauc, num_groups = metrics.group_auc(table["click"], predictions, table["user_id"])
    assert from_df.loc["click", "gauc"] == pytest.approx(gauc, rel=1e-6)
    assert from_df.loc["click", "gauc_groups"] == num_groups > 0


def test_dataframe_with_missing_labels(trained_mmoe, table):
    df = table.copy()
    df["click"] = df["click"].astype("float64")
    df.loc[df.index[:20], "click"] = np.nan
    report = mtrec.evaluate(trained_mmoe, df, group_column="user_id")
    assert list(report["count"]) == [280, 300, 300]


def test_group_errors_on_real_data(trained_mmoe, table, schema):
    with pytest.raises(ValueError, match="groups has 299 entries but the DataFrame"):
        mtrec.evaluate(trained_mmoe, table, groups=table["user_id"][:299])
    with pytest.raises(ValueError, match="not a column"):
        mtrec.evaluate(trained_mmoe, table, group_column="no_such_column")
    encoded = mtrec.data.from_pandas(table, schema, batch_size=64)
    with pytest.raises(ValueError, match="not among the raw features"):
        mtrec.evaluate(trained_mmoe, encoded, group_column="user_id")
    shuffled = mtrec.data.from_pandas(table, schema, batch_size=64, shuffle=True, seed=0)
    with pytest.raises(ValueError, match="shuffled"):
        mtrec.evaluate(trained_mmoe, shuffled, groups=table["user_id"])


def test_group_column_read_from_raw_feature_batches(fixed):
    model, labels, _, groups = fixed
    raw = [({**features, "user": groups[features["row"]]}, batch_labels)
           for features, batch_labels in batches(labels)]
    report = mtrec.evaluate(model, raw, group_column="user")
    expected = mtrec.evaluate(model, batches(labels), groups=groups)
    pd.testing.assert_frame_equal(report, expected)


def test_shuffle_check_reads_the_pipeline_not_private_attributes():
    import tensorflow as tf
    from mtrec.evaluation.report import _is_shuffled

    plain = tf.data.Dataset.range(10).batch(2).map(lambda x: x + 1).prefetch(1)
    assert not _is_shuffled(plain)
    assert _is_shuffled(tf.data.Dataset.range(10).shuffle(10, seed=0).batch(2).map(lambda x: x))
    nested = tf.data.Dataset.range(3).interleave(
        lambda i: tf.data.Dataset.range(4).shuffle(4, seed=0), cycle_length=2)
    assert _is_shuffled(nested)
    assert not _is_shuffled([({"x": [1.0]}, {"y": [0.0]})])   # a list of batches is ordered
