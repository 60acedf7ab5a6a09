"""Tests of benchmarks/ablations.py: the test split served through the
exported SavedModel as is and with columns blanked agrees with Keras on the
same requests; columns a model does not take are not blanked."""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import load_module

import mtrec

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
ablations = load_module("ablations", ROOT / "benchmarks" / "ablations.py")


def _keras_metrics(model, frame):
    report = mtrec.evaluate(model, frame)
    return {task: row for task, row in report.to_dict(orient="index").items()}


def test_served_metrics_with_and_without_columns_match_keras(schema, table, tmp_path):
    model = mtrec.models.MMoE(schema, num_experts=2, expert_units=[4], tower_units=[4])
    test = table.iloc[:120].reset_index(drop=True)
    out = ablations.served_ablations(model, test, {"text_removed": ["title", "vec"]},
                                     tmp_path / "saved_model")
    assert (tmp_path / "saved_model" / "saved_model.pb").is_file()
    assert out["ablations"] == {"text_removed": {"blank": ["title", "vec"],
                                                 "blanked": ["title", "vec"]}}
    assert set(out["metrics"]) == {"test_served", "test_text_removed"}
    blanked = test.assign(title="", vec=[np.nan] * len(test))
    for split, frame in (("test_served", test), ("test_text_removed", blanked)):
        expected = _keras_metrics(model, frame)
        got = out["metrics"][split]
        assert set(got) == {"click", "spend", "grade"}
        assert got["click"]["auc"] == pytest.approx(expected["click"]["auc"], abs=1e-5)
        assert got["spend"]["rmse"] == pytest.approx(expected["spend"]["rmse"], rel=1e-5)
        assert got["grade"]["accuracy"] == pytest.approx(expected["grade"]["accuracy"])
        assert got["click"]["count"] == 120
    # blanking changed what the model saw
    assert out["metrics"]["test_served"]["spend"]["rmse"] != \
        out["metrics"]["test_text_removed"]["spend"]["rmse"]


def test_blank_columns_uses_each_specs_missing_value_and_skips_other_columns(schema, table):
    frame, blanked = ablations.blank_columns(table.iloc[:5], schema, ["title", "vec"])
    assert blanked == ["title", "vec"]
    assert frame["title"].tolist() == [""] * 5 and frame["vec"].isna().all()
    raw = schema.raw_features(frame)
    assert np.isnan(raw["vec"]).all() and (raw["title"] == "").all()
    pd.testing.assert_series_equal(frame["num"], table["num"].iloc[:5])
    tabular = mtrec.Schema.infer(table, tasks={"click": "binary"}, exclude=["title", "vec"],
                                 verbose=False, tags=mtrec.MultiHot("tags"))
    frame, blanked = ablations.blank_columns(table.iloc[:5], tabular, ["title", "vec"])
    assert blanked == [] and frame["title"].tolist() == table["title"].iloc[:5].tolist()
    with pytest.raises(ValueError, match=r"\['review'\] are not columns of the test split"):
        ablations.blank_columns(table, schema, ["title", "review"])
