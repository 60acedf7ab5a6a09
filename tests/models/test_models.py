"""Every model class: shapes, an exact value, config, .keras and SavedModel round trips."""

import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import mtrec
from helpers import SMALL_MODEL_ARGS, assert_saved_model_parity
from mtrec.layers.feature_embedding import categorical_cardinality
from mtrec.models import MODELS

TASKS = {"click": "binary", "spend": "regression", "grade": "multiclass"}
SMALL = SMALL_MODEL_ARGS


def train_every_model(table, schema, **options):
    """`{name: model}`: every named model, small, trained one epoch (seed 0)."""
    keras.utils.set_random_seed(0)
    data = mtrec.data.from_pandas(table, schema, batch_size=64, shuffle=True, seed=0)
    models = {}
    for name, cls in MODELS.items():
        model = cls(schema, tower_units=[4], **options, **SMALL[name])
        model.compile(optimizer=keras.optimizers.Adam(0.01))
        model.fit(data, epochs=1, verbose=0)
        models[name] = model
    return models


@pytest.fixture(scope="module")
def trained(table, schema):
    """One briefly trained model per class (shared by the tests below)."""
    return train_every_model(table, schema)


@pytest.mark.parametrize("name", list(MODELS))
def test_output_names_and_shapes(trained, table, schema, name):
    out = trained[name].predict_on_batch(schema.raw_features(table.head(5)))
    assert set(out) == {"click", "spend", "grade"}
    assert out["click"].shape == (5,) and out["spend"].shape == (5,)
    assert out["grade"].shape == (5, 3)
    assert np.all((out["click"] > 0) & (out["click"] < 1))


@pytest.mark.parametrize("name", list(MODELS))
def test_exact_value_with_zero_weights(schema, table, name):
    # With every weight zero the heads see zeros: sigmoid(0) = 0.5, a linear
    # head 0, a softmax uniform over 3 classes.
    model = MODELS[name](schema, **SMALL[name])
    for w in model.weights:
        w.assign(np.zeros(w.shape, w.dtype))
    out = model.predict_on_batch(schema.raw_features(table.head(4)))
    np.testing.assert_allclose(out["click"], 0.5)
    np.testing.assert_allclose(out["spend"], 0.0)
    np.testing.assert_allclose(out["grade"], 1 / 3, rtol=1e-6)


@pytest.mark.parametrize("name", list(MODELS))
def test_raw_and_encoded_inputs_agree(trained, table, schema, name):
    model = trained[name]
    raw = schema.raw_features(table.head(16))
    encoded = mtrec.data.encode_features(schema, raw)
    a, b = model.predict_on_batch(raw), model.predict_on_batch(encoded)
    for task in a:
        np.testing.assert_allclose(a[task], b[task], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", list(MODELS))
def test_config_round_trip(trained, name):
    model = trained[name]
    config = model.get_config()
    json.dumps(config)  # plain JSON
    again = type(model).from_config(config)
    assert type(again) is type(model)
    assert again.get_config() == config
    assert again.count_params() == model.count_params()


@pytest.mark.parametrize("name", list(MODELS))
def test_keras_file_round_trip(trained, table, schema, tmp_path, name):
    model = trained[name]
    path = tmp_path / f"{name}.keras"
    model.save(path)
    again = keras.saving.load_model(path)
    assert type(again) is type(model)
    raw = schema.raw_features(table.head(32))
    expected, actual = model.predict_on_batch(raw), again.predict_on_batch(raw)
    for task in expected:
        np.testing.assert_array_equal(actual[task], expected[task])
    # compile state restored: evaluation works without a new compile()
    again.evaluate(mtrec.data.from_pandas(table.head(64), schema), verbose=0)


def test_parameter_counts_follow_architecture(schema):
    emb = mtrec.layers.FeatureEmbedding(schema).output_dim
    towers = sum(  # tower 8 units + head per task (multiclass has 3 outputs)
        (8 * 4 + 4) + (4 * k + k) for k in (1, 1, 3))
    mmoe = MODELS["MMoE"](schema, num_experts=3, expert_units=[8], tower_units=[4])
    ple = MODELS["PLE"](schema, num_levels=1, num_specific_experts=1,
                        num_shared_experts=1, expert_units=[8], tower_units=[4])
    embedding_params = mtrec.models.SharedBottom(schema).embedding.count_params()
    experts = 3 * (emb * 8 + 8)
    gates = 3 * (emb * 3 + 3)
    assert mmoe.count_params() == embedding_params + experts + gates + towers
    # PLE level with 3 tasks: 3 specific + 1 shared experts, 3 gates over 4
    assert ple.count_params() == (embedding_params + 4 * (emb * 8 + 8)
                                  + 3 * (emb * 4 + 4) + towers)


def test_single_task_shares_no_parameters(schema):
    model = MODELS["SingleTask"](schema)
    tables = [w for w in model.weights if "categorical" in w.path]
    assert len(tables) == 3 * len(model.embedding.categorical_groups)


def test_model_rejects_unadapted_schema(table):
    schema = mtrec.Schema.infer(table, tasks={"click": "binary"}, verbose=False)
    with pytest.raises(ValueError, match="adapt"):
        mtrec.models.MMoE(schema)


def test_compile_rejects_unknown_task_weight(schema):
    model = mtrec.models.MMoE(schema, num_experts=2)
    with pytest.raises(ValueError, match="clikc"):
        model.compile(loss_weights={"clikc": 2.0})


# Slow (~35 s: a fresh Python process loads TF and the export); make test-slow. Parity in
# this process is checked by the tests above.
@pytest.mark.slow
def test_saved_model_parity_in_fresh_process(trained, table, schema, tmp_path):
    """Export every model; a fresh Python process loads each with
    tf.saved_model.load and must match the Keras predictions to 1e-5 on raw
    rows including NaN, unseen categories, empty text and a missing vector."""
    rows = table.head(6).copy()
    rows.loc[0, "color"] = "never-seen"
    rows.loc[1, "num"] = np.nan
    rows.loc[2, "title"] = ""
    rows.loc[3, "tags"] = ""
    rows.at[4, "vec"] = None
    rows.loc[5, "user_id"] = 10_000
    raw = schema.raw_features(rows)
    np.savez(tmp_path / "raw.npz", **raw)
    expected = {}
    for name, model in trained.items():
        mtrec.export.saved_model(model, tmp_path / name)
        expected[name] = {k: np.asarray(v).tolist()
                          for k, v in model.predict_on_batch(raw).items()}
    script = textwrap.dedent(f"""
        import json, numpy as np, tensorflow as tf
        raw = dict(np.load({str(tmp_path / 'raw.npz')!r}, allow_pickle=True))
        out = {{}}
        for name in {list(trained)!r}:
            fn = tf.saved_model.load({str(tmp_path)!r} + '/' + name).signatures['serving_default']
            feats = {{k: tf.constant(v.astype(str) if v.dtype == object else v)
                      for k, v in raw.items()}}
            out[name] = {{k: v.numpy().tolist() for k, v in fn(**feats).items()}}
        print(json.dumps(out))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    served = json.loads(result.stdout.strip().splitlines()[-1])
    for name in trained:
        assert set(served[name]) == {"click", "spend", "grade"}
        for task, values in expected[name].items():
            np.testing.assert_allclose(served[name][task], values, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", ["OMoE", "MMoE", "CGC", "PLE"])
def test_gate_weights_match_structure(trained, table, schema, name):
    model = trained[name]
    weights = model.gate_weights(schema.raw_features(table.head(7)))
    structure = model.gate_structure()
    assert list(weights) == [level for level, _, _ in structure]
    for level, gates, experts in structure:
        assert weights[level].shape == (7, len(gates), len(experts))
        np.testing.assert_allclose(weights[level].sum(-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("name", ["SingleTask", "SharedBottom"])
def test_gate_weights_refused_without_gates(trained, table, schema, name):
    with pytest.raises(ValueError, match="no gates"):
        trained[name].gate_weights(schema.raw_features(table.head(2)))


# --------------------------------------------------------------------------
# batch_norm=True in every model
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained_with_batch_norm(table, schema):
    """One briefly trained model per class with batch normalisation."""
    return train_every_model(table, schema, batch_norm=True)


def moving_statistics(layer):
    """`{path: array}` of the batch-norm moving means and variances of a layer."""
    return {w.path: np.asarray(w) for w in layer.non_trainable_weights
            if w.name in ("moving_mean", "moving_variance")}


@pytest.mark.slow  # batch norm: its fixture trains every model again (~50 s); make test-slow
@pytest.mark.parametrize("name", list(MODELS))
def test_batch_norm_is_in_backbone_and_towers_only_when_asked(schema, trained_with_batch_norm,
                                                              name):
    model = trained_with_batch_norm[name]
    assert model.batch_norm and model.get_config()["batch_norm"] is True
    assert moving_statistics(model.backbone) and moving_statistics(model.towers)
    assert not any(w.trainable for w in model.backbone.weights
                   if w.name in ("moving_mean", "moving_variance"))
    plain = MODELS[name](schema, **SMALL[name])
    assert not plain.batch_norm and plain.get_config()["batch_norm"] is False
    assert not moving_statistics(plain)


@pytest.mark.slow  # batch norm: its fixture trains every model again (~50 s); make test-slow
@pytest.mark.parametrize("name", list(MODELS))
def test_fit_updates_the_moving_statistics(trained_with_batch_norm, name):
    statistics = moving_statistics(trained_with_batch_norm[name])
    means = [v for p, v in statistics.items() if p.endswith("moving_mean")]
    variances = [v for p, v in statistics.items() if p.endswith("moving_variance")]
    assert means and len(means) == len(variances)
    # initialised at 0 and 1; one epoch moves every one of them
    assert all(np.any(m != 0.0) for m in means)
    assert all(np.any(v != 1.0) for v in variances)


@pytest.mark.slow  # batch norm: its fixture trains every model again (~50 s); make test-slow
@pytest.mark.parametrize("name", list(MODELS))
def test_batch_norm_uses_batch_statistics_in_training_only(schema, table, name):
    keras.utils.set_random_seed(0)
    model = MODELS[name](schema, batch_norm=True, **SMALL[name])
    raw = schema.raw_features(table.head(16))
    inference = model(raw, training=False)
    again = model(raw, training=False)
    training = model(raw, training=True)
    np.testing.assert_array_equal(np.asarray(inference["spend"]), np.asarray(again["spend"]))
    assert not np.allclose(np.asarray(training["spend"]), np.asarray(inference["spend"]))


@pytest.mark.slow  # batch norm: its fixture trains every model again (~50 s); make test-slow
@pytest.mark.parametrize("name", list(MODELS))
def test_batch_norm_config_and_keras_file_round_trips(trained_with_batch_norm, table,
                                                      schema, tmp_path, name):
    model = trained_with_batch_norm[name]
    config = model.get_config()
    json.dumps(config)
    rebuilt = type(model).from_config(config)
    assert rebuilt.get_config() == config and rebuilt.batch_norm
    assert rebuilt.count_params() == model.count_params()
    path = tmp_path / f"{name}.keras"
    model.save(path)
    again = keras.saving.load_model(path)
    assert type(again) is type(model) and again.batch_norm
    # the moving statistics are saved, so inference agrees exactly
    expected, loaded = moving_statistics(model), moving_statistics(again)
    assert list(loaded) == list(expected)
    for key in expected:
        np.testing.assert_array_equal(loaded[key], expected[key])
    raw = schema.raw_features(table.head(32))
    a, b = model.predict_on_batch(raw), again.predict_on_batch(raw)
    for task in a:
        np.testing.assert_array_equal(b[task], a[task])


@pytest.mark.slow  # batch norm: its fixture trains every model again (~50 s); make test-slow
def test_batch_norm_saved_model_parity_in_fresh_process(trained_with_batch_norm, table,
                                                        schema, tmp_path):
    assert_saved_model_parity(trained_with_batch_norm["MMoE"],
                              schema.raw_features(table.head(8)), tmp_path)


# --------------------------------------------------------------------------
# embeddings_initializer of the model
# --------------------------------------------------------------------------
def embedding_tables(model):
    """The categorical and multi-hot tables of every embedding of a model."""
    return [w for w in model.weights
            if w.name == "embeddings" and ("categorical" in w.path or "multihot" in w.path)]


@pytest.mark.parametrize("name", list(MODELS))
def test_model_embeddings_initializer_reaches_every_table(schema, name):
    model = MODELS[name](schema, embeddings_initializer="ones", **SMALL[name])
    tables = embedding_tables(model)
    # SingleTask: one embedding per task, all initialised alike
    assert len(tables) == (3 if name == "SingleTask" else 1) * 2
    for table in tables:
        np.testing.assert_array_equal(np.asarray(table), 1.0)
    config = model.get_config()
    assert config["embeddings_initializer"] == "ones"
    assert type(model).from_config(config).embeddings_initializer == "ones"


def test_model_embeddings_initializer_defaults_to_keras_uniform(schema):
    model = MODELS["MMoE"](schema, **SMALL["MMoE"])
    assert model.get_config()["embeddings_initializer"] == "uniform"
    for table in embedding_tables(model):
        values = np.asarray(table)
        assert np.all(np.abs(values) <= 0.05) and np.unique(values).size > 1


def test_a_features_initializer_beats_the_models(table):
    schema = mtrec.Schema.infer(table, tasks=TASKS, verbose=False,
                                tags=mtrec.MultiHot("tags"), title=mtrec.Text("title"),
                                color=mtrec.Categorical("color", embeddings_initializer="zeros"))
    schema.adapt(table)
    model = MODELS["MMoE"](schema, embeddings_initializer="ones", **SMALL["MMoE"])
    layer = model.embedding
    categorical = [spec.name for spec in schema.features_of("categorical")]
    (positions, offsets, table_layer), = layer.categorical_groups
    values = np.asarray(table_layer.embeddings)
    sizes = [categorical_cardinality(schema, schema.features_of("categorical")[p])
             for p in positions]
    for position, offset, size in zip(positions, offsets, sizes):
        expected = 0.0 if categorical[position] == "color" else 1.0
        np.testing.assert_array_equal(values[offset:offset + size], expected)


def test_a_bad_model_initializer_is_named(schema):
    with pytest.raises(ValueError, match="MMoE has embeddings_initializer 'glorot', which "
                                         "Keras does not read as an initializer"):
        MODELS["MMoE"](schema, embeddings_initializer="glorot")
    with pytest.raises(ValueError, match="batch_norm must be True or False"):
        MODELS["PLE"](schema, batch_norm="yes")
