"""ReportToTrial: each epoch's validation value goes to the trial; the
study's pruner decides (a real in-memory Optuna study, no training)."""

import optuna
import pytest

from mtrec.tuning.pruning import ReportToTrial


def trial_with(pruner):
    return optuna.create_study(direction="maximize", pruner=pruner).ask()


def test_reports_every_epoch_and_goes_on_while_the_pruner_allows():
    trial = trial_with(optuna.pruners.ThresholdPruner(lower=0.5))
    callback = ReportToTrial(trial, "val_mean_score")
    callback.on_epoch_end(0, {"val_mean_score": 0.6, "val_loss": 1.0})
    callback.on_epoch_end(1, {"val_mean_score": 0.7})
    assert callback.values == {1: 0.6, 2: 0.7}
    frozen = trial.study.trials[trial.number]
    assert frozen.intermediate_values == {1: 0.6, 2: 0.7}


def test_raises_trial_pruned_when_the_pruner_says_so():
    trial = trial_with(optuna.pruners.ThresholdPruner(lower=0.5))
    callback = ReportToTrial(trial, "val_click_auc")
    with pytest.raises(optuna.TrialPruned, match="pruned after epoch 1: val_click_auc 0.4"):
        callback.on_epoch_end(0, {"val_click_auc": 0.4})


def test_an_undefined_value_is_not_reported():
    trial = trial_with(optuna.pruners.ThresholdPruner(lower=0.5))
    callback = ReportToTrial(trial, "val_mean_score")
    callback.on_epoch_end(0, {"val_mean_score": float("nan")})   # would prune if reported
    assert callback.values == {}


def test_a_key_the_logs_lack_is_an_error_naming_the_keys_they_have():
    callback = ReportToTrial(trial_with(optuna.pruners.NopPruner()), "val_mean_score")
    with pytest.raises(ValueError, match=r"they have \['val_click_auc', 'val_loss'\]"):
        callback.on_epoch_end(0, {"val_loss": 1.0, "val_click_auc": 0.6, "loss": 1.0})


def test_a_retried_trial_starts_with_what_was_reported():
    trial = trial_with(optuna.pruners.NopPruner())
    callback = ReportToTrial(trial, "val_loss", reported={1: 0.9, 2: 0.8})
    callback.on_epoch_end(2, {"val_loss": 0.7})
    assert callback.values == {1: 0.9, 2: 0.8, 3: 0.7}
    assert trial.study.trials[0].intermediate_values == {1: 0.9, 2: 0.8, 3: 0.7}
