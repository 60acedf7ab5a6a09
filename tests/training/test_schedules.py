"""Learning-rate schedules and weight decay, from `mtrec.training.schedules`
to a run config's `training.learning_rate_schedule` / `weight_decay`."""

import math

import pytest

from helpers import tiny_run_config
from mtrec.experiments import run_folder, runner
from mtrec.experiments.config import ConfigError, parse_config
from mtrec.training.schedules import SCHEDULES, learning_rate


def test_constant_is_the_base_rate():
    assert learning_rate(0.01) == 0.01


def test_cosine_by_hand():
    schedule = learning_rate(0.01, "cosine", total_steps=100, final_fraction=0.1)
    for step in (0, 25, 50, 100, 150):
        progress = min(step, 100) / 100
        expected = 0.01 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
        assert float(schedule(step)) == pytest.approx(expected, rel=1e-5)


def test_cosine_warms_up_linearly_from_zero_to_the_base_rate():
    schedule = learning_rate(0.01, "cosine", total_steps=100, warmup_steps=10)
    assert float(schedule(0)) == 0.0
    assert float(schedule(5)) == pytest.approx(0.005, rel=1e-5)
    assert float(schedule(10)) == pytest.approx(0.01, rel=1e-5)
    # half-way through the 90 decay steps
    assert float(schedule(55)) == pytest.approx(0.005, rel=1e-5)
    assert float(schedule(100)) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("kwargs, match", [
    ({"name": "step"}, "Unknown learning-rate schedule 'step'"),
    ({"name": "cosine"}, "needs total_steps"),
    ({"name": "cosine", "total_steps": 10, "warmup_steps": 10}, "shorten the warm-up"),
    ({"name": "cosine", "total_steps": 10, "final_fraction": 2.0}, "final_fraction"),
])
def test_bad_schedules_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        learning_rate(0.01, **kwargs)


def _config(**training):
    config = tiny_run_config()
    return parse_config({**config, "output_dir": "x",
                         "training": {**config["training"], **training}})


def test_the_config_takes_a_name_or_a_mapping():
    assert _config(learning_rate_schedule="cosine").training.learning_rate_schedule.name \
        == "cosine"
    schedule = _config(learning_rate_schedule={"name": "cosine", "warmup_epochs": 0.5}) \
        .training.learning_rate_schedule
    assert (schedule.name, schedule.warmup_epochs) == ("cosine", 0.5)
    # the config's literal names are the module's
    assert set(type(schedule).model_fields["name"].annotation.__args__) == set(SCHEDULES)


@pytest.mark.parametrize("training, match", [
    ({"learning_rate_schedule": "cosin"}, "'constant' or 'cosine'"),
    ({"learning_rate_schedule": {"name": "constant", "warmup_epochs": 1}},
     "cosine schedule only"),
    ({"learning_rate_schedule": {"name": "cosine", "warmup_epochs": 5}},
     "warm-up must end before the run does"),
    ({"weight_decay": -1}, "weight_decay"),
])
def test_bad_config_values_are_refused_before_anything_runs(training, match):
    with pytest.raises(ConfigError, match=match):
        _config(**training)


def test_the_fingerprint_changes_only_when_the_new_options_are_set():
    plain = run_folder.config_fingerprint(_config())
    assert run_folder.config_fingerprint(_config(learning_rate_schedule="constant",
                                                 weight_decay=None)) == plain
    assert run_folder.config_fingerprint(_config(learning_rate_schedule="cosine")) != plain
    assert run_folder.config_fingerprint(_config(weight_decay=1e-4)) != plain


def test_a_run_follows_its_schedule_to_the_end(tmp_path):
    config = _config(learning_rate_schedule={"name": "cosine", "final_fraction": 0.25},
                     weight_decay=1e-3, early_stopping=None)
    result = runner.train(config, output_dir=tmp_path / "run", verbose=0, log=lambda _: None)
    optimizer = result.model.optimizer
    # every epoch ran, so the optimizer stands at the schedule's last step
    assert result.record["epochs_run"] == config.training.epochs
    assert int(optimizer.iterations.numpy()) > 0
    assert float(optimizer.learning_rate) == pytest.approx(
        0.25 * config.training.learning_rate, rel=1e-4)
    assert optimizer.weight_decay == pytest.approx(1e-3)
