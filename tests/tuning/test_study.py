"""`mtrec tune` end to end on a tiny config: the study, its storage, the
trial folders, trials.csv, best.yaml, resuming, retrying a killed trial."""

import json
import os
import signal

import optuna
import pandas as pd
import pytest
import yaml
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState

from mtrec.cli import main
from mtrec.data.registry import load_dataset
from mtrec.experiments import runner
from mtrec.experiments.config import load_config
from mtrec.tuning.pruning import ReportToTrial
from mtrec.tuning.study import STUDY_FILE, STUDY_NAME
from helpers import tiny_run_config

# SharedBottom (no gates: no heatmap to draw), 600 rows, one epoch a trial.
TINY = tiny_run_config(epochs=1, batch_size=128, tensorboard=False, early_stopping=None)
TINY["dataset"]["args"]["rows"] = 600
TINY["model"] = {"name": "SharedBottom", "args": {"bottom_units": [4], "tower_units": [4]}}
TUNE = {"trials": 2, "pruner": {"name": "median", "n_warmup_steps": 1},
        "space": {"model.args.bottom_units": {"choice": [[4], [8, 4]]},
                  "training.learning_rate": {"float": [1.0e-3, 3.0e-2], "log": True}}}


def write_config(path, tune=TUNE, **training):
    config = {**TINY, "training": {**TINY["training"], **training}, "tune": tune}
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def load(out):
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(out / STUDY_FILE)))
    return optuna.load_study(study_name=STUDY_NAME, storage=storage)


def test_tune_writes_the_study_resumes_and_best_yaml_retrains_the_best_trial(
        tmp_path, capsys, monkeypatch):
    config, out = write_config(tmp_path / "tiny.yaml"), tmp_path / "tune"
    evaluated = []   # the index of every frame the runner evaluates
    evaluate_model = runner.evaluate_model
    monkeypatch.setattr(runner, "evaluate_model", lambda model, frame, *args: (
        evaluated.append(list(frame.index)), evaluate_model(model, frame, *args))[1])
    assert main(["tune", str(config), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    splits = load_dataset("synthetic_tiny", rows=600, seed=1)
    assert evaluated == [list(splits.valid.index)] * 2   # the test split: never
    assert "2 complete, 0 pruned, 0 failed" in printed and "Best trial" in printed

    study = load(out)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE
    for trial in study.trials:      # one epoch reported per trial, val_mean_score
        assert list(trial.intermediate_values) == [1]
        assert trial.value == pytest.approx(trial.intermediate_values[1])
    table = pd.read_csv(out / "trials.csv")
    assert list(table["state"]) == ["COMPLETE"] * 2
    assert {"params_model.args.bottom_units", "params_training.learning_rate",
            "user_attrs_run_dir"} <= set(table.columns)
    # Trial run folders: validation only, the test split never evaluated.
    record = json.loads((out / "trials" / "001" / "metrics.json").read_text())
    assert record["metrics"]["test"] is None and record["metrics"]["valid"]
    assert sorted(p.name for p in (out / "trials").iterdir()) == ["000", "001"]
    assert not (out / "tune.lock").exists()

    # best.yaml: the full run config with the best values, no tune section.
    best = study.best_trial
    text = (out / "best.yaml").read_text()
    assert "tune" not in yaml.safe_load(text)
    best_config = load_config(out / "best.yaml")
    assert best_config.training.learning_rate == best.params["training.learning_rate"]
    assert str(best_config.model.args["bottom_units"]).replace(" ", "") == \
        best.params["model.args.bottom_units"].replace(" ", "")
    assert best_config.training.seed == 2 and best_config.training.epochs == 1

    # A changed tune section is another study: refused, nothing runs.
    assert main(["tune", str(config), "--out", str(out),
                 "--set", "tune.metric=val_loss"]) == 2
    assert "holds the study of another config" in capsys.readouterr().err

    # A trial left running by a killed process: failed, then retried first.
    killed = study.ask({"model.args.bottom_units": CategoricalDistribution(["[4]",
                                                                          "[8, 4]"]),
                        "training.learning_rate": FloatDistribution(1e-3, 3e-2, log=True)})
    assert main(["tune", str(config), "--out", str(out), "--trials", "3"]) == 0
    printed = capsys.readouterr().out
    assert "2 of 3 trials done, running 1" in printed and "retrying" in printed
    study = load(out)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2 + [
        TrialState.FAIL, TrialState.COMPLETE]          # only one more trial ran
    assert study.trials[3].params == killed.params
    assert study.trials[3].user_attrs["retry_of"] == killed.number
    assert len(pd.read_csv(out / "trials.csv")) == 4

    # `mtrec train best.yaml` reproduces the best trial's validation metrics.
    best = study.best_trial
    trained = runner.train(load_config(out / "best.yaml"), output_dir=tmp_path / "best",
                           log=None, verbose=0)
    trial_record = json.loads((out / "trials" / f"{best.number:03d}" /
                               "metrics.json").read_text())
    for task, metrics in trial_record["metrics"]["valid"].items():
        assert trained.record["metrics"]["valid"][task]["auc"] == pytest.approx(
            metrics["auc"], abs=1e-6)
    assert trained.record["metrics"]["test"]          # read now, once


def test_a_study_held_by_a_live_process_is_refused(tmp_path, capsys):
    config, out = write_config(tmp_path / "tiny.yaml"), tmp_path / "tune"
    out.mkdir()
    (out / "tune.lock").write_text(str(os.getppid()))   # a live process, not us
    assert main(["tune", str(config), "--out", str(out)]) == 2
    assert f"another mtrec tune (pid {os.getppid()}) is running" in capsys.readouterr().err
    assert not (out / STUDY_FILE).exists()


def test_tune_needs_a_number_of_trials(tmp_path, capsys):
    config = write_config(tmp_path / "tiny.yaml", tune={"space": TUNE["space"]})
    assert main(["tune", str(config), "--out", str(tmp_path / "t")]) == 2
    assert "Pass --trials N or set tune.trials" in capsys.readouterr().err


@pytest.mark.slow
def test_pruned_trials_count_and_leave_no_folder(tmp_path, capsys):
    # No validation score reaches 1.01: every trial is pruned after epoch 1.
    tune = {**TUNE, "pruner": {"name": "threshold", "lower": 1.01}}
    config, out = write_config(tmp_path / "tiny.yaml", tune=tune, epochs=2), tmp_path / "t"
    assert main(["tune", str(config), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "0 complete, 2 pruned, 0 failed" in printed and "No complete trial" in printed
    assert [t.state for t in load(out).trials] == [TrialState.PRUNED] * 2
    assert not (out / "best.yaml").exists() and (out / "trials.csv").is_file()
    assert not (out / "trials").exists() or not any((out / "trials").iterdir())
    # Pruned trials count towards --trials: the rerun has nothing to do.
    assert main(["tune", str(config), "--out", str(out)]) == 0
    assert "2 of 2 trials done, running 0" in capsys.readouterr().out


@pytest.mark.slow
def test_an_interrupted_trial_is_retried_from_its_checkpoints(tmp_path, capsys,
                                                              monkeypatch):
    config = write_config(tmp_path / "tiny.yaml", tune={**TUNE, "trials": 1}, epochs=2)
    out = tmp_path / "t"
    report = ReportToTrial.on_epoch_end

    def ctrl_c_after_epoch_1(self, epoch, logs=None):
        report(self, epoch, logs)
        if self.trial.number == 0 and epoch == 0:
            os.kill(os.getpid(), signal.SIGINT)   # as Ctrl-C: saved at the next step

    monkeypatch.setattr(ReportToTrial, "on_epoch_end", ctrl_c_after_epoch_1)
    assert main(["tune", str(config), "--out", str(out)]) == 130
    interrupted = load(out).trials[0]
    assert interrupted.state == TrialState.FAIL and interrupted.user_attrs["interrupted"]
    assert (out / "trials" / "000.work").is_dir()

    assert main(["tune", str(config), "--out", str(out)]) == 0
    assert "Trial 0 was interrupted; retrying its values first." in capsys.readouterr().out
    retry = load(out).trials[1]
    assert retry.state == TrialState.COMPLETE and retry.params == interrupted.params
    assert list(retry.intermediate_values) == [1, 2]
    record = json.loads((out / "trials" / "001" / "metrics.json").read_text())
    assert record["resumed_from"] == {"epoch": 1, "step": 1}
    assert not (out / "trials" / "000.work").exists()


def test_a_schema_defaults_key_reaches_the_columns_named_under_features(tmp_path, capsys):
    # x1 is named (log1p) and sets no embedding_dim: the trial's value for
    # schema.defaults.numeric.embedding_dim must reach it as well as x2.
    config = {**TINY, "schema": {"defaults": {"numeric": {"encoding": "periodic"}},
                                 "features": {"x1": {"kind": "numeric", "log1p": True}}},
              "tune": {"trials": 1, "space": {
                  "schema.defaults.numeric.embedding_dim": {"choice": [3]}}}}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    assert main(["tune", str(path), "--out", str(tmp_path / "tune")]) == 0
    capsys.readouterr()
    trial = yaml.safe_load((tmp_path / "tune" / "trials" / "000" / "config.yaml").read_text())
    assert trial["schema"]["defaults"]["numeric"]["embedding_dim"] == 3
    schema = json.loads((tmp_path / "tune" / "trials" / "000" / "schema.json").read_text())
    numerics = {f["name"]: f for f in schema["features"] if f["kind"] == "numeric"}
    assert {name: f["embedding_dim"] for name, f in numerics.items()} == {"x1": 3, "x2": 3}
    assert numerics["x1"]["log1p"] is True
    best = load_config(tmp_path / "tune" / "best.yaml")
    assert best.schema_.feature_specs()["x1"].embedding_dim == 3
