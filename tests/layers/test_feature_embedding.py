"""FeatureEmbedding: tables, pooling, modality groups, vectors, modality dropout."""

import json
import random

import keras
import numpy as np
import pandas as pd
import pytest

import mtrec
from mtrec.layers import FeatureEmbedding, FeaturePreprocessing, ModalityFusion, TaskTowers
from mtrec.layers.feature_embedding import (
    RowBlockInitializer, categorical_cardinality, modality_groups)
from mtrec.layers.feature_preprocessing import (
    CATEGORICAL_KEY, NUMERIC_KEY, multihot_key, text_key, vector_key)
from mtrec.schema.features import check_initializer


@pytest.fixture(scope="module")
def mm_tiny():
    df = pd.DataFrame({
        "c": ["x", "y", "x", None],
        "n": np.array([1.0, 3.0, np.nan, 2.0], "float32"),
        "t": ["Good fit!", "bad", "", "good GOOD"],
        "cap": ["a photo", "", "two cats", "a dog"],
        "v": [np.array([3.0, 4.0]), np.array([30.0, 40.0]), None, np.array([0.0, 1.0])],
        "y": [0, 1, 1, 0],
    })
    schema = mtrec.Schema(
        [mtrec.Categorical("c", embedding_dim=2), mtrec.Numeric("n"),
         mtrec.Text("t", embedding_dim=2),
         # a caption, tagged as part of the image modality
         mtrec.Text("cap", embedding_dim=3, modality="image"),
         mtrec.Vector("v", projection_dim=2, normalize=True)],
        {"y": "binary"}).adapt(df)
    encoded = FeaturePreprocessing(schema)(schema.raw_features(df))
    return df, schema, encoded


def test_embedding_output_dim_and_pooling(tiny):
    df, schema = tiny
    encoded = FeaturePreprocessing(schema)(schema.raw_features(df))
    layer = FeatureEmbedding(schema)
    x = np.asarray(layer(encoded))
    # categorical 2 + numeric 2 + multihot 3 + text 2 + vector (2 + 1)
    assert layer.output_dim == 12 and x.shape == (4, 12)
    # empty multi-hot and empty text pool to exactly zero
    np.testing.assert_array_equal(x[2, 4:9], 0.0)
    # multi-hot mean pooling by hand: row 1 is item "b" alone (id 2)
    table = np.asarray(layer.multihot_embeddings[0].embeddings)
    np.testing.assert_allclose(x[1, 4:7], table[2], rtol=1e-6)
    np.testing.assert_allclose(x[0, 4:7], (table[3] + table[2]) / 2, rtol=1e-6)


def test_categoricals_of_one_width_share_one_table(schema):
    layer = FeatureEmbedding(schema)
    layer.build()
    widths = {spec.embedding_dim for spec in schema.features_of("categorical")}
    assert len(layer.categorical_groups) == len(widths)


def embedding_with_missing_values(schema, **kwargs):
    layer = FeatureEmbedding(schema, **kwargs)
    layer.build()
    for i, encoder in enumerate(layer.text_encoders):
        encoder.missing.assign(np.full(encoder.embedding_dim, 10.0 + i, "float32"))
    for i, weight in enumerate(layer.vector_missing):
        weight.assign(np.full(weight.shape, -7.0 - i, "float32"))
    return layer


def test_groups_follow_the_modality_tags(mm_tiny):
    _, schema, encoded = mm_tiny
    layer = embedding_with_missing_values(schema)
    assert modality_groups(schema) == layer.modalities == ["tabular", "text", "image"]
    # tabular: c 2 + n 2; text: t 2; image: cap 3 + v (2 + 1)
    assert layer.group_dims == [4, 2, 6] and layer.output_dim == 12
    groups = [np.asarray(g) for g in layer(encoded, grouped=True)]
    assert [g.shape for g in groups] == [(4, 4), (4, 2), (4, 6)]
    # the groups hold exactly the columns of the concatenation
    np.testing.assert_array_equal(np.concatenate(groups, axis=1), np.asarray(layer(encoded)))


def test_mixed_modalities_in_one_categorical_table_are_split():
    df = pd.DataFrame({"a": ["p", "q"], "b": ["u", "v"], "y": [0, 1]})
    schema = mtrec.Schema([mtrec.Categorical("a", embedding_dim=2),
                           mtrec.Categorical("b", embedding_dim=2, modality="text")],
                          {"y": "binary"}).adapt(df)
    layer = FeatureEmbedding(schema)
    encoded = FeaturePreprocessing(schema)(schema.raw_features(df))
    x = np.asarray(layer(encoded))
    tabular, text = (np.asarray(g) for g in layer(encoded, grouped=True))
    np.testing.assert_array_equal(tabular, x[:, :2])
    np.testing.assert_array_equal(text, x[:, 2:])


def test_vectors_normalized_missing_embedding_and_flag(mm_tiny):
    _, schema, encoded = mm_tiny
    layer = embedding_with_missing_values(schema)
    x = np.asarray(layer(encoded))
    vector = x[:, -3:]
    # [3, 4] and [30, 40] normalise to the same vector
    np.testing.assert_allclose(vector[0], vector[1], rtol=1e-6)
    # the missing row: the learned missing embedding, flag 1
    np.testing.assert_array_equal(vector[2], [-7.0, -7.0, 1.0])
    np.testing.assert_array_equal(vector[[0, 1, 3], 2], 0.0)
    # empty text -> that feature's missing embedding
    np.testing.assert_array_equal(x[2, 4:6], [10.0, 10.0])
    np.testing.assert_array_equal(x[1, 6:9], [11.0, 11.0, 11.0])


def test_modality_dropout_only_in_training(mm_tiny):
    _, schema, encoded = mm_tiny
    plain = embedding_with_missing_values(schema)
    dropping = embedding_with_missing_values(schema, modality_dropout=0.5, seed=3)
    dropping.set_weights(plain.get_weights())
    expected = np.asarray(plain(encoded))
    for _ in range(2):  # deterministic and unaffected
        np.testing.assert_array_equal(np.asarray(dropping(encoded, training=False)), expected)
    assert dropping.droppable_modalities == ["text", "image"]
    # in training some rows differ, and only in their non-tabular columns
    changed = np.zeros(expected.shape, bool)
    for _ in range(6):
        changed |= np.asarray(dropping(encoded, training=True)) != expected
    assert changed.any() and not changed[:, :4].any()


def test_modality_dropout_one_drops_every_example(mm_tiny):
    _, schema, encoded = mm_tiny
    layer = embedding_with_missing_values(schema, modality_dropout=1.0)
    tabular, text, image = (np.asarray(g) for g in
                            layer(encoded, training=True, grouped=True))
    np.testing.assert_array_equal(tabular, np.asarray(layer(encoded))[:, :4])
    np.testing.assert_array_equal(text, np.full((4, 2), 10.0))
    np.testing.assert_array_equal(image, np.tile([11.0, 11.0, 11.0, -7.0, -7.0, 1.0], (4, 1)))


def test_embedding_config_round_trip(mm_tiny):
    _, schema, _ = mm_tiny
    layer = FeatureEmbedding(schema, modality_dropout=0.25, seed=5)
    config = layer.get_config()
    json.dumps(config)
    again = FeatureEmbedding.from_config(config)
    assert again.get_config() == config and again.modality_dropout == 0.25
    with pytest.raises(ValueError, match=r"modality_dropout must be a float in \[0, 1\]"):
        FeatureEmbedding(schema, modality_dropout=1.5)



def test_feature_embedding_contract(run_layer_test, tiny):
    df, schema = tiny
    encoded = FeaturePreprocessing(schema)(schema.raw_features(df))
    run_layer_test(FeatureEmbedding, dict(schema=schema),
                   {k: np.asarray(v) for k, v in encoded.items()}, (4, 12),
                   expected_num_trainable_weights=7)


# --------------------------------------------------------------------------
# embedding initializers: the layer's default, a Categorical's own
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def letters():
    return pd.DataFrame({"a": list("xyxzw"), "b": list("pqpqp"), "c": list("uvwuv"),
                         "m": ["a|b", "b", "", "a", "c"], "y": [0, 1, 1, 0, 1]})


def letters_schema(df, **initializers):
    """`a` and `b` share the width-2 table, `c` has a width-3 one; `m` is
    multi-hot. `initializers`: per-feature `embeddings_initializer`."""
    specs = [mtrec.Categorical(name, embedding_dim=3 if name == "c" else 2,
                               embeddings_initializer=initializers.get(name))
             for name in "abc"]
    return mtrec.Schema(specs + [mtrec.MultiHot("m", embedding_dim=2)],
                        {"y": "binary"}).adapt(df)


def feature_rows(layer, name):
    """The rows of categorical feature `name` in its (built) table."""
    categorical = layer.schema.features_of("categorical")
    for positions, offsets, table in layer.categorical_groups:
        for position, offset in zip(positions, offsets):
            spec = categorical[position]
            if spec.name == name:
                rows = categorical_cardinality(layer.schema, spec)
                return np.asarray(table.embeddings)[offset:offset + rows]
    raise KeyError(name)


def test_default_embeddings_initializer_is_keras_uniform(letters):
    layer = FeatureEmbedding(letters_schema(letters))
    layer.build()
    for _, _, table in layer.categorical_groups:
        initializer = table.embeddings_initializer
        assert type(initializer) is keras.initializers.RandomUniform
        assert (initializer.minval, initializer.maxval) == (-0.05, 0.05)
    values = np.asarray(layer.categorical_groups[0][2].embeddings)
    assert np.all(np.abs(values) <= 0.05) and np.unique(values).size == values.size
    assert layer.get_config()["embeddings_initializer"] == "uniform"


def test_a_features_initializer_takes_precedence_over_the_layers(letters):
    layer = FeatureEmbedding(letters_schema(letters, a="zeros"),
                             embeddings_initializer="ones")
    layer.build()
    np.testing.assert_array_equal(feature_rows(layer, "a"), 0.0)
    np.testing.assert_array_equal(feature_rows(layer, "b"), 1.0)
    np.testing.assert_array_equal(feature_rows(layer, "c"), 1.0)
    np.testing.assert_array_equal(np.asarray(layer.multihot_embeddings[0].embeddings), 1.0)
    # a and b share one table (one gather), initialised block by block
    assert len(layer.categorical_groups) == 2
    assert type(layer.categorical_groups[0][2].embeddings_initializer) is RowBlockInitializer


def test_the_layers_initializer_reaches_every_categorical_and_multihot_table(letters):
    layer = FeatureEmbedding(letters_schema(letters, c="ones"),
                             embeddings_initializer={"class_name": "Constant",
                                                     "config": {"value": 0.5}})
    layer.build()
    for name, value in (("a", 0.5), ("b", 0.5), ("c", 1.0)):
        np.testing.assert_array_equal(feature_rows(layer, name), value)
    np.testing.assert_array_equal(np.asarray(layer.multihot_embeddings[0].embeddings), 0.5)


def test_features_sharing_a_table_get_initializers_of_their_own_shape(letters):
    # glorot_uniform on a's rows alone: limit sqrt(6 / (rows_a + dim))
    schema = letters_schema(letters, a="glorot_uniform")
    keras.utils.set_random_seed(1)
    layer = FeatureEmbedding(schema)
    layer.build()
    a, b = feature_rows(layer, "a"), feature_rows(layer, "b")
    limit = np.sqrt(6 / (a.shape[0] + a.shape[1]))
    assert np.all(np.abs(a) <= limit) and np.abs(a).max() > 0.05
    assert np.all(np.abs(b) <= 0.05)


def test_embeddings_initializer_in_config_and_schema_dict(letters):
    schema = letters_schema(letters, a={"class_name": "RandomNormal",
                                        "config": {"stddev": 0.01, "seed": 3}})
    features = {f["name"]: f for f in schema.to_dict()["features"]}
    assert features["a"]["embeddings_initializer"]["config"]["stddev"] == 0.01
    # unset, the field is not written: schema dicts of earlier releases
    # (without it) and new ones without overrides are the same
    assert "embeddings_initializer" not in features["b"]
    layer = FeatureEmbedding(schema, embeddings_initializer="ones")
    config = layer.get_config()
    json.dumps(config)
    again = FeatureEmbedding.from_config(config)
    assert again.get_config() == config
    assert again.schema.features[0].embeddings_initializer == \
        schema.features[0].embeddings_initializer
    layer.build(), again.build()
    # a seeded initializer gives the same rows again
    np.testing.assert_array_equal(feature_rows(again, "a"), feature_rows(layer, "a"))
    old = schema.to_dict()
    for feature in old["features"]:
        feature.pop("embeddings_initializer", None)
    assert mtrec.Schema.from_dict(old).features[0].embeddings_initializer is None


@pytest.mark.parametrize("value, message", [
    ("nope", "Categorical 'a' has embeddings_initializer 'nope', which Keras does not "
             "read as an initializer"),
    ({"class_name": "RandomNormal", "config": {"sttdev": 0.1}},
     "Categorical 'a' has embeddings_initializer {'class_name': 'RandomNormal'"),
    (3, "Categorical 'a' has embeddings_initializer 3 (int); expected a Keras "
        "initializer name such as 'uniform'"),
    (keras.initializers.Zeros(), "pass its name or config instead"),
])
def test_a_bad_feature_initializer_is_named(letters, value, message):
    with pytest.raises(ValueError) as caught:
        letters_schema(letters, a=value)
    assert message in str(caught.value)


def test_a_bad_layer_initializer_is_named(letters):
    with pytest.raises(ValueError, match="FeatureEmbedding has embeddings_initializer "
                                         "'relu', which Keras does not read"):
        FeatureEmbedding(letters_schema(letters), embeddings_initializer="relu")


def test_checking_an_initializer_draws_nothing_from_pythons_rng():
    # Unseeded Keras initializers draw their seed when made; a check that drew
    # would change every weight a seeded run initialises after it.
    state = random.getstate()
    check_initializer("uniform", "x")
    check_initializer({"class_name": "GlorotUniform", "config": {}}, "x")
    assert random.getstate() == state


def test_an_initializer_object_is_not_shared_between_tables(letters):
    # one unseeded object would give equal tables of equal shape
    layer = FeatureEmbedding(letters_schema(letters),
                             embeddings_initializer=keras.initializers.RandomNormal())
    layer.build()
    width_two = np.asarray(layer.categorical_groups[0][2].embeddings)
    multihot = np.asarray(layer.multihot_embeddings[0].embeddings)
    assert width_two.shape[1] == multihot.shape[1]
    rows = min(len(width_two), len(multihot))
    assert not np.allclose(width_two[:rows], multihot[:rows])
    assert layer.get_config()["embeddings_initializer"]["class_name"] == "RandomNormal"
