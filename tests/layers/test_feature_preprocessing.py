"""FeaturePreprocessing: raw features to ids, scaled floats and token ids."""

import json

import keras
import numpy as np
import pandas as pd
import pytest

import mtrec
from mtrec.layers import FeatureEmbedding, FeaturePreprocessing, ModalityFusion, TaskTowers
from mtrec.layers.feature_embedding import modality_groups
from mtrec.layers.feature_preprocessing import (
    CATEGORICAL_KEY, NUMERIC_KEY, multihot_key, text_key, vector_key)


def test_preprocessing_encodes_each_kind_by_hand(tiny):
    df, schema = tiny
    out = {k: np.asarray(v) for k, v in FeaturePreprocessing(schema)(schema.raw_features(df)).items()}
    # vocabulary most frequent first: ["x", "", "y"]? counts x:2, "":1, y:1 -> ["x", "", "y"]
    assert schema.stats["c"]["vocabulary"] == ["x", "", "y"]
    np.testing.assert_array_equal(out[CATEGORICAL_KEY][:, 0], [1, 3, 1, 2])
    # numeric: mean 2, std sqrt(2/3); NaN imputed with the mean and flagged
    std = np.sqrt(2 / 3)
    np.testing.assert_allclose(out[NUMERIC_KEY][:, 0], [-1 / std, 1 / std, 0, 0], rtol=1e-5)
    np.testing.assert_array_equal(out[NUMERIC_KEY][:, 1], [0, 0, 1, 0])
    # multihot: vocab [b, a, c] (b:3, a:2, c:1) -> ids from 2; 0 pads
    assert schema.stats["m"] == {"vocabulary": ["b", "a", "c"], "max_items": 3}
    np.testing.assert_array_equal(out[multihot_key("m")],
                                  [[3, 2, 0], [2, 0, 0], [0, 0, 0], [3, 2, 4]])
    # text: lower-cased, punctuation stripped; "good" x3, "bad", "fit"
    assert schema.stats["t"]["vocabulary"] == ["good", "bad", "fit"]
    assert out[text_key("t")].shape[1] == schema.stats["t"]["max_length"]
    np.testing.assert_array_equal(out[text_key("t")][0, :2], [2, 4])
    np.testing.assert_array_equal(out[text_key("t")][2], 0)
    np.testing.assert_array_equal(out[text_key("t")][3, :2], [2, 2])
    # vector: missing row zero-filled and flagged
    np.testing.assert_allclose(out[vector_key("v")],
                               [[1, 2, 0], [3, 4, 0], [0, 0, 1], [0, 1, 0]])


def test_unseen_values_map_to_oov(tiny):
    _, schema = tiny
    raw = {"c": np.array(["zzz"], object), "n": np.array([np.inf], "float32"),
           "m": np.array(["q|a"], object), "t": np.array(["never seen"], object),
           "v": np.array([[np.nan, 1.0]], "float32")}
    out = {k: np.asarray(v) for k, v in FeaturePreprocessing(schema)(raw).items()}
    assert out[CATEGORICAL_KEY][0, 0] == 0
    assert out[NUMERIC_KEY][0, 1] == 1.0  # inf treated as missing
    np.testing.assert_array_equal(out[multihot_key("m")][0, :2], [1, 3])
    np.testing.assert_array_equal(out[text_key("t")][0, :2], [1, 1])
    assert out[vector_key("v")][0, -1] == 1.0


def test_preprocessing_names_missing_inputs(tiny):
    df, schema = tiny
    raw = schema.raw_features(df)
    del raw["n"]
    with pytest.raises(ValueError, match=r"\['n'\]"):
        FeaturePreprocessing(schema)(raw)


def test_preprocessing_needs_adapted_schema():
    schema = mtrec.Schema([mtrec.Numeric("n")], {"y": "binary"})
    with pytest.raises(ValueError, match="adapt"):
        FeaturePreprocessing(schema)


def test_fused_lookup_keeps_schema_order_with_mixed_categoricals():
    df = pd.DataFrame({"a": ["p", "q", "p"], "h": ["u1", "u2", "u3"],
                       "i": pd.array([7, 8, 7], dtype="int64"), "b": ["q", "p", "zz"],
                       "y": [0, 1, 0]})
    schema = mtrec.Schema(
        [mtrec.Categorical("a"), mtrec.Categorical("h", num_hash_bins=5),
         mtrec.Categorical("i", dtype="int64"), mtrec.Categorical("b")],
        {"y": "binary"}).adapt(df)
    layer = FeaturePreprocessing(schema)
    raw = schema.raw_features(df)
    ids = np.asarray(layer(raw)[CATEGORICAL_KEY])
    # a: vocab [p, q]; b: vocab [p, q, zz] (ties by token) -> ids from 1
    np.testing.assert_array_equal(ids[:, 0], [1, 2, 1])
    np.testing.assert_array_equal(ids[:, 2], [1, 2, 1])
    np.testing.assert_array_equal(ids[:, 3], [2, 1, 3])
    assert np.all((ids[:, 1] >= 0) & (ids[:, 1] < 5))
    # "zz" is in b's vocabulary only: OOV for "a" (vocabularies are per feature)
    unseen = {**raw, "b": np.array(["x", "x", "x"], object), "a": np.array(["zz"] * 3, object)}
    ids = np.asarray(layer(unseen)[CATEGORICAL_KEY])
    np.testing.assert_array_equal(ids[:, 0], 0)
    np.testing.assert_array_equal(ids[:, 3], 0)


def test_fused_lookup_gives_every_token_its_vocabulary_index():
    """Every token of every fused column maps to 1 + its index in that
    column's vocabulary, whatever the other columns hold; values outside the
    vocabulary (other columns' tokens, "", long strings) map to 0."""
    rng = np.random.default_rng(0)
    vocabularies = {f"c{j}": [f"t{j}_{k}" for k in range(20 + j)] + ["shared", ""]
                    for j in range(4)}
    df = pd.DataFrame({name: rng.choice(vocab, size=200) for name, vocab in vocabularies.items()})
    df["y"] = 0
    schema = mtrec.Schema([mtrec.Categorical(n) for n in vocabularies], {"y": "binary"}).adapt(df)
    layer = FeaturePreprocessing(schema)
    raw = schema.raw_features(df)
    ids = np.asarray(layer(raw)[CATEGORICAL_KEY])
    for j, name in enumerate(vocabularies):
        vocabulary = schema.stats[name]["vocabulary"]
        expected = [vocabulary.index(v) + 1 for v in raw[name]]
        np.testing.assert_array_equal(ids[:, j], expected)
    others = {name: np.array(["t9_0", "t1_0" * 40, "Shared", "shared "] * 2, object)
              for name in vocabularies}
    others["c1"][1] = "t0_3"  # c0's token, not c1's
    ids = np.asarray(layer(others)[CATEGORICAL_KEY])
    np.testing.assert_array_equal(ids, 0)


def test_fused_lookup_names_tokens_whose_keys_clash(monkeypatch):
    from mtrec.layers import feature_preprocessing
    df = pd.DataFrame({"a": ["p", "q"], "y": [0, 1]})
    schema = mtrec.Schema([mtrec.Categorical("a")], {"y": "binary"}).adapt(df)
    # Every string fingerprints alike: "p" and "q" would share a key.
    monkeypatch.setattr(feature_preprocessing, "_fingerprints",
                        lambda strings: np.full(len(list(strings)), 7, "int64"))
    with pytest.raises(ValueError, match=r"\('a', 'p'\), \('a', 'q'\).*num_hash_bins"):
        FeaturePreprocessing(schema)


@pytest.mark.parametrize("log1p", [(True, False), (True, True), (False, False)])
def test_numeric_log1p_per_column(log1p):
    """`sign(x) * log1p(|x|)` applies to the log1p columns only, before
    standardising with the statistics adapt learned on the mapped values."""
    df = pd.DataFrame({"a": [-9.0, 0.0, 99.0, np.nan], "b": [1.0, 3.0, 5.0, 7.0], "y": 0})
    schema = mtrec.Schema([mtrec.Numeric("a", log1p=log1p[0]), mtrec.Numeric("b", log1p=log1p[1])],
                          {"y": "binary"}).adapt(df)
    out = np.asarray(FeaturePreprocessing(schema)(schema.raw_features(df))[NUMERIC_KEY])
    for j, (name, logged) in enumerate(zip("ab", log1p)):
        x = df[name].to_numpy("float64")
        x = np.sign(x) * np.log1p(np.abs(x)) if logged else x
        mean, std = np.nanmean(x), np.nanstd(x)
        expected = (np.where(np.isnan(x), mean, x) - mean) / std
        np.testing.assert_allclose(out[:, j], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out[:, 2], [0, 0, 0, 1])


def test_feature_preprocessing_contract(run_layer_test, tiny):
    df, schema = tiny
    layer = run_layer_test(FeaturePreprocessing, dict(schema=schema), schema.raw_features(df),
                           [(4, 1), (4, 3), (4, 2), (4, 2), (4, 3)],
                           expected_num_trainable_weights=0)


def test_numeric_clip_bounds_raw_values_to_the_training_range():
    df = pd.DataFrame({"a": [0.0, 10.0], "b": [0.0, 10.0], "click": [0, 1]})
    schema = mtrec.Schema([mtrec.Numeric("a", clip=True), mtrec.Numeric("b")],
                          {"click": "binary"}).adapt(df)
    layer = FeaturePreprocessing(schema)
    raw = {"a": np.array([1e30, -1e30, np.nan, 5.0], "float32"),
           "b": np.array([1e30, -1e30, np.nan, 5.0], "float32")}
    numeric = layer(raw)[NUMERIC_KEY].numpy()
    # mean 5, std 5: clipped a is +-1; b (clip off, the default) as it was
    np.testing.assert_allclose(numeric[:, 0], [1.0, -1.0, 0.0, 0.0])
    np.testing.assert_allclose(numeric[:2, 1], [2e29, -2e29], rtol=1e-5)
    # missing stays missing under the clip
    np.testing.assert_array_equal(numeric[:, 2], [0, 0, 1, 0])
