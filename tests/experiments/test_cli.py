"""The `mtrec` command line: train, validate, evaluate, export, predict."""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
import yaml

import mtrec
from mtrec.experiments import runner
from mtrec.cli import main
from mtrec.experiments.config import load_config
from mtrec.data.registry import load_dataset

ROOT = Path(__file__).resolve().parents[2]
MMOE_CONFIG = ROOT / "benchmarks" / "configs" / "census_income" / "mmoe.yaml"

TINY = {
    "dataset": {"name": "synthetic_tiny", "args": {"rows": 2000, "seed": 1}},
    "model": {"name": "MMoE", "args": {"num_experts": 2, "expert_units": [8],
                                       "tower_units": [4]}},
    "training": {"epochs": 3, "batch_size": 256, "learning_rate": 0.01, "seed": 2,
                 "early_stopping": {"monitor": "mean", "patience": 2}},
    "output_dir": "set-by-each-test",
}


def write_config(path, config):
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err          # one line, no traceback
    return err[0]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One MMoE run on synthetic_tiny through `mtrec train`, epochs set to 2
    with --set (the config says 3)."""
    folder = tmp_path_factory.mktemp("cli")
    config = write_config(folder / "tiny.yaml", TINY)
    output = folder / "run"
    status = main(["train", str(config), "--set", "training.epochs=2",
                   "--output", str(output)])
    assert status == 0
    data = load_dataset("synthetic_tiny", rows=2000, seed=1)
    return {"folder": folder, "config": config, "output": output, "data": data}


@pytest.fixture(scope="module")
def exported(run):
    path = run["folder"] / "export"
    assert main(["export", str(run["output"] / "model.keras"), str(path)]) == 0
    return path


# --------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------
def test_train_writes_every_artefact(run):
    out = run["output"]
    for name in ("config.yaml", "schema.json", "model.keras", "metrics.json",
                 "metrics.md", "gates.png"):
        assert (out / name).is_file(), name
    assert (out / "gates.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_metrics_record(run):
    record = json.loads((run["output"] / "metrics.json").read_text())
    for key in ("git", "versions", "seed", "config", "parameters", "epochs_run",
                "best_epoch", "train_seconds", "metrics", "history", "dataset"):
        assert key in record, key
    assert set(record["versions"]) >= {"mtrec", "keras", "tensorflow", "numpy"}
    assert record["versions"]["mtrec"] == mtrec.__version__
    assert record["versions"]["keras"] == keras.__version__
    assert record["seed"] == 2
    assert record["config"]["training"]["epochs"] == 2     # the --set override
    assert record["epochs_run"] == 2 and len(record["history"]) == 2
    assert record["dataset"]["args"] == {"rows": 2000, "seed": 1}
    assert record["dataset"]["rows"] == {"train": 1400, "valid": 300, "test": 300}
    assert record["train_seconds"] > 0
    model = keras.saving.load_model(run["output"] / "model.keras")
    assert record["parameters"] == model.count_params()
    for split in ("valid", "test"):
        assert set(record["metrics"][split]) == {"click", "like"}
        for row in record["metrics"][split].values():
            assert 0.5 < row["auc"] <= 1.0 and row["count"] == 300
    first = record["history"][0]
    assert first["epoch"] == 1
    assert {"loss", "val_loss", "val_click_auc", "weight_click",
            "weight_like"} <= set(first)
    assert first["weight_click"] == 1.0


def test_saved_config_and_schema_reload(run):
    config = load_config(run["output"] / "config.yaml")
    assert config.training.epochs == 2
    assert config.output_dir == str(run["output"])
    schema = mtrec.Schema.from_json(run["output"] / "schema.json")
    assert schema.adapted and schema.task_names == ["click", "like"]
    assert schema.feature_names == ["color", "x1", "x2"]


def test_metrics_markdown_is_the_test_table(run):
    text = (run["output"] / "metrics.md").read_text()
    record = json.loads((run["output"] / "metrics.json").read_text())
    assert "| task | kind | count |" in text
    auc = record["metrics"]["test"]["click"]["auc"]
    assert "| click | binary | 300 |" in text and f"{auc:.4f}" in text


def test_model_keeps_the_best_validation_weights(run):
    # metrics.json's validation metrics are those of the saved model
    record = json.loads((run["output"] / "metrics.json").read_text())
    model = keras.saving.load_model(run["output"] / "model.keras")
    valid = mtrec.evaluate(model, run["data"].valid)
    for task in ("click", "like"):
        assert valid.loc[task, "auc"] == pytest.approx(
            record["metrics"]["valid"][task]["auc"], abs=1e-9)


def test_training_is_repeatable(tmp_path, capsys):
    config = dict(TINY, model={"name": "SharedBottom", "args": {"bottom_units": [8]}},
                  training={**TINY["training"], "epochs": 1,
                            "loss_weighting": "uncertainty"})
    path = write_config(tmp_path / "c.yaml", config)
    records = []
    for name in ("a", "b"):
        assert main(["train", str(path), "--output", str(tmp_path / name)]) == 0
        records.append(json.loads((tmp_path / name / "metrics.json").read_text()))
    assert records[0]["metrics"] == records[1]["metrics"]
    assert records[0]["history"][0]["weight_click"] != 1.0   # learned weights logged
    assert not (tmp_path / "a" / "gates.png").exists()       # no gates to draw
    out = capsys.readouterr().out
    assert "Test set" in out and "click" in out and "auc" in out


def test_train_prints_the_test_table(tmp_path, capsys):
    path = write_config(tmp_path / "c.yaml", TINY)
    assert main(["train", str(path), "--set", "training.epochs=1",
                 "--set", "model.name=OMoE", "--output", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    table = out[out.index("Test set"):]
    assert "positive_rate" in table and "auc" in table and "logloss" in table
    assert "\nclick " in table and "\nlike " in table


def test_train_with_a_bad_config_writes_nothing(tmp_path, capsys):
    bad = dict(TINY, training={"epoch": 1})
    path = write_config(tmp_path / "bad.yaml", bad)
    assert main(["train", str(path), "--output", str(tmp_path / "out")]) == 2
    line = error_line(capsys)
    assert line.startswith("mtrec train: error: ")
    assert "Unknown key 'epoch' in training; did you mean 'epochs'?" in line
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------
# validate
# --------------------------------------------------------------------------
def test_validate_the_census_config(capsys):
    assert main(["validate", str(MMOE_CONFIG)]) == 0
    out = capsys.readouterr().out
    assert "valid" in out and "MMoE" in out and "census_income" in out


def test_validate_reports_every_problem_on_one_line(tmp_path, capsys):
    bad = dict(TINY, model={"name": "MMOE", "args": {}}, trainig={})
    path = write_config(tmp_path / "bad.yaml", bad)
    assert main(["validate", str(path)]) == 2
    line = error_line(capsys)
    assert "2 problems" in line
    assert "Unknown key 'trainig' at the top level; did you mean 'training'?" in line
    assert "Unknown model 'MMOE' in model.name; did you mean 'MMoE'?" in line


def test_validate_in_a_fresh_process_exits_2_without_traceback(tmp_path):
    bad = dict(TINY, training={"epoch": 1})
    path = write_config(tmp_path / "bad.yaml", bad)
    result = subprocess.run(
        [sys.executable, "-m", "mtrec.cli", "validate", str(path)],
        capture_output=True, text=True, cwd=tmp_path, check=False,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=300)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert ("mtrec validate: error: " in result.stderr
            and "Unknown key 'epoch' in training; did you mean 'epochs'?"
            in result.stderr)


def test_usage_errors_and_help(capsys):
    assert main([]) == 2
    assert main(["tran", "x.yaml"]) == 2
    assert main(["--help"]) == 0
    assert "train" in capsys.readouterr().out


# --------------------------------------------------------------------------
# evaluate and export
# --------------------------------------------------------------------------
def test_evaluate_a_run_folder_reproduces_the_test_metrics(run, capsys):
    assert main(["evaluate", str(run["output"])]) == 0
    out = capsys.readouterr().out
    record = json.loads((run["output"] / "metrics.json").read_text())
    auc = record["metrics"]["test"]["like"]["auc"]
    assert "Test set of synthetic_tiny (300 rows)" in out
    assert f"{auc:.4f}" in out


def test_evaluate_a_keras_file_with_a_config(run, capsys):
    assert main(["evaluate", str(run["output"] / "model.keras"),
                 "--config", str(run["config"])]) == 0
    assert "Test set of synthetic_tiny" in capsys.readouterr().out


def test_evaluate_without_a_config_fails_clearly(tmp_path, run, capsys):
    model = tmp_path / "m.keras"
    model.write_bytes((run["output"] / "model.keras").read_bytes())
    assert main(["evaluate", str(model)]) == 2
    assert "pass --config CONFIG.yaml" in error_line(capsys)


def test_export_writes_a_savedmodel_with_its_schema(exported):
    assert (exported / "saved_model.pb").is_file()
    assert (exported / "assets.extra" / "mtrec_schema.json").is_file()


def test_export_of_a_missing_model_exits_2(tmp_path, capsys):
    assert main(["export", str(tmp_path / "none.keras"), str(tmp_path / "e")]) == 2
    assert "does not exist" in error_line(capsys)


# --------------------------------------------------------------------------
# predict
# --------------------------------------------------------------------------
def write_table(frame, path):
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


def read_output(path):
    return pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("kind", ["keras", "savedmodel"])
def test_predict_matches_model_predict(run, exported, tmp_path, fmt, kind):
    test = run["data"].test
    model = keras.saving.load_model(run["output"] / "model.keras")
    expected = model.predict(model.schema.raw_features(test), verbose=0)
    source = write_table(test, tmp_path / f"in.{fmt}")
    target = tmp_path / f"out.{'parquet' if fmt == 'csv' else 'csv'}"
    path = run["output"] / "model.keras" if kind == "keras" else exported
    assert main(["predict", str(path), str(source), str(target),
                 "--batch-size", "128"]) == 0
    out = read_output(target)
    # input columns first, then one column per task ('click' and 'like' are
    # label columns of the input, so the predictions get a suffix)
    assert list(out.columns) == list(test.columns) + ["click_prediction",
                                                      "like_prediction"]
    assert len(out) == len(test)
    for task in ("click", "like"):
        np.testing.assert_allclose(out[f"{task}_prediction"].to_numpy(),
                                   np.asarray(expected[task]).reshape(-1), atol=1e-5)
    pd.testing.assert_frame_equal(out[list(test.columns)].reset_index(drop=True),
                                  test.reset_index(drop=True), check_dtype=False)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_predict_every_feature_kind_and_multiclass(table, schema, tmp_path, fmt):
    # The shared fixture table has string/int categoricals (with missing
    # values), numerics with NaN, multi-hot, text and vector columns, and a
    # multiclass task.
    keras.utils.set_random_seed(0)
    model = mtrec.models.MMoE(schema, num_experts=2, expert_units=[4], tower_units=[4])
    model.save(tmp_path / "m.keras")
    features = table.drop(columns=["click", "spend", "grade"])
    expected = model.predict(schema.raw_features(features), verbose=0)
    source = write_table(features, tmp_path / f"in.{fmt}")
    assert main(["predict", str(tmp_path / "m.keras"), str(source),
                 str(tmp_path / "out.csv"), "--batch-size", "64"]) == 0
    out = pd.read_csv(tmp_path / "out.csv")
    assert list(out.columns) == list(features.columns) + [
        "click", "spend", "grade_0", "grade_1", "grade_2"]
    np.testing.assert_allclose(out["click"], expected["click"].reshape(-1), atol=1e-5)
    np.testing.assert_allclose(out["spend"], expected["spend"].reshape(-1), atol=1e-5)
    np.testing.assert_allclose(out[["grade_0", "grade_1", "grade_2"]].to_numpy(),
                               expected["grade"], atol=1e-5)


@pytest.mark.parametrize("kind", ["keras", "savedmodel"])
def test_predict_names_the_missing_column(run, exported, tmp_path, capsys, kind):
    source = write_table(run["data"].test.drop(columns=["x2"]), tmp_path / "in.csv")
    path = run["output"] / "model.keras" if kind == "keras" else exported
    assert main(["predict", str(path), str(source), str(tmp_path / "o.csv")]) == 2
    line = error_line(capsys)
    assert line.startswith("mtrec predict: error: ")
    assert "missing column(s) ['x2']" in line
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_predict_in_chunks_equals_one_pass(run, tmp_path, fmt):
    """Reading, scoring and writing 37 rows at a time gives the same file as
    one pass (the row count is not a multiple of the chunk)."""
    test = run["data"].test
    source = write_table(test, tmp_path / f"in.{fmt}")
    whole, chunked = tmp_path / f"whole.{fmt}", tmp_path / f"chunked.{fmt}"
    model = str(run["output"] / "model.keras")
    assert main(["predict", model, str(source), str(whole)]) == 0
    assert main(["predict", model, str(source), str(chunked), "--chunk-rows", "37",
                 "--batch-size", "16"]) == 0
    assert len(test) % 37 != 0
    pd.testing.assert_frame_equal(read_output(chunked), read_output(whole))
    assert not list(tmp_path.glob("*.partial"))


def test_predict_bad_value_in_a_late_chunk_leaves_no_output(run, tmp_path, capsys):
    # CSV: a Parquet column has one type throughout, so it fails at chunk 1.
    fmt = "csv"
    frame = run["data"].test.copy()
    frame["x1"] = frame["x1"].astype(object)
    frame.loc[frame.index[-1], "x1"] = "high"   # only the last chunk is bad
    source = write_table(frame, tmp_path / f"in.{fmt}")
    target = tmp_path / f"o.{fmt}"
    assert main(["predict", str(run["output"]), str(source), str(target),
                 "--chunk-rows", "50"]) == 2
    assert "Column 'x1'" in error_line(capsys)
    assert not target.exists() and not list(tmp_path.glob("*.partial"))


def test_predict_header_only_file(run, tmp_path):
    source = write_table(run["data"].test.iloc[:0], tmp_path / "in.csv")
    assert main(["predict", str(run["output"]), str(source), str(tmp_path / "o.csv"),
                 "--chunk-rows", "10"]) == 0
    out = pd.read_csv(tmp_path / "o.csv")
    assert len(out) == 0 and list(out.columns)[-2:] == ["click_prediction",
                                                        "like_prediction"]


def test_predict_names_a_column_of_the_wrong_type(run, tmp_path, capsys):
    frame = run["data"].test.assign(x1="high")
    source = write_table(frame, tmp_path / "in.parquet")
    assert main(["predict", str(run["output"]), str(source),
                 str(tmp_path / "o.csv")]) == 2
    assert "Column 'x1'" in error_line(capsys)


@pytest.mark.parametrize("args, message", [
    (["in.csv", "out.txt"], "Output file out.txt is neither CSV"),
    (["in.json", "out.csv"], "is neither CSV"),
    (["nothere.csv", "out.csv"], "does not exist"),
])
def test_predict_file_errors(run, tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    write_table(run["data"].test, tmp_path / "in.csv")
    (tmp_path / "in.json").write_text("{}")
    assert main(["predict", str(run["output"] / "model.keras"), *args]) == 2
    assert message in error_line(capsys)


def test_prediction_columns_of_a_multiclass_task():
    schema = mtrec.Schema([mtrec.Numeric("a")],
                          tasks=[mtrec.TaskSpec("grade", "multiclass", num_classes=3),
                                 mtrec.TaskSpec("ctr")])
    columns = runner.prediction_columns(
        schema, {"grade": np.eye(3)[[0, 2]], "ctr": np.array([[0.1], [0.2]])},
        existing=["a", "ctr"])
    assert list(columns) == ["grade_0", "grade_1", "grade_2", "ctr_prediction"]
    np.testing.assert_array_equal(columns["grade_2"], [0.0, 1.0])
    np.testing.assert_array_equal(columns["ctr_prediction"], [0.1, 0.2])


@pytest.mark.parametrize("status, dirty", [
    ("", False),
    (" M benchmarks/results/census_g1.json\n M benchmarks/RESULTS.md\n"
     " M benchmarks/figures/census_g1_auc.png\n", False),   # the benchmark's own output
    (" M benchmarks/results/census_g1.json\n M mtrec/runner.py\n", True),
])
def test_git_state_ignores_benchmark_outputs(monkeypatch, status, dirty):
    def fake_run(args, **kwargs):
        out = "abc123\n" if "rev-parse" in args else status
        return subprocess.CompletedProcess(args, 0, stdout=out, stderr="")

    monkeypatch.setattr(runner.subprocess, "run", fake_run)
    state = runner._git_state()
    assert state["commit"] == "abc123" and state["dirty"] is dirty
    assert len(state["changed"]) == status.count("\n")
