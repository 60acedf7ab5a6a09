"""Every model class: shapes, an exact value, config, .keras and SavedModel round trips."""

import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import mtrec
from mtrec.models import MODELS

SMALL = {
    "SingleTask": dict(bottom_units=[8]),
    "SharedBottom": dict(bottom_units=[8]),
    "OMoE": dict(num_experts=3, expert_units=[4]),
    "MMoE": dict(num_experts=3, expert_units=[4]),
    "CGC": dict(num_specific_experts=1, num_shared_experts=2, expert_units=[4]),
    "PLE": dict(num_levels=2, num_specific_experts=1, num_shared_experts=1,
                expert_units=[4]),
}


@pytest.fixture(scope="module")
def trained(table, schema):
    """One briefly trained model per class (shared by the tests below)."""
    keras.utils.set_random_seed(0)
    data = mtrec.data.from_pandas(table, schema, batch_size=64, shuffle=True, seed=0)
    models = {}
    for name, cls in MODELS.items():
        model = cls(schema, tower_units=[4], **SMALL[name])
        model.compile(optimizer=keras.optimizers.Adam(0.01))
        model.fit(data, epochs=1, verbose=0)
        models[name] = model
    return models


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
