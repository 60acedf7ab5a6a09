"""Models over text and vector side features: fusion modes, modality dropout,
missing modalities, round trips, SavedModel parity and gate naming."""

import json

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import mtrec
from mtrec.experiments.config import ConfigError, parse_config
from mtrec.evaluation.gate_diagnostics import gates as gate_report
from mtrec.models import CGC, MMoE, OMoE, PLE, SharedBottom, SingleTask
from mtrec.schema import collapse_vector_columns

SMALL = dict(tower_units=[4])
TASKS = {"click": "binary", "spend": "regression", "grade": "multiclass"}


@pytest.fixture(scope="module")
def mm_table(table):
    """The shared table with more empty titles and some missing vectors."""
    df = table.copy()
    df.loc[::5, "title"] = ""
    df.loc[1::9, "title"] = None
    df["vec"] = [None if i % 7 == 0 else v for i, v in enumerate(df["vec"])]
    return df


@pytest.fixture(scope="module")
def mm_schema(mm_table):
    return mtrec.Schema.infer(
        mm_table, tasks=TASKS, verbose=False, tags=mtrec.MultiHot("tags"),
        title=mtrec.Text("title", embedding_dim=4, encoder="transformer",
                         pooling="attention"),
        vec=mtrec.Vector("vec", projection_dim=4, normalize=True)).adapt(mm_table)


@pytest.fixture(scope="module")
def rows(mm_table):
    """Raw rows with every kind of missing modality and unseen words."""
    df = mm_table.head(6).copy()
    df.loc[0, "title"] = "never seen words"
    df.at[0, "vec"] = np.array([1.0, -2.0, 0.5, 3.0], "float32")
    df.loc[3, "title"] = "lovely soft"
    df.loc[5, "title"] = "Runs small!"
    df.loc[1, "title"] = ""
    df.loc[2, "title"] = None
    df.at[3, "vec"] = None
    df.loc[4, "title"] = "!!!"
    df.at[4, "vec"] = None
    return df


def randomized(model, seed):
    """`model` with every weight drawn at random (instead of a costly fit)."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        w.assign(rng.normal(scale=0.3, size=w.shape).astype(w.dtype))
    return model


@pytest.fixture(scope="module")
def trained(mm_table, mm_schema):
    """One briefly trained model (modality experts with modality dropout:
    fit must work in graph mode), and two with random weights."""
    keras.utils.set_random_seed(0)
    data = mtrec.data.from_pandas(mm_table, mm_schema, batch_size=64, shuffle=True, seed=0)
    mmoe = MMoE(mm_schema, num_experts=2, expert_units=[4], fusion="modality_experts",
                modality_dropout=0.3, **SMALL)
    mmoe.compile(optimizer=keras.optimizers.Adam(0.01))
    history = mmoe.fit(data, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    return {
        "mmoe_experts": mmoe,
        "ple_experts": randomized(PLE(
            mm_schema, num_levels=2, num_specific_experts=1, num_shared_experts=1,
            expert_units=[4], fusion="modality_experts", **SMALL), seed=1),
        "cgc_gated": randomized(CGC(
            mm_schema, num_specific_experts=1, num_shared_experts=1, expert_units=[4],
            fusion="gated", modality_dropout=0.2, **SMALL), seed=2),
    }


def predict(model, features):
    """Eager call: tiny batches need no traced predict function."""
    return {k: np.asarray(v) for k, v in model(features, training=False).items()}


def check_outputs(out, rows):
    assert set(out) == {"click", "spend", "grade"}
    assert out["click"].shape == (rows,) and out["spend"].shape == (rows,)
    assert out["grade"].shape == (rows, 3)
    assert all(np.isfinite(v).all() for v in out.values())


# -- shapes, raw/encoded, config ------------------------------------------------------
def test_trained_outputs_and_encoded_inputs(trained, mm_schema, rows):
    raw = mm_schema.raw_features(rows)
    encoded = mtrec.data.encode_features(mm_schema, raw)
    for model in trained.values():
        out = predict(model, raw)
        check_outputs(out, len(rows))
        again = predict(model, encoded)
        for task in out:
            np.testing.assert_allclose(out[task], again[task], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("build", [
    lambda s: OMoE(s, num_experts=1, expert_units=[3], fusion="modality_experts", **SMALL),
    lambda s: MMoE(s, num_experts=2, expert_units=[3], fusion="gated", **SMALL),
    lambda s: SharedBottom(s, bottom_units=[4], fusion="gated", **SMALL),
], ids=["omoe-experts", "mmoe-gated", "shared-bottom-gated"])
def test_other_models_and_fusions(mm_schema, rows, build):
    model = build(mm_schema)
    check_outputs(predict(model, mm_schema.raw_features(rows)), len(rows))


@pytest.mark.parametrize("name", ["mmoe_experts", "ple_experts", "cgc_gated"])
def test_config_round_trip(trained, name):
    model = trained[name]
    config = model.get_config()
    json.dumps(config)
    again = type(model).from_config(config)
    assert again.get_config() == config
    assert again.fusion == model.fusion and again.modality_dropout == model.modality_dropout
    assert again.count_params() == model.count_params()
    assert again.gate_structure() == model.gate_structure()


def test_run_config_takes_fusion():
    base = {"dataset": {"name": "synthetic_tiny"}}
    config = parse_config({**base, "model": {"name": "PLE", "args": {
        "fusion": "modality_experts", "modality_dropout": 0.1}}})
    assert config.model.args["fusion"] == "modality_experts"
    with pytest.raises(ConfigError, match="did you mean 'fusion'"):
        parse_config({**base, "model": {"name": "MMoE", "args": {"fusoin": "gated"}}})


def test_fusion_errors(mm_schema):
    with pytest.raises(ValueError, match=r"fusion must be one of \['concat', 'gated'"):
        MMoE(mm_schema, fusion="stack")
    with pytest.raises(ValueError, match="modalities=modality_groups\(schema\) \(MMoE, OMoE, CGC"):
        SharedBottom(mm_schema, fusion="modality_experts")
    with pytest.raises(ValueError, match="SingleTask embeds the features its own way"):
        SingleTask(mm_schema, fusion="gated")


# -- gated fusion ---------------------------------------------------------------
def test_gated_weights_sum_to_one(trained, mm_schema, rows):
    weights = trained["cgc_gated"].fusion_weights(mm_schema.raw_features(rows))
    assert list(weights) == ["tabular", "text", "image"]
    stacked = np.stack(list(weights.values()), axis=1)
    assert stacked.shape == (len(rows), 3)
    np.testing.assert_allclose(stacked.sum(1), 1.0, rtol=1e-5)
    assert np.ptp(stacked) > 1e-3  # a non-zero gate weighs groups per example
    with pytest.raises(ValueError, match="fusion='gated'"):
        trained["mmoe_experts"].fusion_weights(mm_schema.raw_features(rows))


# -- missing modalities and modality dropout ------------------------------------------
def test_missing_modalities_use_the_learned_missing_embeddings(trained, mm_schema, rows):
    model = trained["mmoe_experts"]
    encoded = mtrec.data.encode_features(mm_schema, mm_schema.raw_features(rows))
    tabular, text, image = (np.asarray(g) for g in
                            model.embedding(encoded, grouped=True))
    missing_text = np.asarray(model.embedding.text_encoders[0].missing)
    missing_vector = np.asarray(model.embedding.vector_missing[0])
    # learned: they started at zero and training moved them
    assert np.abs(missing_text).sum() > 0 and np.abs(missing_vector).sum() > 0
    # rows 1, 2 (empty, None) and 4 (punctuation only) have no text token
    for i in range(len(rows)):
        assert np.array_equal(text[i], missing_text) == (i in (1, 2, 4))
        assert np.array_equal(image[i], np.append(missing_vector, 1.0)) == (i in (3, 4))


def test_modality_dropout_is_inactive_outside_training(trained, mm_schema, rows):
    model = trained["mmoe_experts"]
    raw = mm_schema.raw_features(rows)
    clone = MMoE.from_config({**model.get_config(), "modality_dropout": 0.0})
    clone.set_weights(model.get_weights())
    expected = clone(raw, training=False)
    for _ in range(2):
        out = model(raw, training=False)
        for task in expected:
            np.testing.assert_array_equal(np.asarray(out[task]), np.asarray(expected[task]))


def test_modality_dropout_one_means_every_example_is_missing(mm_schema, rows):
    keras.utils.set_random_seed(1)
    model = MMoE(mm_schema, num_experts=1, expert_units=[3], fusion="modality_experts",
                 modality_dropout=1.0, **SMALL)
    raw = mm_schema.raw_features(rows)
    without = rows.copy()
    without["title"] = ""
    without["vec"] = None
    dropped = model(raw, training=True)
    expected = model(mm_schema.raw_features(without), training=False)
    for task in expected:
        np.testing.assert_allclose(np.asarray(dropped[task]), np.asarray(expected[task]),
                                   rtol=1e-6)
    assert not np.allclose(np.asarray(model(raw, training=False)["spend"]),
                           np.asarray(expected["spend"]))


# -- saving and serving -----------------------------------------------------------
@pytest.mark.parametrize("name", ["mmoe_experts", "ple_experts", "cgc_gated"])
def test_keras_file_round_trip(trained, mm_schema, rows, tmp_path, name):
    model = trained[name]
    model.save(tmp_path / f"{name}.keras")
    again = keras.saving.load_model(tmp_path / f"{name}.keras")
    assert type(again) is type(model) and again.fusion == model.fusion
    raw = mm_schema.raw_features(rows)
    expected, actual = predict(model, raw), predict(again, raw)
    for task in expected:
        np.testing.assert_array_equal(actual[task], expected[task])


def test_saved_model_parity_with_raw_strings_and_missing_modalities(
        trained, mm_schema, rows, tmp_path):
    raw = mm_schema.raw_features(rows)
    feeds = {k: tf.constant(v.astype(str) if v.dtype == object else v)
             for k, v in raw.items()}
    assert feeds["title"].dtype == tf.string and np.isnan(raw["vec"][3]).all()
    # the richest model: transformer text, normalised vector, modality
    # experts, modality dropout (inactive when served)
    model = trained["mmoe_experts"]
    mtrec.export.saved_model(model, tmp_path / "model")
    serve = tf.saved_model.load(str(tmp_path / "model")).signatures["serving_default"]
    served = serve(**feeds)
    expected = predict(model, raw)
    assert set(served) == set(expected)
    for task in expected:
        np.testing.assert_allclose(served[task].numpy(), expected[task], atol=1e-5, rtol=0)
    # a request where every row lacks both modalities
    empty = {**feeds, "title": tf.constant([""] * len(rows)),
             "vec": tf.constant(np.full(raw["vec"].shape, np.nan, "float32"))}
    served = serve(**empty)
    without = rows.assign(title="", vec=None)
    expected = predict(model, mm_schema.raw_features(without))
    for task in expected:
        np.testing.assert_allclose(served[task].numpy(), expected[task], atol=1e-5, rtol=0)


# -- gate naming and diagnostics ----------------------------------------------------
def test_gate_structure_names_modality_experts(trained, mm_schema, mm_table):
    (level, gate_names, experts), = trained["mmoe_experts"].gate_structure()
    assert gate_names == ["click", "spend", "grade"]
    assert experts == ["tabular_0", "tabular_1", "text_0", "text_1", "image_0", "image_1"]
    first, second = trained["ple_experts"].gate_structure()
    assert first == ("level_0", ["click", "spend", "grade", "shared"],
                     ["click_0", "spend_0", "grade_0", "tabular_0", "text_0", "image_0"])
    assert second[0] == "level_1" and second[2][-1] == "shared_0"

    report = gate_report(trained["ple_experts"], mm_table, collapse_threshold=1.0)
    usage = report.usage.loc["level_0"].dropna(axis=1, how="all")
    assert {"text_0", "image_0", "tabular_0"} <= set(usage.columns)
    # task gates cannot see other tasks' experts; modality groups they can
    visible = report.visible.loc["level_0"]
    assert not visible.loc["click", "spend_0"] and visible.loc["click", "image_0"]
    per_modality = usage[["tabular_0", "text_0", "image_0"]]
    assert (per_modality.sum(axis=1) > 0).all()
    np.testing.assert_allclose(usage.sum(axis=1), 1.0, rtol=1e-5)


def test_gradnorm_finds_the_shared_experts(trained):
    assert len(trained["mmoe_experts"].shared_variables()) == 6  # 3 banks x (W, b)
    assert len(trained["ple_experts"].shared_variables()) == 2   # last level: plain CGC


# -- vector columns ------------------------------------------------------------------
def test_collapse_vector_columns_orders_by_index_and_marks_missing():
    df = pd.DataFrame({"id": [1, 2, 3], **{f"img_{i}": [float(i), i + 0.5, np.nan]
                                             for i in (10, 2, 0, 1, 3, 4, 5, 6, 7, 8, 9)}})
    out = collapse_vector_columns(df, "img_")
    assert list(out.columns) == ["id", "img"]
    np.testing.assert_array_equal(out["img"][0], np.arange(11, dtype="float32"))
    assert out["img"][2] is None
    schema = mtrec.Schema([mtrec.Vector("img")], {"id": "regression"}).adapt(out)
    assert schema.stats["img"]["dim"] == 11
    assert np.isnan(schema.raw_features(out)["img"][2]).all()
    with pytest.raises(ValueError, match=r"numbered 0..n-1 .*missing \[1\]"):
        collapse_vector_columns(df.drop(columns="img_1"), "img_")
    with pytest.raises(ValueError, match="No columns named 'emb_<i>'"):
        collapse_vector_columns(df, "emb_")


def test_parquet_list_column_is_a_vector(tmp_path):
    df = pd.DataFrame({"emb": [[0.1, 0.2, 0.3], None, [1.0, 2.0, 3.0]], "y": [0, 1, 1]})
    df.to_parquet(tmp_path / "v.parquet")
    back = pd.read_parquet(tmp_path / "v.parquet")
    schema = mtrec.Schema.infer(back, tasks={"y": "binary"}, verbose=False).adapt(back)
    assert schema.feature("emb").kind == "vector" and schema.stats["emb"]["dim"] == 3
    raw = schema.raw_features(back)["emb"]
    assert raw.shape == (3, 3) and np.isnan(raw[1]).all()
