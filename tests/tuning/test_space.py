"""The `tune` section: parsing, defaults, and the messages of every mistake
(no training here)."""

import optuna
import pytest
import yaml

from mtrec.cli import main
from mtrec.experiments.config import ConfigError, load_config, parse_config
from mtrec.tuning.space import load_tune_config, parse_tune
from helpers import tiny_run_config

CONFIG = parse_config(tiny_run_config())
SPACE = {"model.args.num_experts": {"int": [2, 4]},
         "model.args.expert_units": {"choice": [[8], [16, 8]]},
         "training.learning_rate": {"float": [1.0e-3, 1.0e-2], "log": True},
         "training.batch_size": {"choice": [128, 256]}}


def problems(section, config=CONFIG):
    with pytest.raises(ConfigError) as info:
        parse_tune(section, config)
    return info.value.problems


def one_problem(section):
    found = problems(section)
    assert len(found) == 1, found
    return found[0]


# --------------------------------------------------------------------------
# what a valid section gives
# --------------------------------------------------------------------------
def test_defaults_follow_the_config():
    spec = parse_tune({"space": SPACE}, CONFIG)
    assert (spec.metric, spec.key, spec.direction) == ("mean", "val_mean_score", "maximize")
    assert spec.trials is None
    assert spec.sampler == {"name": "tpe", "seed": 2}          # the config's seed
    assert spec.pruner == {"name": "median"}
    assert [p.key for p in spec.space] == list(SPACE)
    rate = spec.space[2]
    assert (rate.kind, rate.low, rate.high, rate.log) == ("float", 1.0e-3, 1.0e-2, True)


@pytest.mark.parametrize("metric, key, direction", [
    ("mean", "val_mean_score", "maximize"),
    ("click", "val_click_auc", "maximize"),          # a task: its kind's metric
    ("val_loss", "val_loss", "minimize"),
    ("val_like_loss", "val_like_loss", "minimize"),
    ("val_like_auc", "val_like_auc", "maximize"),
])
def test_the_direction_follows_the_metric(metric, key, direction):
    spec = parse_tune({"metric": metric, "space": SPACE}, CONFIG)
    assert (spec.key, spec.direction) == (key, direction)


def test_sampler_pruner_and_trials_as_given():
    spec = parse_tune({"trials": 7, "sampler": {"name": "random", "seed": 5},
                       "pruner": {"name": "median", "n_warmup_steps": 2},
                       "direction": "maximize", "space": SPACE}, CONFIG)
    assert spec.trials == 7
    assert isinstance(spec.make_sampler(), optuna.samplers.RandomSampler)
    pruner = spec.make_pruner()
    assert isinstance(pruner, optuna.pruners.MedianPruner)
    assert pruner._n_warmup_steps == 2
    assert parse_tune({"pruner": "none", "space": SPACE}, CONFIG).pruner == {"name": "none"}


def test_a_resumed_study_moves_the_sampler_seed():
    spec = parse_tune({"sampler": {"name": "random", "seed": 5}, "space": SPACE}, CONFIG)

    def first_rate(offset):
        study = optuna.create_study(sampler=spec.make_sampler(seed_offset=offset))
        return spec.space[2].suggest(study.ask())

    assert first_rate(0) == first_rate(0)
    assert first_rate(0) != first_rate(3)


def test_choices_of_lists_round_trip_through_optuna():
    spec = parse_tune({"sampler": {"name": "random", "seed": 0}, "space": SPACE}, CONFIG)
    units = spec.space[1]
    assert units.labels() == ["[8]", "[16, 8]"]          # Optuna stores text
    study = optuna.create_study(sampler=spec.make_sampler())
    seen = []
    for _ in range(8):
        trial = study.ask()
        value = units.suggest(trial)
        assert value in ([8], [16, 8])
        assert spec.values(trial.params)["model.args.expert_units"] == value
        seen.append(tuple(value))
        study.tell(trial, 0.0)
    assert len(set(seen)) == 2
    assert spec.space[3].labels() == [128, 256]          # scalars stay as they are


def test_load_tune_config_applies_overrides_to_the_tune_section(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({**tiny_run_config(), "tune": {"trials": 3,
                                                                  "space": SPACE}}))
    config, spec = load_tune_config(path, ["tune.trials=5", "training.epochs=1"])
    assert spec.trials == 5 and config.training.epochs == 1
    # mtrec train's loader leaves the tune section out of the run.
    assert "tune" not in load_config(path).to_dict()


def test_space_keys_may_nest_as_set_writes_them(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({**tiny_run_config(), "tune": {"space": SPACE}},
                                   sort_keys=False))
    _, spec = load_tune_config(path, ["tune.space.model.args.dropout={float: [0.0, 0.5]}"])
    assert [p.key for p in spec.space] == [*SPACE, "model.args.dropout"]
    assert (spec.space[-1].low, spec.space[-1].high) == (0.0, 0.5)


def test_a_config_without_tune_section_is_refused(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(tiny_run_config()))
    with pytest.raises(ConfigError, match="has no tune section"):
        load_tune_config(path)


# --------------------------------------------------------------------------
# mistakes, each named
# --------------------------------------------------------------------------
def test_unknown_paths_are_named_with_the_nearest_key():
    found = problems({"space": {"model.args.num_expert": {"int": [2, 4]},
                                "training.learnin_rate": {"float": [0.001, 0.01]}}})
    assert any(p.startswith("tune.space.model.args.num_expert = 2: Unknown argument "
                            "'num_expert' in model.args") and "did you mean 'num_experts'"
               in p for p in found), found
    assert any("Unknown key 'learnin_rate' in training; did you mean 'learning_rate'?"
               in p for p in found), found


def test_bounds_are_validated_as_train_would():
    assert "tune.space.model.args.num_experts = 0: model.args.num_experts is 0; a count " \
           "must be >= 1." in one_problem({"space": {"model.args.num_experts":
                                                     {"int": [0, 4]}}})
    found = one_problem({"space": {"training.batch_size": {"choice": [256, "big"]}}})
    assert found.startswith("tune.space.training.batch_size = big: training.batch_size")


@pytest.mark.parametrize("spec, words", [
    ({"range": [1, 4]}, "unknown distribution 'range'; distributions: int, float, choice"),
    ({"floats": [1.0, 4.0]}, "unknown distribution 'floats'; did you mean 'float'?"),
    ({"int": [1, 4], "float": [1.0, 2.0]}, "needs exactly one distribution"),
    ({"int": [4, 2]}, "is [4, 2]; low must be below high"),
    ({"int": [2, 2]}, "low must be below high"),
    ({"int": [1.5, 4]}, "expected [low, high], two integers (for a range of non-integers "
                        "use {float: [low, high]})"),
    ({"int": [1, 2, 3]}, "expected [low, high], two integers"),
    ({"float": ["1e-4", 1.0e-2]}, "YAML reads 1e-4 as text: write 1.0e-4"),
    ({"float": [0.0, 0.1], "log": True}, "a log scale needs low > 0"),
    ({"float": [0.1, 0.5], "step": 0.1, "log": True}, "give step or log, not both"),
    ({"float": [0.1, 0.5], "log": "yes"}, ".log is 'yes'; expected true or false"),
    ({"int": [2, 8], "step": 0}, ".step is 0; expected an integer > 0"),
    ({"int": [2, 8], "lg": True}, "Unknown key 'lg' in tune.space.model.args.num_experts "
                                  "(int takes step, log); did you mean 'log'?"),
    ({"choice": []}, ".choice is []; expected a non-empty list"),
    ({"choice": [2, 3, 2]}, "lists 2 more than once"),
    ([2, 4], "expected a distribution"),
])
def test_bad_distributions(spec, words):
    found = one_problem({"space": {"model.args.num_experts": spec}})
    assert found.startswith("tune.space.model.args.num_experts") or "Unknown key" in found
    assert words in found, found


@pytest.mark.parametrize("path, words", [
    ("dataset.args.rows", "dataset cannot be tuned: every trial must train and validate "
                          "on the same data"),
    ("training.seed", "training.seed cannot be tuned"),
    ("output_dir", "output_dir cannot be tuned"),
    ("model..args", "not a dotted config key"),
])
def test_paths_a_trial_may_not_change(path, words):
    assert words in one_problem({"space": {path: {"int": [1, 4]}}})


@pytest.mark.parametrize("section, words", [
    ({"metric": "valid_mean_auc"}, "tune.metric 'valid_mean_auc' is not a validation "
                                   "metric of this config"),
    ({"metric": "test_click_auc"}, "the test split is never evaluated while tuning"),
    ({"metric": "val_clik_auc"}, "Did you mean 'val_click_auc'?"),
    ({"metric": "val_loss", "direction": "maximize"},
     "tune.direction is maximize, but 'val_loss' (val_loss) is better when smaller; "
     "write direction: minimize"),
    ({"direction": "up"}, "tune.direction is 'up'; expected maximize or minimize"),
    ({"trials": 0}, "tune.trials is 0; expected an integer >= 1."),
    ({"sampler": {"name": "tpe", "n_startup": 3}},
     "Unknown argument 'n_startup' in tune.sampler (TPESampler takes"),
    ({"sampler": "tpee"},
     "Unknown sampler 'tpee' in tune.sampler.name; did you mean 'tpe'?"),
    ({"pruner": {"name": "medain"}}, "Unknown pruner 'medain' in tune.pruner.name; did "
                                     "you mean 'median'?"),
    ({"pruner": {"name": "percentile"}}, "tune.pruner: PercentilePruner(): "),
    ({"pruner": {"name": "median", "n_warmup_steps": -1}}, "tune.pruner: MedianPruner("),
    ({"spaces": {}}, "Unknown key 'spaces' in tune; did you mean 'space'?"),
])
def test_bad_sections(section, words):
    section = {"space": SPACE, **section}
    if "spaces" in section:
        section.pop("space")
    found = problems(section)
    assert any(words in p for p in found), found


def test_every_problem_is_reported_at_once():
    found = problems({"metric": "nope", "trials": -1,
                      "space": {"model.args.num_expert": {"int": [2, 4]},
                                "training.learning_rate": {"range": [1, 2]}}})
    assert len(found) == 4, found


def test_missing_or_empty_space():
    assert "tune.space is missing" in one_problem({"metric": "mean"})
    assert "tune.space is {}" in one_problem({"space": {}})
    assert "tune is 3; it is a mapping" in problems(3)[0]


# --------------------------------------------------------------------------
# mtrec validate checks the tune section too
# --------------------------------------------------------------------------
def test_validate_reports_the_tune_section(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({**tiny_run_config(), "tune": {"trials": 4,
                                                                  "space": SPACE}}))
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "tune: maximize mean over 4 parameter(s)" in out and "4 trials" in out


def test_validate_refuses_a_bad_tune_section(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({**tiny_run_config(), "tune": {
        "space": {"model.args.num_expert": {"int": [2, 4]}}}}))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mtrec validate: error: ")
    assert "did you mean 'num_experts'" in err[0]
