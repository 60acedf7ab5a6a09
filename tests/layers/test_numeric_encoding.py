"""Numeric encodings in the graph (`mtrec.layers.numeric_encoding`): the
bin codes by hand, NaN and out-of-range values through
FeaturePreprocessing, the periodic embedding's shape and weights, and how
FeatureEmbedding lays the encoded features out."""

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import mtrec
from mtrec.layers import FeatureEmbedding, FeaturePreprocessing
from mtrec.layers.feature_preprocessing import NUMERIC_KEY, numeric_code_key
from mtrec.layers.numeric_encoding import (
    NumericEmbedding, piecewise_linear_code, quantile_bin_code)
from mtrec.schema import Numeric

EDGES = np.array([0.0, 1.0, 3.0, 7.0], "float32")
X = np.array([-1.0, 0.0, 0.5, 1.0, 2.0, 3.0, 5.0, 7.0, 100.0], "float32")


def test_piecewise_linear_code_by_hand():
    code = piecewise_linear_code(tf.constant(X), EDGES).numpy()
    # bins [0, 1), [1, 3), [3, 7): 1 past the bin, 0 before it, the fraction inside
    expected = [[0, 0, 0],           # -1: below every bin
                [0, 0, 0],           # 0: at the first left edge
                [0.5, 0, 0],
                [1, 0, 0],
                [1, 0.5, 0],         # 2 = 1 + 0.5 * (3 - 1)
                [1, 1, 0],
                [1, 1, 0.5],         # 5 = 3 + 0.5 * (7 - 3)
                [1, 1, 1],
                [1, 1, 1]]           # 100: out of range, stays 1
    np.testing.assert_array_equal(code, np.array(expected, "float32"))


def test_quantile_bin_code_by_hand():
    code = quantile_bin_code(tf.constant(X), EDGES).numpy()
    # below the first edge -> first bin; at or past the last -> last bin
    index = [0, 0, 0, 1, 1, 2, 2, 2, 2]
    np.testing.assert_array_equal(code, np.eye(3, dtype="float32")[index])


@pytest.fixture(scope="module")
def encoded_schema():
    rng = np.random.default_rng(0)
    n = 400
    df = pd.DataFrame({
        "p": rng.normal(size=n).astype("float32"),
        "q": rng.integers(0, 6, n).astype("float32"),
        "r": rng.exponential(3.0, n).astype("float32"),
        "s": rng.normal(size=n).astype("float32"),
        "click": rng.integers(0, 2, n)})
    schema = mtrec.Schema(
        [Numeric("p", encoding="piecewise_linear", num_bins=4, embedding_dim=3),
         Numeric("q", encoding="quantile_bins", embedding_dim=2),
         Numeric("r", encoding="periodic", log1p=True, num_frequencies=5, embedding_dim=4),
         Numeric("s")],
        {"click": "binary"}).adapt(df)
    return df, schema


def test_preprocessing_codes_nan_as_zero_and_out_of_range_as_the_ends(encoded_schema):
    _, schema = encoded_schema
    edges = np.array(schema.stats["p"]["bin_edges"], "float32")
    raw = {"p": np.array([np.nan, -1e30, 1e30, np.inf, edges[2]], "float32"),
           "q": np.array([np.nan, -50.0, 50.0, 2.0, 0.0], "float32"),
           "r": np.array([np.nan, -1e30, 1e30, 1.0, 0.0], "float32"),
           "s": np.zeros(5, "float32")}
    out = {k: np.asarray(v) for k, v in FeaturePreprocessing(schema)(raw).items()}
    p = out[numeric_code_key("p")]
    assert p.shape == (5, len(edges) - 1)
    np.testing.assert_array_equal(p[0], 0)      # NaN: all-zero code
    np.testing.assert_array_equal(p[3], 0)      # inf is missing too
    np.testing.assert_array_equal(p[1], 0)      # far below: nothing filled
    np.testing.assert_array_equal(p[2], 1)      # far above: everything filled
    np.testing.assert_array_equal(p[4], [1, 1, 0, 0])  # at the third edge
    q = out[numeric_code_key("q")]
    np.testing.assert_array_equal(q[0], 0)
    np.testing.assert_array_equal(q.sum(axis=1), [0, 1, 1, 1, 1])
    assert q[1, 0] == 1 and q[2, -1] == 1
    # indicators: p, q, r, s missing flags after the 4 values
    np.testing.assert_array_equal(out[NUMERIC_KEY][:, 4:7], [[1, 1, 1], [0, 0, 0], [0, 0, 0],
                                                             [1, 0, 0], [0, 0, 0]])
    # periodic has no code key: it embeds the standardised value
    assert numeric_code_key("r") not in out and numeric_code_key("s") not in out
    assert np.isfinite(out[NUMERIC_KEY]).all()


def test_log1p_and_clip_apply_before_the_bins():
    df = pd.DataFrame({"x": np.array([0, 1, 3, 7, 15, 31], "float32"), "click": 0})
    schema = mtrec.Schema([Numeric("x", encoding="piecewise_linear", num_bins=5, log1p=True,
                                   clip=True)], {"click": "binary"}).adapt(df)
    edges = np.array(schema.stats["x"]["bin_edges"])
    np.testing.assert_allclose(edges, np.log1p([0, 1, 3, 7, 15, 31]), rtol=1e-6)
    raw = {"x": np.array([3.0, 1e6], "float32")}
    code = np.asarray(FeaturePreprocessing(schema)(raw)[numeric_code_key("x")])
    np.testing.assert_allclose(code[0], [1, 1, 0, 0, 0], atol=1e-6)
    np.testing.assert_array_equal(code[1], 1)   # clipped to 31: the last edge


def test_periodic_embedding_shape_and_weights(run_layer_test):
    x = np.array([0.0, 1.5, -2.0, 0.3], "float32")
    missing = np.array([False, False, True, False])
    layer = run_layer_test(
        NumericEmbedding, dict(encoding="periodic", embedding_dim=6, num_frequencies=5,
                               frequency_sigma=0.5, seed=1),
        (x, missing), expected_output_shape=(4, 6),
        # frequencies, projection kernel and bias
        expected_num_trainable_weights=3)
    assert tuple(layer.frequencies.shape) == (5,)
    assert tuple(layer.projection.kernel.shape) == (10, 6)
    out = np.asarray(layer(x, missing=missing))
    assert (out >= 0).all()                     # ReLU
    # a missing value's code is zero: its vector is relu(bias)
    np.testing.assert_allclose(out[2], np.maximum(np.asarray(layer.projection.bias), 0))
    # frequencies start from N(0, sigma) truncated at 2 sigma
    assert np.abs(np.asarray(layer.frequencies)).max() <= 2 * 0.5


def test_periodic_code_is_sin_and_cos_of_the_frequencies():
    layer = NumericEmbedding("periodic", embedding_dim=4, num_frequencies=2)
    layer.build((None,))
    layer.frequencies.assign([0.25, 1.0])
    layer.projection.kernel.assign(np.eye(4, dtype="float32"))
    layer.projection.bias.assign(np.zeros(4, "float32"))
    out = np.asarray(layer(np.array([1.0], "float32")))
    angles = 2 * np.pi * np.array([0.25, 1.0])
    np.testing.assert_allclose(out[0], np.maximum(np.r_[np.sin(angles), np.cos(angles)], 0),
                               atol=1e-6)


def test_binned_embedding_is_a_linear_projection(run_layer_test):
    code = np.array([[1.0, 0.5, 0.0], [0.0, 0.0, 0.0]], "float32")
    layer = run_layer_test(NumericEmbedding, dict(encoding="piecewise_linear", embedding_dim=2),
                           code, expected_output_shape=(2, 2),
                           expected_num_trainable_weights=2)
    kernel, bias = (np.asarray(w) for w in (layer.projection.kernel, layer.projection.bias))
    np.testing.assert_allclose(np.asarray(layer(code)), code @ kernel + bias, rtol=1e-6)


def test_standardize_has_no_embedding():
    with pytest.raises(ValueError, match="passes through"):
        NumericEmbedding("standardize", embedding_dim=2)


def test_feature_embedding_replaces_encoded_values_keeps_indicators(encoded_schema):
    df, schema = encoded_schema
    embedding = FeatureEmbedding(schema)
    encoded = FeaturePreprocessing(schema)(schema.raw_features(df.head(8)))
    out = np.asarray(embedding(encoded))
    # s's value + 4 indicators, then p (3), q (2), r (4)
    assert embedding.output_dim == out.shape[1] == 1 + 4 + 3 + 2 + 4
    numeric = np.asarray(encoded[NUMERIC_KEY])
    np.testing.assert_array_equal(out[:, :5], numeric[:, [3, 4, 5, 6, 7]])
    assert embedding.group_dims == [14]
    # 3 NumericEmbeddings: 2 + 2 + 3 trainable weights
    assert len(embedding.trainable_weights) == 7


def test_default_schema_embedding_is_the_pass_through(encoded_schema):
    df, _ = encoded_schema
    schema = mtrec.Schema([Numeric("p"), Numeric("s")], {"click": "binary"}).adapt(df)
    encoded = FeaturePreprocessing(schema)(schema.raw_features(df.head(8)))
    embedding = FeatureEmbedding(schema)
    assert list(encoded) == [NUMERIC_KEY]
    np.testing.assert_array_equal(np.asarray(embedding(encoded)),
                                  np.asarray(encoded[NUMERIC_KEY]))
    assert not embedding.weights


# --------------------------------------------------------------------------
# serving parity: raw floats in, the same predictions after save/load/export
# --------------------------------------------------------------------------
def encoded_model(df, encoding):
    """A tiny MMoE over a standardised column and one column of `encoding`
    (with log1p, so the two compose), trained for one epoch."""
    import keras
    schema = mtrec.Schema(
        [Numeric("p", encoding=encoding, num_bins=4, embedding_dim=3, log1p=True,
                 num_frequencies=3),
         Numeric("s"), mtrec.Categorical("c", embedding_dim=2)],
        {"click": "binary"}).adapt(df)
    keras.utils.set_random_seed(0)
    model = mtrec.models.MMoE(schema, num_experts=2, expert_units=[4], tower_units=[4])
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    model.fit(mtrec.data.from_pandas(df, schema, batch_size=64), epochs=1, verbose=0)
    return model


def awkward_rows(df):
    """The first rows of `df` plus NaN, +-inf, far out-of-range and
    beyond-float32 values of `p` (served as float32)."""
    raw = {k: np.asarray(v) for k, v in
           mtrec.Schema([Numeric("p"), Numeric("s"), mtrec.Categorical("c")],
                        {"click": "binary"}).raw_features(df.head(4)).items()}
    extra = np.array([np.nan, np.inf, -np.inf, 1e30, -1e30, 0.0], "float32")
    return {"p": np.concatenate([raw["p"], extra]),
            "s": np.concatenate([raw["s"], np.full(6, 0.5, "float32")]),
            "c": np.concatenate([raw["c"], np.array(["a"] * 6, object)])}


@pytest.fixture(scope="module")
def small_table():
    rng = np.random.default_rng(3)
    n = 256
    p = rng.exponential(4.0, n).astype("float32")
    return pd.DataFrame({"p": p, "s": rng.normal(size=n).astype("float32"),
                         "c": rng.choice(["a", "b", "c"], n),
                         "click": (p + rng.normal(size=n) > 4).astype(int)})


def test_keras_file_reloads_to_identical_predictions(small_table, tmp_path):
    import keras
    # one column of each encoding (untrained: random projections and
    # frequencies are as good a check of the round trip as trained ones)
    schema = mtrec.Schema(
        [Numeric(f"p_{e}", encoding=e, num_bins=4, embedding_dim=3, log1p=True,
                 num_frequencies=3)
         for e in ("standardize", "quantile_bins", "piecewise_linear", "periodic")]
        + [mtrec.Categorical("c", embedding_dim=2)], {"click": "binary"})
    table = small_table.assign(**{f.name: small_table["p"] for f in schema.features[:4]})
    schema.adapt(table)
    keras.utils.set_random_seed(0)
    model = mtrec.models.MMoE(schema, num_experts=2, expert_units=[4], tower_units=[4])
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert loaded.schema == schema
    awkward = awkward_rows(small_table)
    raw = {**{f.name: awkward["p"] for f in schema.features[:4]}, "c": awkward["c"]}
    before, after = model.predict(raw, verbose=0), loaded.predict(raw, verbose=0)
    np.testing.assert_array_equal(before["click"], after["click"])
    assert np.isfinite(before["click"]).all()
    # rows that differ only in p (NaN, inf, out of range) get other predictions
    assert len(np.unique(before["click"][4:])) > 1


@pytest.mark.slow
@pytest.mark.parametrize("encoding", ["quantile_bins", "piecewise_linear", "periodic"])
def test_trained_keras_file_reloads_to_identical_predictions(small_table, encoding, tmp_path):
    import keras
    model = encoded_model(small_table, encoding)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert loaded.schema.feature("p").encoding == encoding
    raw = awkward_rows(small_table)
    np.testing.assert_array_equal(model.predict(raw, verbose=0)["click"],
                                  loaded.predict(raw, verbose=0)["click"])


@pytest.mark.slow
def test_savedmodel_export_predicts_as_keras_with_nan_and_out_of_range(small_table, tmp_path):
    from mtrec.export import read_export_schema, saved_model, serving_input_names
    raw = awkward_rows(small_table)
    for encoding in ("piecewise_linear", "periodic"):
        model = encoded_model(small_table, encoding)
        path = saved_model(model, tmp_path / encoding)
        names = serving_input_names(read_export_schema(path)[0])
        serve = tf.saved_model.load(str(path)).signatures["serving_default"]
        served = serve(**{names[k]: tf.constant(v) for k, v in raw.items()})["click"].numpy()
        np.testing.assert_allclose(served, model.predict(raw, verbose=0)["click"],
                                   rtol=1e-6, atol=1e-7)
