"""Tests for mtrec.data.pandas_dataset: DataFrame -> tf.data batches."""

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from mtrec import Categorical, MultiHot, Numeric, Schema, Text, Vector
from mtrec.data import encode_features, from_pandas

ENCODED_KEYS = {"mtrec:categorical", "mtrec:numeric", "mtrec:multihot:tags",
                "mtrec:text:title", "mtrec:vector:vec"}


def batches(dataset):
    return list(dataset.as_numpy_iterator())


def tiny():
    return pd.DataFrame({
        "color": pd.Series(["red", "blue", None, "red", "blue", "green"], dtype=object),
        "price": [1.0, 2.0, np.nan, 4.0, 5.0, 6.0],
        "click": [0.0, 1.0, np.nan, 1.0, 1.0, 0.0],
    })


@pytest.fixture(scope="module")
def tiny_schema():
    return Schema([Categorical("color"), Numeric("price")],
                  {"click": "binary"}).adapt(tiny())


def test_batches_hold_encoded_features_and_float32_labels(table, schema):
    (features, labels), = batches(from_pandas(table.head(10), schema, batch_size=10))
    assert set(features) == ENCODED_KEYS
    assert all(key.startswith("mtrec:") for key in features)
    assert features["mtrec:categorical"].shape == (10, 2)     # color, user_id
    assert features["mtrec:numeric"].shape == (10, 2)         # num + missing flag
    assert features["mtrec:vector:vec"].shape == (10, 5)      # 4 values + flag
    assert set(labels) == {"click", "spend", "grade"}
    for name, values in labels.items():
        assert values.dtype == np.float32 and values.shape == (10,)
        np.testing.assert_array_equal(values, table[name].head(10).to_numpy("float32"))


def test_encoded_values_by_hand(tiny_schema):
    # color vocabulary: blue, red, "" (missing), green; id 0 is OOV.
    assert tiny_schema.stats["color"]["vocabulary"] == ["blue", "red", "", "green"]
    (features, labels), = batches(from_pandas(tiny(), tiny_schema))
    np.testing.assert_array_equal(features["mtrec:categorical"][:, 0], [2, 1, 3, 2, 1, 4])
    # price: mean 3.6, variance 3.44; NaN -> mean (0 after scaling) + flag 1
    expected = (np.array([1, 2, 3.6, 4, 5, 6]) - 3.6) / np.sqrt(3.44)
    np.testing.assert_allclose(features["mtrec:numeric"][:, 0], expected, rtol=1e-5)
    np.testing.assert_array_equal(features["mtrec:numeric"][:, 1], [0, 0, 1, 0, 0, 0])
    # a missing label stays NaN (the loss masks it)
    np.testing.assert_array_equal(labels["click"], [0, 1, np.nan, 1, 1, 0])
    assert labels["click"].dtype == np.float32


def test_missing_labels_stay_nan(table, schema):
    df = table.head(8).copy()
    df["click"] = df["click"].astype("float64")
    df.loc[[1, 5], "click"] = np.nan
    (_, labels), = batches(from_pandas(df, schema, batch_size=8))
    assert np.isnan(labels["click"][[1, 5]]).all()
    assert not np.isnan(labels["click"][[0, 2, 3, 4, 6, 7]]).any()


def test_multihot_keeps_items_after_an_empty_piece():
    df = pd.DataFrame({"tags": ["a||b", "c"], "click": [0, 1]})
    schema = Schema([MultiHot("tags")], {"click": "binary"}).adapt(df)
    features, = batches(from_pandas(df, schema, labels=False))
    # padding "" -> 0, OOV -> 1, then a=2, b=3, c=4
    np.testing.assert_array_equal(features["mtrec:multihot:tags"], [[2, 0, 3], [4, 0, 0]])


def test_text_and_vector_encoding():
    df = pd.DataFrame({"t": ["Good good BAD", "bad, new!"],
                       "v": pd.Series([[1.0, 2.0], None], dtype=object),
                       "click": [0, 1]})
    schema = Schema([Text("t", max_length=3), Vector("v")], {"click": "binary"}).adapt(df)
    assert schema.stats["t"]["vocabulary"] == ["bad", "good", "new"]
    features, = batches(from_pandas(df, schema, labels=False))
    # padding 0, OOV 1, bad 2, good 3, new 4
    np.testing.assert_array_equal(features["mtrec:text:t"], [[3, 3, 2], [2, 4, 0]])
    np.testing.assert_array_equal(features["mtrec:vector:v"], [[1, 2, 0], [0, 0, 1]])


def test_batch_size_and_drop_remainder(table, schema):
    sizes = [len(labels["click"]) for _, labels in batches(
        from_pandas(table, schema, batch_size=128))]
    assert sizes == [128, 128, 44]
    sizes = [len(labels["click"]) for _, labels in batches(
        from_pandas(table, schema, batch_size=128, drop_remainder=True))]
    assert sizes == [128, 128]


def spend_order(dataset):
    return np.concatenate([labels["spend"] for _, labels in batches(dataset)])


def test_shuffle_with_seed_is_repeatable(table, schema):
    plain = spend_order(from_pandas(table, schema, batch_size=64))
    np.testing.assert_array_equal(plain, table["spend"].to_numpy("float32"))
    first = spend_order(from_pandas(table, schema, batch_size=64, shuffle=True, seed=7))
    again = spend_order(from_pandas(table, schema, batch_size=64, shuffle=True, seed=7))
    other = spend_order(from_pandas(table, schema, batch_size=64, shuffle=True, seed=8))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, plain)
    assert not np.array_equal(first, other)
    np.testing.assert_array_equal(np.sort(first), np.sort(plain))   # same rows


def test_labels_false_yields_features_only(table, schema):
    features_only = table.drop(columns=["click", "spend", "grade"])
    dataset = from_pandas(features_only, schema, batch_size=300, labels=False)
    assert isinstance(dataset.element_spec, dict)
    assert set(dataset.element_spec) == ENCODED_KEYS
    (features,) = batches(dataset)
    (with_labels, _), = batches(from_pandas(table, schema, batch_size=300))
    for key in ENCODED_KEYS:
        np.testing.assert_array_equal(features[key], with_labels[key])


def test_encode_features_matches_from_pandas(table, schema):
    encoded = encode_features(schema, schema.raw_features(table))
    (features, _), = batches(from_pandas(table, schema, batch_size=300))
    assert set(encoded) == ENCODED_KEYS
    for key in ENCODED_KEYS:
        np.testing.assert_array_equal(encoded[key], features[key])


def test_empty_dataframe_raises(table, schema):
    with pytest.raises(ValueError, match="no rows"):
        from_pandas(table.iloc[:0], schema)


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, None])
def test_bad_batch_size_raises(table, schema, batch_size):
    with pytest.raises(ValueError, match=f"batch_size must be an integer >= 1, got {batch_size}"):
        from_pandas(table, schema, batch_size=batch_size)


def test_unadapted_schema_raises(table):
    schema = Schema([Categorical("color")], {"click": "binary"})
    with pytest.raises(ValueError, match=r"not adapted; call schema.adapt\(train_df\)"):
        from_pandas(table, schema)


def test_schema_without_features_raises(table):
    schema = Schema([], {"click": "binary"}).adapt(table)
    with pytest.raises(ValueError, match="no features"):
        from_pandas(table, schema)


def test_missing_feature_column_raises(table, schema):
    with pytest.raises(ValueError) as info:
        from_pandas(table.drop(columns=["num"]), schema)
    assert "Missing feature column(s) ['num']" in str(info.value)
    assert "Add the column(s) or remove them from the schema" in str(info.value)


def test_missing_label_column_raises_only_with_labels(table, schema):
    without = table.drop(columns=["spend"])
    with pytest.raises(ValueError, match="label column of task 'spend'"):
        from_pandas(without, schema)
    assert len(batches(from_pandas(without, schema, batch_size=300, labels=False))) == 1


def test_wrong_dtype_raises(table, schema):
    bad = table.assign(num=table["num"].astype(str))
    with pytest.raises(ValueError, match="Column 'num' is .* declares it Numeric"):
        from_pandas(bad, schema)


def test_gathered_batches_visit_every_row_once_per_epoch_in_the_plain_shuffle_order():
    # The index-gather pipeline must see the same rows in the same order as
    # from_tensor_slices -> shuffle -> batch with the same seed, so switching
    # to it changes no training result.
    from mtrec.data.pandas_dataset import gathered_batches

    columns = ({"x": np.arange(100, dtype="int64"), "y": np.arange(100.0)[:, None]},
               {"t": np.arange(100, dtype="float32")})
    fast = gathered_batches(columns, 100, batch_size=16, shuffle=True, seed=3)
    plain = (tf.data.Dataset.from_tensor_slices(columns)
             .shuffle(100, seed=3, reshuffle_each_iteration=True).batch(16))
    orders = []
    for _ in range(2):
        got = [b[0]["x"].numpy() for b in fast]
        want = [b[0]["x"].numpy() for b in plain]
        assert [len(b) for b in got] == [16] * 6 + [4]
        assert np.array_equal(np.concatenate(got), np.concatenate(want))
        assert sorted(np.concatenate(got)) == list(range(100))
        orders.append(np.concatenate(got))
    assert not np.array_equal(orders[0], orders[1])   # reshuffled each epoch
    # rows stay together across columns and structures
    features, labels = next(iter(fast))
    assert np.array_equal(features["y"][:, 0].numpy(), features["x"].numpy())
    assert np.array_equal(labels["t"].numpy(), features["x"].numpy())


def test_gathered_batches_drop_remainder_gives_a_static_batch_dimension():
    from mtrec.data.pandas_dataset import gathered_batches

    dataset = gathered_batches({"x": np.arange(10)}, 10, batch_size=4, drop_remainder=True)
    assert dataset.element_spec["x"].shape.as_list() == [4]
    assert [b["x"].numpy().tolist() for b in dataset] == [[0, 1, 2, 3], [4, 5, 6, 7]]
