"""The `mtrec` command line: train, validate, evaluate, export, predict.

What the commands print, write and exit with; the engines behind them are
tested beside their modules (tests/experiments/test_runner.py,
tests/export/test_file_scoring.py).
"""

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
from mtrec.cli import main
from mtrec.data.registry import load_dataset
from mtrec.experiments.config import load_config
from helpers import read_output, tiny_run_config, write_table

ROOT = Path(__file__).resolve().parents[2]
MMOE_CONFIG = ROOT / "benchmarks" / "configs" / "census_income" / "mmoe.yaml"

TINY = {**tiny_run_config(epochs=3, early_stopping={"monitor": "mean", "patience": 2}),
        "output_dir": "set-by-each-test"}


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


def test_train_records_the_set_override(run):
    record = json.loads((run["output"] / "metrics.json").read_text())
    assert record["config"]["training"]["epochs"] == 2     # the --set override
    assert record["epochs_run"] == 2 and record["versions"]["mtrec"] == mtrec.__version__


def test_saved_config_and_schema_reload(run):
    config = load_config(run["output"] / "config.yaml")
    assert config.training.epochs == 2
    assert config.output_dir == str(run["output"])
    schema = mtrec.Schema.from_json(run["output"] / "schema.json")
    assert schema.adapted and schema.task_names == ["click", "like"]
    assert schema.feature_names == ["color", "x1", "x2"]


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


def test_export_refuses_an_existing_export_unless_overwrite(run, tmp_path, capsys):
    model = str(run["output"] / "model.keras")
    target = tmp_path / "export"
    assert main(["export", model, str(target)]) == 0
    capsys.readouterr()
    before = (target / "saved_model.pb").stat().st_mtime_ns
    assert main(["export", model, str(target)]) == 2
    line = error_line(capsys)
    assert f"{target} already holds a SavedModel; refusing to overwrite it" in line
    assert (target / "saved_model.pb").stat().st_mtime_ns == before
    assert main(["export", model, str(target), "--overwrite"]) == 0
    assert f"to SavedModel {target} " in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]


def test_export_into_a_tf_serving_base_writes_the_next_version(run, tmp_path, capsys):
    model = str(run["output"] / "model.keras")
    base = tmp_path / "serving"
    (base / "1").mkdir(parents=True)       # a version TF Serving already serves
    (base / "1" / "saved_model.pb").write_bytes(b"version 1")
    assert main(["export", model, str(base)]) == 0
    assert f"to TF Serving version 2 at {base / '2'} " in capsys.readouterr().out
    assert (base / "2" / "saved_model.pb").is_file()
    assert (base / "1" / "saved_model.pb").read_bytes() == b"version 1"
    assert main(["export", model, str(base), "--overwrite"]) == 2
    assert "versions are never replaced; drop --overwrite to write version 3" in \
        error_line(capsys)
    assert sorted(p.name for p in base.iterdir()) == ["1", "2"]


def test_export_of_a_missing_model_exits_2(tmp_path, capsys):
    assert main(["export", str(tmp_path / "none.keras"), str(tmp_path / "e")]) == 2
    assert "does not exist" in error_line(capsys)


# --------------------------------------------------------------------------
# predict
# --------------------------------------------------------------------------


def test_predict_writes_the_scored_file(run, tmp_path, capsys):
    test = run["data"].test
    model = keras.saving.load_model(run["output"] / "model.keras")
    expected = model.predict(model.schema.raw_features(test), verbose=0)
    source = write_table(test, tmp_path / "in.csv")
    target = tmp_path / "out.parquet"
    assert main(["predict", str(run["output"]), str(source), str(target),
                 "--batch-size", "128", "--chunk-rows", "100"]) == 0
    assert capsys.readouterr().out.strip() == (
        f"Scored 300 rows of {source} -> {target} (click_prediction, like_prediction)")
    out = read_output(target)
    np.testing.assert_allclose(out["click_prediction"].to_numpy(),
                               np.asarray(expected["click"]).reshape(-1), atol=1e-5)


@pytest.mark.parametrize("kind", ["keras", "savedmodel"])
def test_predict_names_the_missing_column(run, exported, tmp_path, capsys, kind):
    source = write_table(run["data"].test.drop(columns=["x2"]), tmp_path / "in.csv")
    path = run["output"] / "model.keras" if kind == "keras" else exported
    assert main(["predict", str(path), str(source), str(tmp_path / "o.csv")]) == 2
    line = error_line(capsys)
    assert line.startswith("mtrec predict: error: ")
    assert "missing column(s) ['x2']" in line
    assert not (tmp_path / "o.csv").exists()


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


# --------------------------------------------------------------------------
# a user's own files, from the CLI
# --------------------------------------------------------------------------
def test_train_evaluate_and_predict_a_users_csv(tmp_path, monkeypatch, capsys):
    """The README's first example: a CSV and a split rule, nothing registered;
    then `evaluate RUN` and `predict` from another folder with only the run."""
    data = load_dataset("synthetic_tiny", rows=2000, seed=1)
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    table = pd.concat([data.train, data.valid, data.test], ignore_index=True)
    table.to_csv(project / "data" / "clicks.csv", index=False)
    config = dict(TINY, dataset={"files": "data/clicks.csv",
                                 "split": {"valid": 0.15, "test": 0.15, "seed": 0},
                                 "tasks": {"click": "binary", "like": "binary"}})
    del config["output_dir"]
    path = write_config(project / "run.yaml", config)
    monkeypatch.chdir(tmp_path)                 # files are relative to the config
    assert main(["validate", str(path)]) == 0
    assert "valid. files" in capsys.readouterr().out
    assert main(["train", str(path), "--set", "training.epochs=1"]) == 0
    out = capsys.readouterr().out
    assert "1400 train / 300 valid / 300 test rows" in out
    (run,) = (tmp_path / "runs").iterdir()
    assert run.name.startswith("clicks-MMoE-")
    record = json.loads((run / "metrics.json").read_text())
    assert record["dataset"]["args"]["files"] == str(project / "data" / "clicks.csv")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["evaluate", str(run)]) == 0
    out = capsys.readouterr().out
    assert "Test set of clicks (300 rows)" in out
    assert f"{record['metrics']['test']['like']['auc']:.4f}" in out
    assert main(["predict", str(run), str(project / "data" / "clicks.csv"),
                 "scored.csv"]) == 0
    scored = pd.read_csv("scored.csv")
    assert len(scored) == 2000 and {"click_prediction", "like_prediction"} <= set(scored)


def test_validate_names_a_missing_file_and_column(tmp_path, capsys):
    pd.DataFrame({"x": [1.0, 2.0], "click": [0, 1]}).to_csv(tmp_path / "a.csv", index=False)
    config = dict(TINY, dataset={"files": {"train": "a.csv", "valid": "b.csv",
                                           "test": "a.csv"},
                                 "tasks": {"click": "binary", "like": "binary"}})
    assert main(["validate", str(write_config(tmp_path / "c.yaml", config))]) == 2
    line = error_line(capsys)
    assert f"{tmp_path / 'a.csv'} has no column 'like' (the label of task 'like')" in line
    assert f"dataset.files.valid: no such file: {tmp_path / 'b.csv'}" in line
