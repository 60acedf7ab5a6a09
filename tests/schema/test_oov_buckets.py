"""Categorical(num_oov_buckets=N): a capped vocabulary plus hash buckets for the tail."""

import keras
import numpy as np
import pandas as pd
import pytest

import mtrec
from mtrec.layers.feature_embedding import categorical_cardinality
from mtrec.layers.feature_preprocessing import CATEGORICAL_KEY, FeaturePreprocessing
from mtrec.schema import Categorical, Schema
from helpers import error_of


def table(rows=600, seed=0):
    rng = np.random.default_rng(seed)
    frequent = rng.choice(["a", "b", "c"], rows // 2)
    tail = [f"id{k}" for k in rng.integers(0, 10_000, rows - rows // 2)]
    return pd.DataFrame({"item": np.concatenate([frequent, tail]),
                         "user": rng.integers(0, 50_000, rows),
                         "click": rng.integers(0, 2, rows).astype(float)})


def schema_with(**options):
    return Schema([Categorical("item", max_tokens=3, **options),
                   Categorical("user", dtype="int64", max_tokens=5, **options)],
                  {"click": "binary"})


@pytest.mark.parametrize("column", ["item", "user"])
def test_tail_ids_spread_over_the_buckets_and_the_vocabulary_follows_them(column):
    frame = table()
    schema = schema_with(num_oov_buckets=8).adapt(frame)
    stats = schema.stats[column]
    assert stats["num_oov_buckets"] == 8
    assert categorical_cardinality(schema, schema.feature(column)) == len(stats["vocabulary"]) + 8
    layer = FeaturePreprocessing(schema)
    position = [spec.name for spec in schema.features].index(column)
    ids = keras.ops.convert_to_numpy(layer(schema.raw_features(frame))[CATEGORICAL_KEY])[
        :, position]
    vocabulary = set(map(str, stats["vocabulary"]))
    in_vocabulary = frame[column].astype(str).isin(vocabulary).to_numpy()
    assert (ids[in_vocabulary] >= 8).all()           # the vocabulary after the buckets
    tail = ids[~in_vocabulary]
    assert (tail < 8).all() and len(set(tail)) == 8  # the tail uses every bucket
    # the same id always lands in the same bucket (a hash, not a draw)
    again = keras.ops.convert_to_numpy(layer(schema.raw_features(frame))[CATEGORICAL_KEY])
    np.testing.assert_array_equal(again[:, position], ids)


def test_one_bucket_stats_are_unchanged_and_the_combinations_are_refused():
    frame = table()
    assert "num_oov_buckets" not in schema_with().adapt(frame).stats["item"]
    assert "num_oov_buckets" not in Categorical("item").to_dict()
    def schema_of(**options):    # a spec's arguments are checked by its schema
        return Schema([Categorical("item", **options)], {"click": "binary"})

    assert "num_oov_buckets=8 and num_hash_bins=64" in error_of(
        lambda: schema_of(num_oov_buckets=8, num_hash_bins=64))
    assert "num_oov_buckets=8 and oov_rate=0.1" in error_of(
        lambda: schema_of(num_oov_buckets=8, oov_rate=0.1))
    assert "num_oov_buckets=0; expected a positive integer" in error_of(
        lambda: schema_of(num_oov_buckets=0))


def test_a_model_with_buckets_trains_and_round_trips(tmp_path):
    frame = table()
    schema = schema_with(num_oov_buckets=4).adapt(frame)
    model = mtrec.models.SharedBottom(schema, bottom_units=[4], tower_units=[2])
    model.compile(optimizer="adam")
    model.fit(frame, epochs=1, batch_size=128, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    again = keras.models.load_model(path)
    unseen = frame.assign(item=[f"new{k}" for k in range(len(frame))])
    np.testing.assert_allclose(again.predict(unseen, verbose=0)["click"],
                               model.predict(unseen, verbose=0)["click"], rtol=1e-6)
