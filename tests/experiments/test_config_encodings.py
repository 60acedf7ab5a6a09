"""Run configs take the fields of issue 15: `Numeric(encoding=...)` and
its arguments, `Categorical(oov_rate=...)` as schema overrides, and a
task's `output_range`; wrong values are named before anything runs."""

import pytest

import mtrec
from helpers import tiny_run_config
from mtrec.experiments.config import ConfigError, parse_config


def files_config(tasks):
    config = tiny_run_config()
    config["dataset"] = {"files": "data/all.csv", "split": {"valid": 0.1, "test": 0.1},
                         "tasks": tasks}
    return config


def test_feature_overrides_take_encodings_and_oov_rate():
    config = parse_config(tiny_run_config(), overrides=[
        "schema.features.age={kind: numeric, encoding: piecewise_linear, num_bins: 8}",
        "schema.features.spend={kind: numeric, encoding: periodic, frequency_sigma: 1, "
        "num_frequencies: 4, embedding_dim: 6}",
        "schema.features.city={kind: categorical, oov_rate: 0.05}"])
    specs = config.schema_.feature_specs()
    assert specs["age"] == mtrec.Numeric("age", encoding="piecewise_linear", num_bins=8)
    assert specs["spend"] == mtrec.Numeric("spend", encoding="periodic", frequency_sigma=1.0,
                                           num_frequencies=4, embedding_dim=6)
    assert specs["city"].oov_rate == 0.05


@pytest.mark.parametrize("override, expected", [
    ("{kind: numeric, encoding: bins}", "encoding 'bins'"),
    ("{kind: numeric, num_bins: 0}", "num_bins=0"),
    ("{kind: categorical, oov_rate: 1.5}", "oov_rate=1.5"),
    ("{kind: categorical, num_hash_bins: 8, oov_rate: 0.1}", "no out-of-vocabulary"),
])
def test_bad_feature_overrides_are_named(override, expected):
    with pytest.raises(ConfigError, match=expected):
        parse_config(tiny_run_config(), overrides=[f"schema.features.x={override}"])


def test_a_files_task_takes_an_output_range():
    config = parse_config(files_config(
        {"click": "binary", "spend": {"kind": "regression", "output_range": [0, 100]}}))
    assert config.dataset.task_specs()[1] == mtrec.TaskSpec(
        "spend", "regression", output_range=(0.0, 100.0))


@pytest.mark.parametrize("task, expected", [
    ({"kind": "binary", "output_range": [0, 1]}, "regression head only"),
    ({"kind": "regression", "output_range": [5, 1]}, "low < high"),
    ({"kind": "regression", "output_range": [1]}, "output_range"),
])
def test_bad_output_ranges_are_named(task, expected):
    with pytest.raises(ConfigError, match=expected):
        parse_config(files_config({"click": "binary", "spend": task}))
