"""Tests for mtrec.schema.task_kinds: the task-kind table and the label checks it drives."""

import types

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from keras import ops

from mtrec import Numeric, Schema, TaskSpec
from mtrec.layers.task_towers import TaskTowers
from mtrec.schema import TASK_KIND_TABLE, TASK_KINDS, TaskKind, task_kind
from mtrec.training import (
    MaskedRMSE, MeanValidationScore, TaskLoss, UncertaintyWeighting, default_metrics,
    early_stopping)
from helpers import error_of


def test_adapt_multiclass_num_classes():
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "grade": [0, 2, np.nan, 1]})
    schema = Schema([Numeric("x")], {"grade": "multiclass"}).adapt(df)
    assert schema.num_classes(schema.tasks[0]) == 3
    fixed = Schema([Numeric("x")], [TaskSpec("grade", "multiclass", num_classes=5)])
    assert fixed.adapt(df).num_classes(fixed.tasks[0]) == 5


def test_adapt_multiclass_num_classes_from_numeric_strings():
    # "9" > "10" as strings; the classes are numbers.
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "grade": ["9", "10", "0", "1"]})
    schema = Schema([Numeric("x")], {"grade": "multiclass"}).adapt(df)
    assert schema.num_classes(schema.tasks[0]) == 11


def test_binary_label_other_than_0_1(df):
    bad = df.assign(click=[0, 1, 2, 1, 1, 0])
    message = error_of(lambda: Schema([Numeric("price")], {"click": "binary"}).adapt(bad))
    assert "Label column 'click' of binary task 'click'" in message
    assert "e.g. 2" in message and "map it to 0/1" in message


def test_multiclass_labels_out_of_range():
    df = pd.DataFrame({"x": [1.0, 2.0], "grade": [0.5, 1]})
    schema = Schema([Numeric("x")], {"grade": "multiclass"})
    assert "must hold integers in [0, num_classes)" in error_of(lambda: schema.adapt(df))
    df = pd.DataFrame({"x": [1.0, 2.0], "grade": [0, 3]})
    schema = Schema([Numeric("x")], [TaskSpec("grade", "multiclass", num_classes=3)])
    assert "'grade'" in error_of(lambda: schema.adapt(df))


@pytest.mark.parametrize("num_classes", [None, 3])
def test_multiclass_labels_all_missing(num_classes):
    # No label at all: nothing to learn num_classes from, nor to train on.
    df = pd.DataFrame({"x": [1.0, 2.0], "grade": [np.nan, np.nan]})
    schema = Schema([Numeric("x")], [TaskSpec("grade", "multiclass",
                                              num_classes=num_classes)])
    message = error_of(lambda: schema.adapt(df))
    assert "task(s) 'grade'" in message and "no label in any of the 2 rows" in message


LABELS = st.one_of(st.none(), st.integers(-3, 12), st.booleans(),
                   st.floats(allow_nan=True, allow_infinity=True),
                   st.sampled_from(["1", "0", "x", ""]))


@settings(max_examples=30, deadline=None, database=None, derandomize=True)
@given(st.lists(LABELS, min_size=1, max_size=6),
       st.sampled_from(["binary", "regression", "multiclass"]))


@example([0, float("inf")], "multiclass")
@example([3.4028235677973366e+38], "regression")     # inf once cast to float32
def test_garbage_labels_adapt_or_raise_value_error(labels, kind):
    frame = pd.DataFrame({"x": np.arange(len(labels), dtype=float),
                          "y": pd.Series(labels, dtype=object)})
    schema = Schema([Numeric("x")], {"y": kind})
    try:
        schema.adapt(frame)
    except ValueError:
        pass
    else:
        values = schema.raw_labels(frame)["y"]
        assert values.dtype == np.float32 and values.shape == (len(labels),)
        assert not np.isinf(values).any()
        if kind == "multiclass":
            assert schema.num_classes(schema.tasks[0]) >= 1


# --------------------------------------------------------------------------
# the table
# --------------------------------------------------------------------------
def test_table_holds_the_three_kinds_and_refuses_others():
    assert TASK_KINDS == ("binary", "regression", "multiclass")
    assert task_kind("binary") is TASK_KIND_TABLE["binary"]
    with pytest.raises(ValueError, match="Unknown task kind 'binery'.*Did you mean 'binary'"):
        task_kind("binery")
    with pytest.raises(ValueError, match="Unknown task kind"):
        task_kind(["binary"])


@pytest.mark.parametrize("name", ["binary", "regression", "multiclass"])
def test_every_kind_monitors_one_of_its_metrics(name):
    kind = task_kind(name)
    assert kind.monitor in [metric.name for metric in kind.metrics()]
    assert kind.monitor_mode in ("max", "min")
    assert kind.score(2.0) == (2.0 if kind.monitor_mode == "max" else -2.0)


def test_heads_and_scales_by_kind():
    binary, regression, multiclass = (task_kind(k) for k in TASK_KINDS)
    assert (binary.head_activation, binary.head_units(5)) == ("sigmoid", 1)
    assert (regression.head_activation, regression.head_units(5)) == (None, 1)
    assert (multiclass.head_activation, multiclass.head_units(5)) == ("softmax", 5)
    assert [k.uncertainty_scale for k in (binary, regression, multiclass)] == [1.0, 0.5, 1.0]


def test_losses_by_hand():
    labels = np.array([1.0, 0.0], "float32")
    binary = task_kind("binary").loss(labels, np.array([0.8, 0.4], "float32"))
    np.testing.assert_allclose(binary, [-np.log(0.8), -np.log(0.6)], rtol=1e-6)
    regression = task_kind("regression").loss(labels, np.array([0.5, -1.0], "float32"))
    np.testing.assert_allclose(regression, [0.25, 1.0], rtol=1e-6)
    probabilities = np.array([[0.2, 0.8], [0.6, 0.4]], "float32")
    multiclass = task_kind("multiclass").loss(labels, probabilities)
    np.testing.assert_allclose(multiclass, [-np.log(0.8), -np.log(0.6)], rtol=1e-6)


def test_evaluation_entries_call_the_exact_metrics():
    from mtrec.evaluation import metrics

    y, p, groups = [1, 0, 1, 0], [0.8, 0.3, 0.6, 0.4], [1, 1, 2, 2]
    assert task_kind("binary").evaluate(y, p, groups=groups, top_k=(1,), num_bins=5) == \
        metrics.binary_metrics(y, p, groups=groups, num_bins=5)
    assert task_kind("regression").evaluate([1.0, 2.0], [1.5, 2.0]) == \
        metrics.regression_metrics([1.0, 2.0], [1.5, 2.0])
    probabilities = [[0.2, 0.8], [0.6, 0.4]]
    assert task_kind("multiclass").evaluate([1, 1], probabilities, top_k=(1,)) == \
        metrics.multiclass_metrics([1, 1], probabilities, top_k=(1,))


# --------------------------------------------------------------------------
# a new task kind is one table entry: towers, losses, metrics, callbacks
# and loss weighting follow it
# --------------------------------------------------------------------------
def _poisson(labels, y_pred):
    rate = ops.reshape(y_pred, (-1,))
    return rate - labels * ops.log(ops.maximum(rate, 1e-7))


def _rmse_metrics():
    return [MaskedRMSE(name="rmse")]


COUNT = TaskKind("count", head_activation="exponential", per_class=False, loss=_poisson,
                 metrics=_rmse_metrics, monitor="rmse", monitor_mode="min",
                 evaluate=lambda y, p, **_: {"count": len(y)},
                 check_labels=lambda task, observed: None, uncertainty_scale=0.5)


@pytest.fixture
def count_kind(monkeypatch):
    monkeypatch.setitem(TASK_KIND_TABLE, "count", COUNT)
    return TaskSpec("visits", "count")


def test_a_new_kind_drives_the_towers(count_kind):
    towers = TaskTowers([{"name": "visits", "kind": "count"}], tower_units=[2])
    out = towers([np.ones((3, 4), "float32")])
    assert tuple(out["visits"].shape) == (3,)
    assert towers.heads[0].get_config()["activation"] == "exponential"
    assert (np.asarray(out["visits"]) > 0).all()


def test_a_new_kind_drives_loss_and_metrics(count_kind):
    labels = np.array([2.0, np.nan, 0.0], "float32")
    rate = np.array([1.0, 5.0, 0.5], "float32")
    expected = np.mean([1.0 - 2.0 * np.log(1.0), 0.5])   # the NaN label drops out
    np.testing.assert_allclose(float(TaskLoss("count")(labels, rate)), expected, rtol=1e-6)
    assert [m.name for m in default_metrics("count")] == ["rmse"]


def test_a_new_kind_drives_callbacks_and_uncertainty_weighting(count_kind):
    stopping = early_stopping("visits", tasks=[count_kind])[-1]
    assert stopping.monitor == "val_visits_rmse" and stopping.mode == "min"
    mean = MeanValidationScore()
    mean.set_model(types.SimpleNamespace(schema=types.SimpleNamespace(tasks=[count_kind])))
    logs = {"val_visits_rmse": 2.0}
    mean.on_epoch_end(0, logs)
    assert logs["val_mean_score"] == -2.0
    weighting = UncertaintyWeighting(task_names=["visits"], task_kinds=["count"])
    weighting.build()
    np.testing.assert_allclose(np.asarray(weighting.task_weights()), [0.5])
