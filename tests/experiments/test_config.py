"""Run configs: validation with suggestions, overrides, and the dataset registry."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import roc_auc_score

import mtrec
from mtrec.experiments.config import (
    ConfigError, RunConfig, apply_overrides, check_task_references, load_config, parse_config,
    task_reference_problems)
from mtrec.data import registry

CENSUS_CONFIGS = sorted(
    (Path(__file__).resolve().parents[2] / "benchmarks" / "configs" / "census_income")
    .glob("*.yaml"))


def tiny(**sections):
    """A valid config mapping on synthetic_tiny, with sections replaced."""
    config = {
        "dataset": {"name": "synthetic_tiny", "args": {"rows": 500}},
        "model": {"name": "MMoE", "args": {"num_experts": 2, "expert_units": [8],
                                           "tower_units": [4]}},
        "training": {"epochs": 1, "batch_size": 128},
        "output_dir": "unused",
    }
    config.update(sections)
    return config


def problems_of(data, overrides=None):
    with pytest.raises(ConfigError) as caught:
        parse_config(data, overrides=overrides)
    return caught.value.problems


# --------------------------------------------------------------------------
# unknown keys, with the nearest valid key suggested
# --------------------------------------------------------------------------
def test_misspelt_training_key_suggests_the_valid_one():
    data = tiny(training={"epoch": 3})
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    assert caught.value.problems == [
        "Unknown key 'epoch' in training; did you mean 'epochs'?"]
    assert "Unknown key 'epoch' in training; did you mean 'epochs'?" in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_misspelt_keys_at_every_level_are_all_reported():
    data = tiny(training={"epochs": 1, "early_stopping": {"patiance": 1}})
    data["modle"] = {}
    data["evaluation"] = {"group_colum": "x"}
    problems = problems_of(data)
    assert "Unknown key 'modle' at the top level; did you mean 'model'?" in problems
    assert ("Unknown key 'patiance' in training.early_stopping; did you mean "
            "'patience'?") in problems
    assert ("Unknown key 'group_colum' in evaluation; did you mean "
            "'group_column'?") in problems
    assert len(problems) == 3


def test_unknown_key_without_a_close_match_lists_the_valid_keys():
    problems = problems_of(tiny(training={"zzz": 1}))
    assert problems[0].startswith("Unknown key 'zzz' in training; valid keys: epochs, ")


def test_missing_required_section():
    data = tiny()
    del data["model"]
    assert problems_of(data) == ["Missing required key 'model' at the top level."]


def test_values_are_type_checked_without_coercion():
    problems = problems_of(tiny(training={"epochs": "2", "batch_size": 0}))
    assert any(p.startswith("training.epochs: Input should be a valid integer")
               for p in problems)
    assert any(p.startswith("training.batch_size: Input should be greater than or "
                            "equal to 1") for p in problems)


# --------------------------------------------------------------------------
# model, dataset, optimizer and loss weighting names and arguments
# --------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["MMOE", "mmoe", "MMo"])
def test_unknown_model_name_suggests_the_nearest(name):
    problems = problems_of(tiny(model={"name": name}))
    assert problems == [f"Unknown model '{name}' in model.name; did you mean 'MMoE'?"]


def test_unknown_model_argument_suggests_the_nearest():
    problems = problems_of(tiny(model={"name": "PLE", "args": {"num_level": 2,
                                                               "expert_units": [8]}}))
    assert len(problems) == 1
    assert problems[0].startswith("Unknown argument 'num_level' in model.args (model "
                                  "PLE takes num_levels, num_specific_experts, ")
    assert problems[0].endswith("did you mean 'num_levels'?")


def test_model_arguments_follow_each_class_signature():
    # bottom_units is SharedBottom's, not MMoE's
    problems = problems_of(tiny(model={"name": "MMoE", "args": {"bottom_units": [8]}}))
    assert problems[0].startswith("Unknown argument 'bottom_units' in model.args")
    config = parse_config(tiny(model={"name": "SharedBottom",
                                      "args": {"bottom_units": [8]}}))
    assert config.model.args == {"bottom_units": [8]}


def test_unknown_dataset_and_argument_suggest_the_nearest():
    problems = problems_of(tiny(dataset={"name": "synthetic_tyni"}))
    assert problems == ["Unknown dataset 'synthetic_tyni' in dataset.name; did you "
                        "mean 'synthetic_tiny'?"]
    problems = problems_of(tiny(dataset={"name": "synthetic_tiny", "args": {"rowz": 9}}))
    assert problems == ["Unknown argument 'rowz' in dataset.args (dataset "
                        "'synthetic_tiny' takes rows, seed); did you mean 'rows'?"]


def test_unknown_optimizer_suggests_the_nearest():
    problems = problems_of(tiny(training={"optimizer": "adma"}))
    assert problems == ["Unknown optimizer 'adma' in training.optimizer; did you "
                        "mean 'adam'?"]


@pytest.mark.parametrize("weighting", ["fixed", "uncertainty", "dwa", "pcgrad",
                                       {"name": "gradnorm", "alpha": 1.5},
                                       {"name": "dwa", "temperature": 1.0}])
def test_loss_weighting_names_and_mappings(weighting):
    config = parse_config(tiny(training={"loss_weighting": weighting}))
    assert config.training.loss_weighting_argument() == weighting


def test_loss_weighting_problems():
    assert problems_of(tiny(training={"loss_weighting": "gradnrom"})) == [
        "Unknown loss weighting 'gradnrom' in training.loss_weighting; did you "
        "mean 'gradnorm'?"]
    problems = problems_of(tiny(training={"loss_weighting": {"name": "gradnorm",
                                                             "alpa": 1.5}}))
    assert problems == ["Unknown argument 'alpa' in training.loss_weighting (loss "
                        "weighting 'gradnorm' takes alpha, learning_rate); did you "
                        "mean 'alpha'?"]
    problems = problems_of(tiny(training={"loss_weighting": {"alpha": 1.5}}))
    assert "mapping without 'name'" in problems[0]


def test_loss_weights_need_fixed_weighting_and_known_tasks():
    config = parse_config(tiny(training={"loss_weights": {"click": 2.0}}))
    assert config.training.loss_weights == {"click": 2.0}
    problems = problems_of(tiny(training={"loss_weighting": "uncertainty",
                                          "loss_weights": {"click": 2.0}}))
    assert problems == ["training.loss_weights applies to loss_weighting 'fixed' "
                        "only, but loss_weighting is 'uncertainty'; remove "
                        "loss_weights or use loss_weighting: fixed."]
    problems = problems_of(tiny(training={"loss_weights": {"clik": 2.0}}))
    assert problems == ["Unknown task 'clik' in training.loss_weights; did you "
                        "mean 'click'?"]


@pytest.mark.parametrize("monitor", ["mean", "click", "val_loss", "val_like_auc"])
def test_early_stopping_monitors_on_the_validation_split(monitor):
    config = parse_config(tiny(training={"early_stopping": {"monitor": monitor}}))
    assert config.training.early_stopping.monitor == monitor


def test_early_stopping_rejects_training_metrics():
    problems = problems_of(tiny(training={"early_stopping": {"monitor": "loss"}}))
    assert len(problems) == 1
    assert "watches the validation split only" in problems[0]
    problems = problems_of(tiny(training={"early_stopping": {"monitor": "clik"}}))
    assert problems[0].endswith("Did you mean 'click'?")


def test_task_reference_problems():
    assert task_reference_problems({"click": 1.0}, "val_loss", ["click", "like"]) == []
    assert task_reference_problems({}, None, ["click"]) == []
    problems = task_reference_problems({"clik": 1.0, "zzz": 2.0}, "lik", ["click", "like"])
    assert problems == [
        "Unknown task 'clik' in training.loss_weights; did you mean 'click'?",
        "Unknown task 'zzz' in training.loss_weights; tasks: click, like.",
        "training.early_stopping.monitor is 'lik'; early stopping watches the "
        "validation split only: use one of ['mean', 'click', 'like'], or a "
        "validation log key such as 'val_loss'. Did you mean 'like'?"]


def test_task_references_of_a_dataset_without_declared_tasks(monkeypatch):
    """Checked by the runner once the tasks are known, with the same sentences."""
    monkeypatch.setattr(registry, "DATASETS", dict(registry.DATASETS))
    registry.register_dataset("toy_without_tasks")(lambda: None)
    config = parse_config(tiny(dataset={"name": "toy_without_tasks"},
                               training={"loss_weights": {"clik": 2.0},
                                         "early_stopping": {"monitor": "like"}}))
    check_task_references(config, ["clik", "like"])
    with pytest.raises(ConfigError) as caught:
        check_task_references(config, ["click"])
    assert caught.value.problems == task_reference_problems(
        {"clik": 2.0}, "like", ["click"])
    assert len(caught.value.problems) == 2


def test_early_stopping_can_be_disabled():
    assert parse_config(tiny(training={"early_stopping": None})).training \
        .early_stopping is None


# --------------------------------------------------------------------------
# schema overrides
# --------------------------------------------------------------------------
def test_feature_overrides_build_specs():
    config = parse_config(tiny(schema={
        "exclude": ["x2"],
        "features": {"color": {"kind": "categorical", "embedding_dim": 4},
                     "x1": {"kind": "numeric", "log1p": True}}}))
    specs = config.schema_.feature_specs()
    assert specs == {"color": mtrec.Categorical("color", embedding_dim=4),
                     "x1": mtrec.Numeric("x1", log1p=True)}
    assert config.schema_.exclude == ["x2"]


def test_feature_override_problems():
    problems = problems_of(tiny(schema={"features": {
        "color": {"kind": "categorial"},
        "x1": {"kind": "numeric", "log1pp": True},
        "x2": {"kind": "categorical", "embedding_dim": 0},
        "like": {"kind": "numeric"},
        "nokind": {"embedding_dim": 3}}}))
    assert ("Unknown feature kind 'categorial' for schema.features.color; did you "
            "mean 'categorical'?") in problems
    assert ("Unknown key 'log1pp' in schema.features.x1; did you mean "
            "'log1p'?") in problems
    assert ("schema.features.x2: Categorical 'x2' has embedding_dim=0; expected a "
            "positive integer.") in problems
    assert ("schema.features.like: 'like' is a task label of this dataset and "
            "cannot be a feature.") in problems
    assert any(p.startswith("schema.features.nokind needs a 'kind'") for p in problems)
    assert len(problems) == 5


# --------------------------------------------------------------------------
# dotted overrides and files
# --------------------------------------------------------------------------
def test_dotted_overrides_are_parsed_as_yaml():
    config = parse_config(tiny(), overrides=[
        "training.epochs=2", "training.learning_rate=0.01",
        "model.args.expert_units=[32, 16]", "evaluation.group_column=color",
        "training.loss_weighting={name: gradnorm, alpha: 0.5}",
        "schema.features.color.kind=categorical"])
    assert config.training.epochs == 2
    assert config.training.learning_rate == 0.01
    assert config.model.args["expert_units"] == [32, 16]
    assert config.evaluation.group_column == "color"
    assert config.training.loss_weighting == {"name": "gradnorm", "alpha": 0.5}
    assert config.schema_.features["color"].kind == "categorical"


def test_overrides_do_not_change_the_input():
    data = tiny()
    apply_overrides(data, ["training.epochs=7"])
    assert data["training"]["epochs"] == 1


def test_misspelt_override_gets_the_suggestion():
    problems = problems_of(tiny(), overrides=["training.epoch=2"])
    assert problems == ["Unknown key 'epoch' in training; did you mean 'epochs'?"]


@pytest.mark.parametrize("override, message", [
    ("training.epochs", "is not of the form dotted.key=value"),
    ("training..epochs=2", "is not of the form dotted.key=value"),
    ("training.epochs.x=2", "training.epochs is 1, not a mapping"),
])
def test_malformed_overrides(override, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(tiny(), overrides=[override])


def test_load_config_reads_yaml_and_applies_overrides(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(tiny()))
    config = load_config(path, overrides=["training.epochs=4"])
    assert isinstance(config, RunConfig)
    assert config.training.epochs == 4
    assert config.dataset.args == {"rows": 500}


@pytest.mark.parametrize("text, message", [
    ("", "the config file is empty"),
    ("- a\n- b\n", "a config is a mapping of sections"),
    ("dataset: {name: [\n", "not valid YAML at line"),
])
def test_load_config_file_errors(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(path)
    assert str(caught.value).startswith(str(path))


def test_load_config_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="the config file does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_resolved_config_round_trips(tmp_path):
    config = parse_config(tiny(training={"loss_weighting": {"name": "dwa"}},
                               schema={"features": {"x1": {"kind": "numeric"}}}))
    config.to_yaml(tmp_path / "config.yaml")
    again = load_config(tmp_path / "config.yaml")
    assert again == config
    assert again.to_dict()["schema"]["features"]["x1"] == {"kind": "numeric",
                                                           "log1p": False,
                                                           "modality": "tabular",
                                                           "clip": False,
                                                           "encoding": "standardize",
                                                           "num_bins": 16,
                                                           "embedding_dim": 16,
                                                           "num_frequencies": 16,
                                                           "frequency_sigma": 0.1}


# --------------------------------------------------------------------------
# the benchmark configs
# --------------------------------------------------------------------------
def test_every_census_model_has_a_config():
    assert [p.stem for p in CENSUS_CONFIGS] == [
        "cgc", "cross_stitch", "dselect_k", "mmoe", "omoe", "ple", "shared_bottom",
        "shared_private", "single_task"]


@pytest.mark.parametrize("path", CENSUS_CONFIGS, ids=lambda p: p.stem)
def test_census_configs_validate(path):
    config = load_config(path)
    assert config.dataset.name == "census_income"
    assert config.dataset.args["group"] == 1
    assert config.training.seed == 1
    assert config.training.batch_size == 1024
    assert config.training.early_stopping.patience == 2
    assert config.model.name in mtrec.models.MODELS
    assert config.output_dir == f"runs/census_income/{path.stem}"


def test_census_mmoe_config_is_the_readme_example():
    config = load_config(next(p for p in CENSUS_CONFIGS if p.stem == "mmoe"))
    assert config.model.name == "MMoE"
    assert config.model.args == {"num_experts": 8, "expert_units": [16],
                                 "tower_units": [8]}
    assert 0.001 <= config.training.learning_rate <= 0.002
    assert config.training.epochs == 10


# --------------------------------------------------------------------------
# the dataset registry
# --------------------------------------------------------------------------
def test_builtin_datasets_are_registered():
    assert {"census_income", "synthetic_tiny"} <= set(registry.dataset_names())
    assert registry.dataset_task_names("census_income", {"group": 2}) == [
        "education", "marital"]
    assert registry.dataset_task_names("census_income") == ["income", "marital"]


def test_synthetic_tiny_is_seeded_and_learnable():
    a = registry.load_dataset("synthetic_tiny", seed=4)
    b = registry.load_dataset("synthetic_tiny", seed=4)
    c = registry.load_dataset("synthetic_tiny", seed=5)
    pd.testing.assert_frame_equal(a.train, b.train)
    assert not a.train.equals(c.train)
    assert (len(a.train), len(a.valid), len(a.test)) == (2100, 450, 450)
    assert a.tasks == {"click": "binary", "like": "binary"}
    assert list(a.train.columns) == ["color", "x1", "x2", "click", "like"]
    frame = pd.concat([a.train, a.valid, a.test])
    # labels depend on the features
    assert roc_auc_score(frame["click"], frame["x1"]) > 0.7
    assert roc_auc_score(frame["like"], -frame["x2"].fillna(0)) > 0.65
    assert frame["x2"].isna().mean() == pytest.approx(0.05, abs=0.02)


def test_register_dataset_makes_a_name_usable_in_configs(monkeypatch):
    monkeypatch.setattr(registry, "DATASETS", dict(registry.DATASETS))

    @registry.register_dataset("toy_for_test", tasks={"y": "binary"})
    def toy_for_test(n=30):
        frame = pd.DataFrame({"a": np.arange(n, dtype="float32"),
                              "y": np.arange(n) % 2})
        return registry.DatasetSplits(frame, frame, frame, tasks={"y": "binary"},
                                      description="toy")

    splits = registry.load_dataset("toy_for_test", n=10)
    assert len(splits.train) == 10 and splits.description == "toy"
    config = parse_config(tiny(dataset={"name": "toy_for_test", "args": {"n": 12}},
                               training={"loss_weights": {"y": 2.0}}))
    assert config.dataset.args == {"n": 12}
    assert problems_of(tiny(dataset={"name": "toy_for_test"},
                            training={"loss_weights": {"click": 1.0}})) == [
        "Unknown task 'click' in training.loss_weights; tasks: y."]
    with pytest.raises(ValueError, match="already registered"):
        registry.register_dataset("toy_for_test")(lambda: None)


def test_load_dataset_errors():
    with pytest.raises(ValueError, match="Unknown dataset 'census_incom' .did you "
                                         "mean 'census_income'"):
        registry.load_dataset("census_incom")
    with pytest.raises(ValueError, match="takes no argument.s. .'sed'. .did you "
                                         "mean 'seed'"):
        registry.load_dataset("synthetic_tiny", sed=1)
    with pytest.raises(ValueError, match="rows must be an integer >= 20"):
        registry.load_dataset("synthetic_tiny", rows=5)


def test_batch_norm_and_embeddings_initializers_reach_the_model():
    config = parse_config(tiny(
        model={"name": "PLE", "args": {"num_levels": 1, "expert_units": [4],
                                       "tower_units": [2], "batch_norm": True,
                                       "embeddings_initializer": "glorot_uniform"}},
        schema={"features": {"color": {"kind": "categorical",
                                       "embeddings_initializer": "zeros"}}}))
    assert config.model.args["batch_norm"] is True
    specs = config.schema_.feature_specs()
    assert specs["color"].embeddings_initializer == "zeros"
    problems = problems_of(tiny(schema={"features": {
        "color": {"kind": "categorical", "embeddings_initializer": "zeroes"}}}))
    assert problems[0].startswith("schema.features.color: Categorical 'color' has "
                                  "embeddings_initializer 'zeroes', which Keras does not")
    # what the runner does with the config
    data = registry.load_dataset(config.dataset.name, **config.dataset.args)
    schema = mtrec.Schema.infer(data.train, tasks=data.tasks, verbose=False,
                                **specs).adapt(data.train)
    model = mtrec.models.ALL_MODELS[config.model.name](schema, **config.model.args)
    assert model.batch_norm and model.backbone.batch_norm
    assert model.embeddings_initializer == "glorot_uniform"
    assert schema.features_of("categorical")[0].embeddings_initializer == "zeros"


# --------------------------------------------------------------------------
# values `validate` used to pass and `train` refused after loading the data
# --------------------------------------------------------------------------
@pytest.mark.parametrize("args, message", [
    ({"num_experts": "two"}, "model.args.num_experts is 'two'; expected an integer."),
    ({"num_experts": 0}, "model.args.num_experts is 0; a count must be >= 1."),
    ({"dropout": 1.5}, "model.args.dropout is 1.5; a dropout rate is in [0, 1), e.g. 0.1."),
    ({"expert_units": 16}, "model.args.expert_units is 16; expected a list, e.g. [16]."),
    ({"tower_units": [8, 0]}, "model.args.tower_units is [8, 0]; expected a non-empty "
                              "list of layer widths >= 1, e.g. [16]."),
    ({"batch_norm": "yes"}, "model.args.batch_norm is 'yes'; expected true or false."),
])
def test_model_argument_types_and_ranges_are_checked_up_front(args, message):
    assert problems_of(tiny(model={"name": "MMoE", "args": args})) == [message]


def test_a_negative_seed_is_refused():
    problems = problems_of(tiny(training={"seed": -5}))
    assert problems[0].startswith("training.seed: Input should be greater than or equal to 0")


@pytest.mark.parametrize("monitor", ["val_auc", "val_click_rmse", "val_clicks_auc"])
def test_a_monitor_no_epoch_logs_is_refused(monitor):
    """Keras' EarlyStopping only warns on an unknown key and never stops."""
    problems = problems_of(tiny(training={"early_stopping": {"monitor": monitor}}))
    assert len(problems) == 1
    assert f"monitor '{monitor}' is not a key the validation logs have" in problems[0]
    assert "'val_click_auc'" in problems[0]


def test_duplicate_yaml_keys_are_refused_with_both_lines(tmp_path):
    path = tmp_path / "dup.yaml"
    text = yaml.safe_dump(tiny(), sort_keys=False) + "training: {epochs: 3}\n"
    path.write_text(text)
    first, second = [i + 1 for i, line in enumerate(text.splitlines())
                     if line.startswith("training:")]
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert (f"not valid YAML at line {second}, column 1: duplicate key 'training' "
            f"(first given at line {first}); keep one.") in str(caught.value)
    nested = tmp_path / "nested.yaml"
    nested.write_text("dataset: {name: synthetic_tiny}\nmodel: {name: MMoE}\n"
                      "training:\n  epochs: 1\n  epochs: 2\n")
    with pytest.raises(ConfigError, match=r"duplicate key 'epochs' \(first given at line "
                                          r"4\); keep one"):
        load_config(nested)


# --------------------------------------------------------------------------
# a user's own files
# --------------------------------------------------------------------------
def files_config(**dataset):
    return tiny(dataset={"files": "data/all.csv", "split": {"valid": 0.1, "test": 0.1},
                         "tasks": {"click": "binary", "spend": "regression"}, **dataset})


def test_a_files_dataset_parses_with_its_tasks_and_rule():
    config = parse_config(files_config(tasks={"click": "binary",
                                              "spend": {"kind": "regression",
                                                        "label": "amount",
                                                        "mask": "click"}}))
    assert config.dataset.label == "all"
    specs = config.dataset.task_specs()
    assert specs == [mtrec.TaskSpec("click"),
                     mtrec.TaskSpec("spend", kind="regression", label="amount", mask="click")]
    assert config.dataset.split.rule().valid == 0.1
    assert "args" not in config.to_dict()["dataset"]
    assert config.to_dict()["dataset"]["files"] == "data/all.csv"


def test_task_references_are_checked_against_the_files_tasks():
    problems = problems_of(files_config(), overrides=["training.loss_weights.clik=2"])
    assert problems == ["Unknown task 'clik' in training.loss_weights; did you mean 'click'?"]
    # a regression task logs rmse, not auc
    problems = problems_of(files_config(), overrides=[
        "training.early_stopping.monitor=val_spend_auc"])
    assert "did you mean 'val_spend_loss'?" in problems[0].lower() or \
        "'val_spend_rmse'" in problems[0]
    parse_config(files_config(), overrides=["training.early_stopping.monitor=val_spend_rmse"])


@pytest.mark.parametrize("dataset, message", [
    ({"name": "synthetic_tiny", "files": "a.csv"}, "give either name"),
    ({"args": {"rows": 3}}, "give either name"),
    ({"files": "a.csv", "split": {"valid": 0.1}}, "files need tasks"),
    ({"files": "a.csv", "tasks": {"c": "binary"}, "args": {"x": 1}}, "args apply to a "
                                                                     "registered dataset"),
    ({"name": "synthetic_tiny", "tasks": {"c": "binary"}}, "apply to dataset.files only"),
    ({"files": {"train": "a.csv", "tset": "b.csv"}, "tasks": {"c": "binary"}},
     "did you mean 'test'?"),
    ({"files": "a.csv", "tasks": {"c": "binray"}}, "unknown task kind 'binray'; did you "
                                                   "mean 'binary'?"),
    ({"files": "a.csv", "tasks": {"c": "binary"}, "split": {"valid": 0.6, "test": 0.5}},
     "valid + test must be below 1"),
    ({"files": "a.csv", "tasks": {"c": "binary"}, "split": {"test_from": "2024-01-01"}},
     "add time_column"),
    ({"files": "a.csv", "tasks": {"c": "binary"}, "split": {"column": "s", "valid": 0.1}},
     "keep one rule"),
    ({"files": "a.csv", "tasks": {"c": "binary"}, "split": {"seed": 1}},
     "a split rule needs fractions"),
])
def test_files_dataset_problems(dataset, message):
    problems = problems_of(tiny(dataset=dataset))
    assert any(message in p for p in problems), problems


def test_relative_files_are_relative_to_the_config_file(tmp_path, monkeypatch):
    (tmp_path / "conf").mkdir()
    path = tmp_path / "conf" / "run.yaml"
    path.write_text(yaml.safe_dump(files_config(
        files={"train": "data/train-*.csv", "valid": ["v1.csv", "/abs/v2.csv"],
               "test": "~/t.csv"}, split=None)))
    monkeypatch.chdir(tmp_path)
    files = load_config(path).dataset.split_files()
    assert files == {"train": str(tmp_path / "conf" / "data" / "train-*.csv"),
                     "valid": [str(tmp_path / "conf" / "v1.csv"), "/abs/v2.csv"],
                     "test": str(Path("~/t.csv").expanduser())}


def test_dataset_file_problems_name_the_file_and_column(tmp_path):
    from mtrec.experiments.config import dataset_file_problems

    pd.DataFrame({"x": [1, 2], "click": [0, 1], "dya": [1, 2]}).to_csv(
        tmp_path / "all.csv", index=False)
    config = parse_config(tiny(dataset={
        "files": {"train": str(tmp_path / "all.csv"), "test": str(tmp_path / "t-*.csv")},
        "tasks": {"click": "binary", "spend": "regression"},
        "split": {"time_column": "day", "valid": 0.2}}))
    problems = dataset_file_problems(config)
    assert problems == [
        f"{tmp_path / 'all.csv'} has no column 'spend' (the label of task 'spend'); "
        f"columns: x, click, dya.",
        f"{tmp_path / 'all.csv'} has no column 'day' (a column of the split rule); "
        f"did you mean 'dya'?",
        f"dataset.files.test: no file matches the pattern "
        f"'{tmp_path / 't-*.csv'}'."]


# --------------------------------------------------------------------------
# schema defaults: per-kind fields for the features not named in schema.features
# --------------------------------------------------------------------------
def test_schema_defaults_apply_to_every_unnamed_feature_of_their_kind():
    config = parse_config(tiny(schema={
        "defaults": {"categorical": {"embedding_dim": 4},
                     "numeric": {"encoding": "periodic", "frequency_sigma": 0.5}},
        "features": {"x1": {"kind": "numeric", "log1p": True}}}))
    specs = [mtrec.Categorical("color"), mtrec.Categorical("shape", embedding_dim=9),
             mtrec.Numeric("x1"), mtrec.Numeric("x2", clip=True), mtrec.MultiHot("tags")]
    assert config.schema_.with_defaults(specs) == [
        mtrec.Categorical("color", embedding_dim=4),
        mtrec.Categorical("shape", embedding_dim=4),
        mtrec.Numeric("x1"),  # named under features: its entry has the defaults
        mtrec.Numeric("x2", clip=True, encoding="periodic", frequency_sigma=0.5),
        mtrec.MultiHot("tags")]
    # A named entry takes the defaults of the fields it does not set.
    assert config.schema_.feature_specs() == {"x1": mtrec.Numeric(
        "x1", log1p=True, encoding="periodic", frequency_sigma=0.5)}
    own = parse_config(tiny(schema={
        "defaults": {"numeric": {"encoding": "periodic", "frequency_sigma": 0.5}},
        "features": {"x1": {"kind": "numeric", "frequency_sigma": 2.0}}}))
    assert own.schema_.feature_specs()["x1"].frequency_sigma == 2.0
    assert own.schema_.feature_specs()["x1"].encoding == "periodic"


def test_schema_defaults_problems():
    problems = problems_of(tiny(schema={"defaults": {
        "categorial": {"embedding_dim": 4},
        "numeric": {"frequency_sigmaa": 0.5},
        "categorical": {"scenario": True}}}))
    assert len(problems) == 1
    assert "'categorial' is not a feature kind; did you mean 'categorical'?" in problems[0]
    assert "numeric.frequency_sigmaa: Extra inputs are not permitted; did you mean " \
           "'frequency_sigma'?" in problems[0]
    assert "categorical: ['scenario'] describe one column" in problems[0]
    problems = problems_of(tiny(schema={"defaults": {"categorical": {"embedding_dim": 0}}}))
    assert problems == ["schema.defaults.categorical: Categorical '<default>' has "
                        "embedding_dim=0; expected a positive integer."]
    problems = problems_of(tiny(schema={"defaults": {"numeric": {"log1p": "yes"}}}))
    assert problems[0].startswith("schema.defaults: ") and "numeric.log1p" in problems[0]


def test_schema_defaults_reach_the_trained_schema_and_round_trip(tmp_path):
    from mtrec.experiments import runner

    config = parse_config(tiny(
        schema={"defaults": {"categorical": {"embedding_dim": 3},
                             "numeric": {"encoding": "quantile_bins", "num_bins": 4}},
                "features": {"x1": {"kind": "numeric", "encoding": "standardize"}}},
        output_dir=str(tmp_path / "run")))
    again = parse_config(yaml.safe_load(config.to_yaml()))
    assert again.schema_.defaults == config.schema_.defaults
    assert again.schema_.feature_specs() == config.schema_.feature_specs()
    assert config.schema_.feature_specs()["x1"].num_bins == 4
    runner.train(config)
    schema = mtrec.Schema.from_json((tmp_path / "run" / "schema.json").read_text())
    assert {f.embedding_dim for f in schema.features_of("categorical")} == {3}
    numerics = {f.name: f for f in schema.features_of("numeric")}
    assert numerics["x1"].encoding == "standardize"
    assert {f.encoding for name, f in numerics.items() if name != "x1"} == {"quantile_bins"}


def test_empty_schema_defaults_keep_the_fingerprint():
    from mtrec.experiments import run_folder

    plain = parse_config(tiny())
    assert run_folder.config_fingerprint(parse_config(tiny(schema={"defaults": {}}))) == \
        run_folder.config_fingerprint(plain)
    assert run_folder.config_fingerprint(parse_config(tiny(schema={"defaults": {
        "categorical": {"embedding_dim": 4}}}))) != run_folder.config_fingerprint(plain)


def test_a_later_schema_defaults_override_reaches_the_named_entries():
    # The written config must not pin in an entry what it took from
    # defaults (or a spec default it never set): `--set` / a tune key on
    # schema.defaults would then miss the columns named under features.
    config = parse_config(tiny(schema={
        "defaults": {"numeric": {"encoding": "periodic", "frequency_sigma": 0.1}},
        "features": {"x1": {"kind": "numeric", "log1p": True}}}))
    written = config.to_dict()["schema"]["features"]["x1"]
    assert "frequency_sigma" not in written and "encoding" not in written
    assert written["log1p"] is True and written["embedding_dim"] == 16
    again = parse_config(config.to_dict(), overrides=[
        "schema.defaults.numeric.frequency_sigma=0.5"])
    assert again.schema_.feature_specs()["x1"] == mtrec.Numeric(
        "x1", log1p=True, encoding="periodic", frequency_sigma=0.5)
    # as written: only the fields the entry set, so a default the base did
    # not set (embedding_dim) reaches it too.
    assert config.to_dict(as_written=True)["schema"]["features"]["x1"] == {
        "kind": "numeric", "log1p": True}
    wider = parse_config(config.to_dict(as_written=True), overrides=[
        "schema.defaults.numeric.embedding_dim=4"])
    assert wider.schema_.feature_specs()["x1"].embedding_dim == 4
    assert wider.schema_.feature_specs()["x1"].frequency_sigma == 0.1
    # An entry's own value still wins over the defaults.
    own = parse_config(tiny(schema={
        "defaults": {"numeric": {"frequency_sigma": 0.1}},
        "features": {"x1": {"kind": "numeric", "frequency_sigma": 2.0}}}))
    assert parse_config(own.to_dict(), overrides=[
        "schema.defaults.numeric.frequency_sigma=0.5"]).schema_.feature_specs()[
        "x1"].frequency_sigma == 2.0
