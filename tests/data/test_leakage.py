"""Tests for mtrec.data.leakage: planted leaks raise or warn, real tables pass."""

import warnings

import numpy as np
import pandas as pd
import pytest

import mtrec
from mtrec.data.leakage import LeakageWarning, check_leakage, feature_auc

TASKS = {"click": "binary", "spend": "regression", "grade": "multiclass"}


def infer(frame):
    return mtrec.Schema.infer(frame, tasks=TASKS, verbose=False,
                              tags=mtrec.MultiHot("tags"), title=mtrec.Text("title"))


def no_warnings(frame, schema, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return check_leakage(frame, schema, **kwargs)


def test_legitimate_table_passes_silently(table, schema):
    report = no_warnings(table, schema)
    assert set(report) == {"click"}                      # AUCs for binary tasks
    assert set(report["click"]) == {"color", "user_id", "num", "tags", "title"}
    assert 0.7 < report["click"]["num"] < 0.99           # the real signal
    assert all(0.5 <= auc < 0.99 for auc in report["click"].values())


def test_copy_of_the_label_raises(table):
    frame = table.assign(click_copy=table["click"])
    with pytest.raises(ValueError, match="feature 'click_copy' is an identical copy of "
                                         "the label of task 'click'"):
        check_leakage(frame, infer(frame))


def test_renamed_category_copy_raises(table):
    frame = table.assign(outcome=table["click"].map({0: "no", 1: "yes"}).astype(object))
    schema = infer(frame)
    assert schema.feature("outcome").kind == "categorical"
    with pytest.raises(ValueError, match=r"feature 'outcome' is a deterministic recoding "
                                         r"\(each of its 2 values"):
        check_leakage(frame, schema)


def test_many_to_one_recoding_and_missing_values_raise(table):
    codes = np.where(table["click"] == 1, table.index % 3, 3 + table.index % 2)
    outcome = pd.Series(codes, dtype="object").map(lambda c: f"code-{c}")
    outcome[::10] = None                   # missing rows are left out of the rule
    frame = table.assign(outcome=outcome)
    with pytest.raises(ValueError, match=r"'outcome' is a deterministic recoding "
                                         r"\(each of its 5 values"):
        check_leakage(frame, infer(frame))


def test_monotone_transform_of_a_regression_label_raises(table):
    frame = table.assign(log_spend=np.log1p(table["spend"] - table["spend"].min()))
    with pytest.raises(ValueError, match="'log_spend' equals the label up to a strictly "
                                         "monotone transform of the label of task 'spend'"):
        check_leakage(frame, infer(frame))
    frame = table.assign(spend_copy=table["spend"])
    with pytest.raises(ValueError, match="'spend_copy' is an identical copy"):
        check_leakage(frame, infer(frame))


def test_all_leaks_are_named_in_one_error(table):
    frame = table.assign(a=table["click"], b=table["grade"] * 10.0)
    with pytest.raises(ValueError) as error:
        check_leakage(frame, infer(frame))
    assert "feature 'a'" in str(error.value) and "feature 'b'" in str(error.value)
    assert "task 'grade'" in str(error.value)


def test_noisy_but_almost_perfect_numeric_only_warns(table):
    rng = np.random.default_rng(0)
    noisy = table["click"] + rng.normal(scale=0.3, size=len(table))   # AUC 0.994
    frame = table.assign(noisy=noisy.astype("float32"))
    with pytest.warns(LeakageWarning, match=r"Feature 'noisy' alone predicts task 'click' "
                                            r"\(label 'click'\) with AUC 0\.99\d\d"):
        report = check_leakage(frame, infer(frame))
    assert 0.99 < report["click"]["noisy"] < 1.0
    # below a stricter reader's threshold nothing is said
    no_warnings(frame, infer(frame), auc_threshold=0.999)


def test_masked_task_uses_labelled_rows_only(table):
    # `bought` copies the label where the CVR task has one (click == 1) and
    # is noise elsewhere: a leak for cvr, not visible on the whole table.
    rng = np.random.default_rng(1)
    buy = (rng.random(len(table)) < 0.5).astype("float64")
    bought = np.where(table["click"] == 1, buy, rng.integers(0, 2, len(table)))
    frame = table[["color", "num", "click"]].assign(buy=buy, bought=bought)
    schema = mtrec.Schema([mtrec.Categorical("color"), mtrec.Numeric("num"),
                           mtrec.Numeric("bought")],
                          [mtrec.TaskSpec("ctr", label="click"),
                           mtrec.TaskSpec("cvr", label="buy", mask="click")])
    with pytest.raises(ValueError, match="'bought' is an identical copy of the label of "
                                         "task 'cvr'"):
        check_leakage(frame, schema)


def test_near_unique_ids_are_not_flagged(table):
    frame = table.assign(row_id=[f"r{i}" for i in range(len(table))])
    schema = infer(frame)
    report = no_warnings(frame, schema)
    assert report["click"]["row_id"] == pytest.approx(0.5)


def test_feature_auc_by_hand():
    y = np.array([0, 0, 1, 1] * 10)
    assert feature_auc(pd.Series(y * 2.0 - 1), y, numeric=True) == 1.0
    assert feature_auc(pd.Series(1.0 - y), y, numeric=True) == 1.0     # either direction
    assert feature_auc(pd.Series(np.zeros(40)), y, numeric=True) == 0.5
    categories = pd.Series(np.where(y == 1, "a", "b"), dtype=object)
    assert feature_auc(categories, y, numeric=False) == 1.0
    assert np.isnan(feature_auc(pd.Series(np.arange(40.0)), np.zeros(40), numeric=True))


def test_large_tables_are_sampled(table):
    big = pd.concat([table] * 4, ignore_index=True)
    frame = big.assign(click_copy=big["click"])
    with pytest.raises(ValueError, match="click_copy"):
        check_leakage(frame, infer(frame), max_rows=500)
    with pytest.raises(ValueError, match="max_rows must be an integer >= 1"):
        check_leakage(table, infer(table), max_rows=0)


def test_too_few_rows_of_a_class_give_no_auc():
    y = np.array([1] * 40 + [0] * 4)
    assert np.isnan(feature_auc(pd.Series(y * 1.0), y, numeric=True))
