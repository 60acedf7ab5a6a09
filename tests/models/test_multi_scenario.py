"""STAR and PEPNet as models: the scenario feature of the schema, scenario ids
reach the backbone, unseen scenarios, round trips, run configs, export."""

import json

import keras
import numpy as np
import pandas as pd
import pytest

import mtrec
from helpers import assert_saved_model_parity, tiny_run_config
from mtrec.experiments.config import parse_config
from mtrec.layers.feature_preprocessing import CATEGORICAL_KEY

TASKS = {"click": "binary", "spend": "regression"}
SMALL = {"STAR": dict(star_units=[8], tower_units=[4]),
         "PEPNet": dict(ppnet_units=[8, 4], prior_features=["user"], prior_dim=2,
                        gate_units=4)}


def scenario_table(rows=400, seed=0):
    """Three departments whose labels depend on `x` with opposite signs."""
    rng = np.random.default_rng(seed)
    department = rng.choice(["dresses", "tops", "bottoms"], rows)
    x = rng.normal(size=rows).astype("float32")
    sign = np.select([department == "dresses", department == "tops"], [1.0, -1.0], 0.5)
    logit = sign * 2.0 * x
    return pd.DataFrame({
        "department": department.astype(object),
        "user": rng.integers(0, 20, rows).astype(str).astype(object),
        "x": x,
        "click": (logit + rng.normal(scale=0.5, size=rows) > 0).astype("int64"),
        "spend": (logit + rng.normal(size=rows)).astype("float64"),
    })


@pytest.fixture(scope="module")
def table():
    return scenario_table()


@pytest.fixture(scope="module")
def schema(table):
    return mtrec.Schema([mtrec.Categorical("department", embedding_dim=2, scenario=True),
                         mtrec.Categorical("user", embedding_dim=2), mtrec.Numeric("x")],
                        TASKS).adapt(table)


@pytest.fixture(scope="module")
def trained(table, schema):
    keras.utils.set_random_seed(0)
    data = mtrec.data.from_pandas(table, schema, batch_size=64, shuffle=True, seed=0)
    models = {}
    for name, args in SMALL.items():
        model = mtrec.models.MODELS[name](schema, **args)
        model.compile(optimizer=keras.optimizers.Adam(0.01))
        model.fit(data, epochs=10, verbose=0)
        models[name] = model
    return models


# -- the schema ----------------------------------------------------------------
def test_scenario_flag_round_trips_and_leaves_other_schemas_unchanged(schema):
    again = mtrec.Schema.from_json(schema.to_json())
    assert again == schema and again.scenario_feature.name == "department"
    written = json.loads(schema.to_json())["features"]
    assert written[0]["scenario"] is True and "scenario" not in written[1]
    plain = mtrec.Schema([mtrec.Categorical("department")], TASKS)
    assert plain.scenario_feature is None
    assert "scenario" not in plain.to_json()
    # the dict (the run's fingerprint, the .keras config) is what it was
    assert plain.to_dict()["features"][0] == {
        "kind": "categorical", "name": "department", "embedding_dim": 16,
        "max_tokens": None, "min_frequency": 1, "num_hash_bins": None,
        "dtype": "string", "modality": "tabular"}


def test_schema_refuses_two_scenarios_and_a_non_bool_flag():
    with pytest.raises(ValueError, match="at most one scenario"):
        mtrec.Schema([mtrec.Categorical("a", scenario=True),
                      mtrec.Categorical("b", scenario=True)], TASKS)
    with pytest.raises(ValueError, match="scenario='false'"):
        mtrec.Schema([mtrec.Categorical("a", scenario="false")], TASKS)


def test_run_config_marks_the_scenario_and_builds_the_models(table):
    config = tiny_run_config()
    config["schema"] = {"features": {"department": {"kind": "categorical",
                                                    "scenario": True}}}
    config["model"] = {"name": "STAR", "args": {"star_units": [8]}}
    parsed = parse_config(config)
    specs = parsed.schema_.feature_specs()
    assert specs["department"].scenario is True
    schema = mtrec.Schema.infer(table, tasks=TASKS, verbose=False, **specs).adapt(table)
    model = mtrec.models.ALL_MODELS[parsed.model.name](schema, **parsed.model.args)
    assert isinstance(model, mtrec.models.STAR) and model.scenario == "department"


# -- the models ------------------------------------------------------------------
@pytest.mark.parametrize("name", list(SMALL))
def test_a_model_needs_a_scenario(table, name):
    schema = mtrec.Schema([mtrec.Categorical("department"), mtrec.Categorical("user"),
                           mtrec.Numeric("x")], TASKS).adapt(table)
    with pytest.raises(ValueError, match="scenario=True"):
        mtrec.models.MODELS[name](schema)
    with pytest.raises(ValueError, match="scenario='x'"):
        mtrec.models.MODELS[name](schema, scenario="x")
    # naming one works without the flag
    assert mtrec.models.MODELS[name](schema, scenario="user", **(
        {} if name == "STAR" else {"prior_features": ["department"]})).scenario == "user"


def test_pepnet_prior_features_are_checked(schema):
    with pytest.raises(ValueError, match="not categorical"):
        mtrec.models.PEPNet(schema, prior_features=["x"])
    with pytest.raises(ValueError, match="in prior_features"):
        mtrec.models.PEPNet(schema, prior_features=["department"])


@pytest.mark.parametrize("name", list(SMALL))
def test_scenario_ids_pick_the_parameters(trained, table, schema, name):
    model = trained[name]
    raw = schema.raw_features(table.head(8))
    encoded = mtrec.data.encode_features(schema, raw)
    ids = np.asarray(model.context_ids(encoded))
    np.testing.assert_array_equal(ids[:, 0], np.asarray(encoded[CATEGORICAL_KEY])[:, 0])
    # the same rows in another department: other predictions; the same: same
    moved = dict(raw, department=np.where(raw["department"] == "tops", "dresses",
                                          "tops").astype(object))
    a, b = model.predict_on_batch(raw), model.predict_on_batch(moved)
    np.testing.assert_array_equal(a["click"], model.predict_on_batch(raw)["click"])
    assert np.abs(a["click"] - b["click"]).min() > 0


@pytest.mark.parametrize("name", list(SMALL))
def test_trained_models_learn_the_opposite_departments(trained, table, schema, name):
    # dresses: click rises with x; tops: it falls (only the scenario tells)
    raw = schema.raw_features(table)
    out = trained[name].predict_on_batch(raw)["click"]
    for department, sign in (("dresses", 1), ("tops", -1)):
        rows = table["department"].to_numpy() == department
        corr = np.corrcoef(table["x"].to_numpy()[rows], out[rows])[0, 1]
        assert sign * corr > 0.5


def test_unseen_scenario_gets_the_oov_parameters(trained, table, schema):
    raw = schema.raw_features(table.head(4))
    unseen = dict(raw, department=np.array(["shoes"] * 4, object))
    encoded = mtrec.data.encode_features(schema, unseen)
    assert np.asarray(trained["STAR"].context_ids(encoded))[:, 0].tolist() == [0] * 4
    star = trained["STAR"].backbone
    # OOV id 0 never trained: its star weights are the initial ones
    np.testing.assert_array_equal(np.asarray(star.scenario_kernels[0])[0], 1.0)
    np.testing.assert_array_equal(np.asarray(star.scenario_biases[0])[0], 0.0)
    assert np.asarray(star.normalization.seen).tolist()[0] == 0.0
    for model in trained.values():
        assert np.isfinite(model.predict_on_batch(unseen)["click"]).all()


def test_pepnet_scenario_gates(trained, table, schema):
    gates = trained["PEPNet"].scenario_gates(schema.raw_features(table.head(5)))
    input_dim = trained["PEPNet"].embedding.output_dim
    assert gates["epnet"].shape == (5, input_dim)
    assert gates["task_1_gate_1"].shape == (5, 4)
    assert all(np.all((g > 0) & (g < 2)) for g in gates.values())


@pytest.mark.parametrize("name", list(SMALL))
def test_config_and_keras_file_round_trips(trained, table, schema, tmp_path, name):
    model = trained[name]
    config = model.get_config()
    json.dumps(config)
    rebuilt = type(model).from_config(config)
    assert rebuilt.get_config() == config and rebuilt.count_params() == model.count_params()
    model.save(tmp_path / "model.keras")
    again = keras.saving.load_model(tmp_path / "model.keras")
    assert type(again) is type(model) and again.scenario == "department"
    raw = schema.raw_features(table.head(32))
    expected, actual = model.predict_on_batch(raw), again.predict_on_batch(raw)
    for task in expected:
        np.testing.assert_array_equal(actual[task], expected[task])


@pytest.mark.slow  # one export and a fresh process per model (~15 s each)
@pytest.mark.parametrize("name", list(SMALL))
def test_saved_model_parity(trained, table, schema, tmp_path, name):
    rows = table.head(6).copy()
    rows.loc[0, "department"] = "never-seen"
    rows.loc[1, "user"] = "new-user"
    rows.loc[2, "x"] = np.nan
    assert_saved_model_parity(trained[name], schema.raw_features(rows), tmp_path)
