"""Label masks, early stopping on validation, repeatable seeds."""

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import mtrec
from mtrec.training import TaskLoss


def test_task_loss_skips_nan_labels_by_hand():
    y = tf.constant([1.0, np.nan, 0.0])
    p = tf.constant([0.8, 0.3, 0.4])
    expected = -(np.log(0.8) + np.log(0.6)) / 2
    assert float(TaskLoss("binary")(y, p)) == pytest.approx(expected, rel=1e-6)
    reg = TaskLoss("regression")(tf.constant([2.0, np.nan]), tf.constant([1.0, 100.0]))
    assert float(reg) == pytest.approx(1.0)
    multi = TaskLoss("multiclass")(tf.constant([2.0, np.nan]),
                                   tf.constant([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]]))
    assert float(multi) == pytest.approx(-np.log(0.5), rel=1e-6)
    assert float(TaskLoss("binary")(tf.constant([np.nan]), tf.constant([0.3]))) == 0.0


def test_mask_column_removes_examples_from_that_task_only():
    df = pd.DataFrame({"x": np.arange(6, dtype="float32"),
                       "click": [1, 0, 1, 0, 1, 1], "buy": [1, 0, 0, 1, 1, 0]})
    schema = mtrec.Schema(
        [mtrec.Numeric("x")],
        [mtrec.TaskSpec("click"), mtrec.TaskSpec("cvr", label="buy", mask="click")]).adapt(df)
    labels = schema.raw_labels(df)
    np.testing.assert_array_equal(labels["click"], [1, 0, 1, 0, 1, 1])
    np.testing.assert_array_equal(np.isnan(labels["cvr"]), [False, True, False, True, False, False])
    assert "click" not in mtrec.Schema.infer(
        df, tasks=[mtrec.TaskSpec("cvr", label="buy", mask="click")], verbose=False).feature_names


def test_masked_losses_and_metrics_in_a_model_by_hand():
    df = pd.DataFrame({"x": np.linspace(-1, 1, 8).astype("float32"),
                       "a": [1, 0, 1, 0, 1, 0, 1, 0],
                       "b": [1, np.nan, 0, np.nan, 1, 0, np.nan, 1]})
    schema = mtrec.Schema([mtrec.Numeric("x")], {"a": "binary", "b": "binary"}).adapt(df)
    model = mtrec.models.SharedBottom(schema, bottom_units=[2], tower_units=[2])
    model.compile()
    x, y = next(iter(mtrec.data.from_pandas(df, schema, batch_size=8)))
    pred = model(x)
    pa, pb = np.asarray(pred["a"]), np.asarray(pred["b"])
    labels_b = df["b"].to_numpy()
    keep = ~np.isnan(labels_b)
    bce = lambda t, p: -(t * np.log(p) + (1 - t) * np.log(1 - p))
    expected = bce(df["a"].to_numpy(), pa).mean() + bce(labels_b[keep], pb[keep]).mean()
    assert float(model.compute_loss(x, y, pred)) == pytest.approx(expected, rel=1e-5)
    report = mtrec.evaluate(model, mtrec.data.from_pandas(df, schema, batch_size=3))
    assert report.loc["a", "count"] == 8 and report.loc["b", "count"] == 5


def test_early_stopping_on_mean_validation_score(table, schema):
    model = mtrec.models.MMoE(schema, num_experts=2, expert_units=[4])
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    data = mtrec.data.from_pandas(table, schema, batch_size=64)
    callbacks = mtrec.training.early_stopping("mean", patience=1)
    history = model.fit(data, validation_data=data, epochs=4, callbacks=callbacks, verbose=0)
    scores = history.history["val_mean_score"]
    expected = np.mean([history.history["val_click_auc"][0],
                        history.history["val_grade_accuracy"][0],
                        -history.history["val_spend_rmse"][0]])
    assert scores[0] == pytest.approx(expected, rel=1e-6)
    stopper = callbacks[-1]
    assert stopper.monitor == "val_mean_score" and stopper.best == max(scores)


def test_early_stopping_on_one_task_picks_its_metric(schema):
    stopper = mtrec.training.early_stopping("spend", tasks=schema.tasks)[-1]
    assert stopper.monitor == "val_spend_rmse" and stopper.mode == "min"


def test_same_seed_gives_identical_metrics(table, schema):
    def run():
        mtrec.training.set_seed(7)
        model = mtrec.models.PLE(schema, num_levels=2, num_specific_experts=1,
                                 num_shared_experts=1, expert_units=[4], dropout=0.1)
        model.compile(optimizer=keras.optimizers.Adam(0.01))
        model.fit(mtrec.data.from_pandas(table, schema, batch_size=32, shuffle=True, seed=7),
                  epochs=2, verbose=0)
        return mtrec.evaluate(model, mtrec.data.from_pandas(table, schema))
    first, second = run(), run()
    pd.testing.assert_frame_equal(first, second)
