"""The runner: `train` from a config, the run folder and record, evaluation."""

import json
import subprocess

import keras
import numpy as np
import pytest

import mtrec
from helpers import tiny_run_config
from mtrec.data import registry
from mtrec.experiments import record as run_record
from mtrec.experiments import runner
from mtrec.experiments.config import ConfigError, parse_config

TINY = {**tiny_run_config(early_stopping={"monitor": "mean", "patience": 2}),
        "output_dir": "set-by-each-test"}


def tiny(**sections):
    return parse_config({**TINY, **sections})


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    """One MMoE run on synthetic_tiny, its log lines kept."""
    lines = []
    out = tmp_path_factory.mktemp("runner") / "run"
    result = runner.train(tiny(), output_dir=out, verbose=0, log=lines.append)
    result.lines = lines
    return result


def test_train_returns_what_it_wrote(result):
    assert isinstance(result, runner.RunResult)
    assert result.output_dir.is_dir()
    assert sorted(p.name for p in result.output_dir.iterdir()) == [
        "config.yaml", "gates.png", "logs", "metrics.json", "metrics.md", "model.keras",
        "schema.json"]
    # TensorBoard's event files, one folder per split as Keras writes them
    assert {p.name for p in (result.output_dir / "logs").iterdir()} == {"train", "validation"}
    assert any((result.output_dir / "logs" / "train").glob("events.out.tfevents.*"))
    assert list(result.test.index) == ["click", "like"]
    assert result.record == json.loads((result.output_dir / "metrics.json").read_text())
    assert result.schema.task_names == ["click", "like"]


def test_the_record(result):
    record = result.record
    assert record["record_version"] == run_record.RECORD_VERSION
    assert set(record["versions"]) >= {"mtrec", "keras", "tensorflow", "numpy"}
    assert record["versions"]["mtrec"] == mtrec.__version__
    assert record["versions"]["keras"] == keras.__version__
    assert set(record["git"]) == {"commit", "dirty", "changed"}
    assert record["seed"] == 2
    assert record["config"]["training"]["epochs"] == 2
    assert record["epochs_run"] == 2 and len(record["history"]) == 2
    assert record["dataset"]["args"] == {"rows": 2000, "seed": 1}
    assert record["dataset"]["rows"] == {"train": 1400, "valid": 300, "test": 300}
    assert record["train_seconds"] > 0
    assert record["parameters"] == result.model.count_params()
    for split in ("valid", "test"):
        assert set(record["metrics"][split]) == {"click", "like"}
        for row in record["metrics"][split].values():
            assert 0.5 < row["auc"] <= 1.0 and row["count"] == 300
    first = record["history"][0]
    assert first["epoch"] == 1
    assert {"loss", "val_loss", "val_click_auc", "weight_click",
            "weight_like"} <= set(first)
    assert first["weight_click"] == 1.0
    gates = record["gates"]
    assert gates["plot"] == "gates.png" and gates["num_examples"] == 300
    assert set(gates["normalized_entropy"]) == {"experts/click", "experts/like"}


def test_metrics_markdown_is_the_test_table(result):
    text = (result.output_dir / "metrics.md").read_text()
    auc = result.record["metrics"]["test"]["click"]["auc"]
    assert text.startswith("# MMoE on synthetic_tiny")
    assert "| task | kind | count |" in text
    assert "| click | binary | 300 |" in text and f"{auc:.4f}" in text


def test_the_log_ends_with_the_test_table(result):
    assert result.lines[0].endswith(": 1400 train / 300 valid / 300 test rows")
    assert result.lines[-2] == mtrec.evaluation.format_table(result.test)
    assert result.lines[-1].endswith("metrics.json metrics.md gates.png logs/")


def test_model_keeps_the_best_validation_weights(result):
    # metrics.json's validation metrics are those of the saved model
    model = keras.saving.load_model(result.output_dir / "model.keras")
    data = registry.load_dataset("synthetic_tiny", rows=2000, seed=1)
    valid = mtrec.evaluate(model, data.valid)
    for task in ("click", "like"):
        assert valid.loc[task, "auc"] == pytest.approx(
            result.record["metrics"]["valid"][task]["auc"], abs=1e-9)


def test_training_is_repeatable_and_records_the_git_state(tmp_path, monkeypatch):
    # The checkout has a changed benchmark result: dirty unless ignored.
    def fake_git(args, **kwargs):
        out = "abc123\n" if "rev-parse" in args else " M benchmarks/results/x.json\n"
        return subprocess.CompletedProcess(args, 0, stdout=out, stderr="")

    monkeypatch.setattr(run_record.subprocess, "run", fake_git)
    config = tiny(model={"name": "SharedBottom", "args": {"bottom_units": [8]}},
                  training={**TINY["training"], "epochs": 1,
                            "loss_weighting": "uncertainty"})
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "gates.png").write_bytes(b"stale")
    a = runner.train(config, output_dir=tmp_path / "a", verbose=0, log=None,
                     ignore_changes=("benchmarks/results/",), overwrite=True)
    b = runner.train(config, output_dir=tmp_path / "b", verbose=0, log=None)
    assert a.record["metrics"] == b.record["metrics"]
    assert a.record["history"][0]["weight_click"] != 1.0   # learned weights logged
    assert a.record["git"] == {"commit": "abc123", "dirty": False,
                               "changed": ["benchmarks/results/x.json"]}
    assert b.record["git"]["dirty"] is True
    # no gates to draw: no gates.png, not even an earlier run's (replaced
    # whole, with overwrite=True)
    assert a.record["gates"] is None and not (tmp_path / "a" / "gates.png").exists()


def test_task_references_are_checked_once_the_tasks_are_known(tmp_path, monkeypatch):
    """A dataset that does not declare its tasks: the config validates, and
    train stops before fitting, with the config check's own sentence."""
    monkeypatch.setattr(registry, "DATASETS", dict(registry.DATASETS))

    @registry.register_dataset("tiny_without_tasks")
    def tiny_without_tasks():
        return registry.load_dataset("synthetic_tiny", rows=300)

    config = tiny(dataset={"name": "tiny_without_tasks"},
                  training={**TINY["training"], "loss_weights": {"clik": 2.0}})
    with pytest.raises(ConfigError, match="Unknown task 'clik' in training.loss_weights; "
                                          "did you mean 'click'"):
        runner.train(config, output_dir=tmp_path / "o", verbose=0, log=None)
    assert not (tmp_path / "o" / "model.keras").exists()


def test_evaluate_model_with_groups(result):
    data = registry.load_dataset("synthetic_tiny", rows=2000, seed=1)
    report = runner.evaluate_model(result.model, data.test, group_column="color",
                                   batch_size=64)
    expected = mtrec.evaluate(result.model, data.test, group_column="color")
    assert report.loc["click", "gauc_groups"] == expected.loc["click", "gauc_groups"] > 1
    np.testing.assert_allclose(report["gauc"].astype(float), expected["gauc"].astype(float),
                               atol=1e-6)
    plain = runner.evaluate_model(result.model, data.test)
    assert "gauc" not in plain.columns or plain["gauc"].isna().all()
    with pytest.raises(ValueError, match="evaluation.group_column 'user' is not a column"):
        runner.evaluate_model(result.model, data.test, group_column="user")


def test_load_model(result, tmp_path):
    assert isinstance(runner.load_model(result.output_dir), keras.Model)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="folder without model.keras"):
        runner.load_model(tmp_path / "empty")
    with pytest.raises(ValueError, match="does not exist"):
        runner.load_model(tmp_path / "none.keras")
    (tmp_path / "m.h5").write_bytes(b"")
    with pytest.raises(ValueError, match="is not a .keras file"):
        runner.load_model(tmp_path / "m.h5")


def test_each_helper_has_one_home():
    # tables in mtrec.evaluation.tables, file scoring in
    # mtrec.export.file_scoring, provenance in mtrec.experiments.record,
    # the task-name check in mtrec.experiments.config: none defined here.
    for name in ("format_table", "markdown_table", "predict_file", "iter_table",
                 "load_model", "git_state", "_git_state", "_plain", "_jsonable",
                 "_check_task_references", "check_task_references"):
        value = getattr(runner, name, None)
        assert value is None or value.__module__ != runner.__name__, name


def test_evaluate_run_reproduces_the_test_metrics(result):
    report, data = runner.evaluate_run(result.model, tiny())
    assert len(data.test) == 300
    for task in ("click", "like"):
        assert report.loc[task, "auc"] == pytest.approx(
            result.record["metrics"]["test"][task]["auc"], abs=1e-9)
