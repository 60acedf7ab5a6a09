"""Tests of benchmarks/gbdt_baseline.py on a tiny generated table: the
number of trees is the best validation stage, masked labels are left out,
categories unseen in training are missing, seeds repeat the same trees,
and the runs' entries are what records.py and report.py read."""

import copy
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import load_module
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

from mtrec import Schema
from mtrec.data.registry import DatasetSplits
from mtrec.schema import Categorical, MultiHot, Numeric, TaskSpec, Text

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
records = load_module("records", ROOT / "benchmarks" / "records.py")
gbdt = load_module("gbdt_baseline", ROOT / "benchmarks" / "gbdt_baseline.py")
report = load_module("report", ROOT / "benchmarks" / "report.py")
suites = load_module("suites", ROOT / "benchmarks" / "suites.py")

WORDS = ["good", "bad", "soft", "small", "large", "love", "return", "fit"]


def _frame(rows, seed, colors=("red", "green", "blue")):
    """click depends on color and x; conversion (only where clicked) on the
    words of the text; score on x and the tags."""
    rng = np.random.default_rng(seed)
    color = rng.choice(list(colors), rows).astype(object)
    color[rng.random(rows) < 0.05] = None
    x = rng.normal(size=rows)
    tags = ["|".join(rng.choice(["a", "b", "c", "d"], rng.integers(0, 3), replace=False))
            for _ in range(rows)]
    text = [" ".join(rng.choice(WORDS, 5)) for _ in range(rows)]
    logit = 1.5 * x + np.where(color == "red", 1.0, -0.5)
    click = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype("float32")
    likes = np.array([t.count("love") - t.count("return") for t in text], float)
    conversion = (rng.random(rows) < 1 / (1 + np.exp(-2 * likes))).astype("float32")
    score = x + np.array([t.count("a") for t in tags]) + rng.normal(0, 0.1, rows)
    return pd.DataFrame({"color": color, "x": x, "tags": tags, "text": text,
                         "click": click, "conversion": conversion * click + 0,
                         "score": score.astype("float32")})


SPECS = [Categorical("color"), Numeric("x"), MultiHot("tags"), Text("text")]
TASKS = [TaskSpec("click"), TaskSpec("cvr", label="conversion", mask="click"),
         TaskSpec("score", kind="regression")]


@pytest.fixture(autouse=True)
def one_thread():
    # As the benchmark fits (gbdt_baseline.THREADS): on 2 shared cores, two
    # OpenMP threads make these tiny fits several times slower.
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def data():
    return DatasetSplits(train=_frame(500, 0), valid=_frame(200, 1), test=_frame(200, 2),
                         tasks=TASKS)


def _schema():
    return Schema(SPECS, TASKS)


def test_trees_are_the_best_validation_stage(data):
    encoder = gbdt.FeatureEncoder(SPECS, seed=1).fit(data.train)
    X, Xv = encoder.transform(data.train), encoder.transform(data.valid)
    fit = gbdt.fit_task("binary", X, data.train["click"].to_numpy(), Xv,
                        data.valid["click"].to_numpy(), encoder.categorical, seed=1,
                        max_iter=40, chunk=10, patience=1000)
    assert fit.grown == len(fit.valid_curve) == 40
    # the curve is the validation AUC of every stage, recomputed here
    expected = [roc_auc_score(data.valid["click"], p[:, 1])
                for p in fit.model.staged_predict_proba(Xv)]
    np.testing.assert_allclose(fit.valid_curve, expected)
    assert fit.valid_curve[fit.iterations - 1] == max(expected)
    assert fit.iterations < 40  # this tiny task overfits: the choice is not the last tree
    # the predictions are those of the chosen stage, not of all 40 trees
    stages = list(fit.model.staged_predict_proba(Xv))
    np.testing.assert_allclose(fit.predict(Xv), stages[fit.iterations - 1][:, 1])
    assert not np.allclose(fit.predict(Xv), stages[-1][:, 1])


def test_patience_stops_growth_past_the_best_stage(data):
    encoder = gbdt.FeatureEncoder(SPECS, seed=1).fit(data.train)
    X, Xv = encoder.transform(data.train), encoder.transform(data.valid)
    fit = gbdt.fit_task("regression", X, data.train["score"].to_numpy(), Xv,
                        data.valid["score"].to_numpy(), encoder.categorical, seed=1,
                        max_iter=300, chunk=10, patience=20)
    assert fit.grown < 300 and fit.grown - fit.iterations >= 20
    assert fit.valid_curve[fit.iterations - 1] == max(fit.valid_curve)  # -MSE


def test_masked_labels_are_left_out(data):
    schema = Schema(SPECS[:3], TASKS)  # no text: three runs, kept fast
    result = gbdt.run_hgb(data, schema, seed=1, max_iter=15)
    clicked = {s: int(getattr(data, s)["click"].sum()) for s in ("valid", "test")}
    assert result["metrics"]["test"]["cvr"]["count"] == clicked["test"]
    assert result["metrics"]["valid"]["cvr"]["count"] == clicked["valid"]
    assert result["metrics"]["test"]["click"]["count"] == len(data.test)
    # what a masked row's label says changes nothing: it is never read
    flipped = copy.deepcopy(data)
    for split in ("train", "valid", "test"):
        frame = getattr(flipped, split)
        frame.loc[frame["click"] == 0, "conversion"] = 1.0
    again = gbdt.run_hgb(flipped, schema, seed=1, max_iter=15)
    assert again["metrics"] == result["metrics"]
    assert again["iterations"] == result["iterations"]
    # ... while a label of an unmasked row does
    flipped.train.loc[flipped.train["click"] == 1, "conversion"] = 1 - \
        flipped.train.loc[flipped.train["click"] == 1, "conversion"]
    assert gbdt.run_hgb(flipped, schema, seed=1, max_iter=15)["metrics"] != \
        result["metrics"]


def test_unseen_and_missing_categories_are_missing(data):
    encoder = gbdt.FeatureEncoder(SPECS, seed=1).fit(data.train)
    assert encoder.columns[0] == "color" and encoder.categorical[0]
    assert encoder.categorical.sum() == 1  # only the Categorical column
    test = _frame(50, 3, colors=("red", "purple"))  # purple: never in training
    codes = encoder.transform(test)[:, 0]
    unseen = (test["color"] == "purple").to_numpy()
    missing = test["color"].isna().to_numpy()
    assert unseen.any() and missing.any()
    assert np.isnan(codes[unseen | missing]).all()
    known = codes[~(unseen | missing)]
    assert not np.isnan(known).any() and set(known) <= {0.0, 1.0, 2.0}
    # the MultiHot items and the SVD columns are numeric
    assert {"tags=a", "tags=b"} <= set(encoder.columns)
    assert sum(c.startswith("text:svd") for c in encoder.columns) >= 1
    # a whole run over such a test split works and scores every row
    splits = DatasetSplits(train=data.train, valid=data.valid, test=test, tasks=TASKS)
    result = gbdt.run_hgb(splits, _schema(), seed=1, max_iter=10)
    assert result["metrics"]["test"]["click"]["count"] == 50


def test_text_can_be_skipped(data):
    encoder = gbdt.FeatureEncoder(SPECS, text="skip").fit(data.train)
    assert not any(c.startswith("text") for c in encoder.columns)
    assert encoder.describe()["skipped"] == ["text"]


def test_seeds_repeat_the_trees_without_text(data):
    """HGB without subsampling does not depend on random_state (the report
    says so); a seeded SVD is the only seed-dependent step."""
    schema = Schema(SPECS[:3], TASKS)
    one, two = (gbdt.run_hgb(data, schema, seed=s, max_iter=15) for s in (1, 2))
    assert one["metrics"] == two["metrics"] and one["iterations"] == two["iterations"]


@pytest.mark.slow  # 8 s on 2 loaded cores: the suite's configs, the data, git
def test_entries_are_what_the_records_and_the_report_read(tmp_path):
    """A real suite's smoke baseline (synthetic: no data files) through
    run_baselines, then aggregated, checked and reported beside the
    committed networks' record."""
    suite = suites.load_suite("synthetic")
    assert suite.baselines == ("hgb",)
    record = records.read_record(ROOT / "benchmarks" / "results" / "synthetic.json")
    networks = copy.deepcopy(record["runs"])
    record.pop("baselines", None)
    saved = []
    gbdt.run_baselines(suite, record, [1], smoke=True, max_iter=5,
                       save=lambda: saved.append(1), log=lambda *a: None)
    runs = records.baseline_runs(record)
    assert len(runs) == len(saved) == 2  # the smoke sweep's two correlations
    assert record["runs"] == networks      # the networks' runs are untouched
    for entry in runs:
        assert entry["name"] == "HGB (per task)" and entry["baseline"] == "hgb"
        assert {"model", "variant", "seed", "parameters", "epochs_run", "train_seconds",
                "metrics", "git", "history", "iterations", "task_seconds"} <= set(entry)
        assert set(entry["metrics"]["test"]) == {"y1", "y2"}
        assert entry["metrics"]["test"]["y1"]["rmse"] > 0
        assert 1 <= entry["iterations"]["y1"]["chosen"] <= 5
    stats = records.aggregate(record, baselines=True)
    assert ("HGB (per task)", "correlation=0.5") in stats
    assert ("HGB (per task)", "correlation=0.5") not in records.aggregate(record)
    assert records.rows_in(stats)[-1] == "HGB (per task)"  # baselines last
    # a baseline file may name the HGB row
    mse = stats[("HGB (per task)", "correlation=0.5")]["tasks"]["y1"]["mse"]["mean"]
    baseline = {"expected": {"HGB (per task)@correlation=0.5": {
        "y1": {"mse": {"mean": mse, "tol": 1e-6}}}}}
    assert records.check_baseline(record, baseline) == []
    baseline["expected"]["HGB (per task)@correlation=0.5"]["y1"]["mse"]["mean"] = mse / 2
    assert "HGB (per task)@correlation=0.5 / y1 / test mse" in \
        records.check_baseline(record, baseline)[0]
    lines = report.synthetic_section(record, tmp_path, "fig")
    text = "\n".join(lines)
    assert "| p | HGB (per task) test MSE |" in text
    assert any(line.startswith("| 0.5 | ") and "MMoE" in line for line in lines
               if "± " in line and line.count("|") == 6)


def test_a_suite_names_only_known_baselines():
    with pytest.raises(suites.SuiteError, match="unknown baseline 'hgbt'"):
        suites.parse_suite("x", {"description": "d", "configs": "synthetic",
                                 "baselines": ["hgbt"]})
    off = suites.parse_suite("x", {"description": "d", "configs": "synthetic",
                                   "baselines": []})
    assert off.baselines == ()
    assert suites.parse_suite("x", {"description": "d", "configs": "synthetic"}
                              ).baselines == ("hgb",)


def test_the_runner_runs_the_baseline_unless_models_leave_it_out():
    run = load_module("run", ROOT / "benchmarks" / "run.py")
    suite = suites.load_suite("census_g1")
    assert run._baselines_selected(suite, None)
    assert run._baselines_selected(suite, ["hgb"])
    assert run._baselines_selected(suite, ["HGB (per task)"])
    assert not run._baselines_selected(suite, ["MMoE"])
    off = suites.parse_suite("x", {"description": "d", "configs": "synthetic",
                                   "baselines": []})
    assert not run._baselines_selected(off, None)
