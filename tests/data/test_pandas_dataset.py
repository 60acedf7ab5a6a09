"""Tests for mtrec.data.pandas_dataset: DataFrame -> tf.data batches."""

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from mtrec import Categorical, MultiHot, Numeric, Schema, Text, Vector
from mtrec.data import encode_features, from_pandas

TASKS = {"click": "binary", "spend": "regression", "grade": "multiclass"}

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


def test_batches_are_prefetched_without_the_autotuner(table, schema):
    """A fixed prefetch buffer and no tf.data autotuner: dropping an
    epoch's iterator waited for the autotuner's thread (see
    `mtrec.data.pandas_dataset._without_autotune`); a user's own options
    still apply on top."""
    dataset = from_pandas(table, schema, batch_size=128, shuffle=True, seed=1)
    assert dataset.options().autotune.enabled is False
    # every row still arrives, once per epoch, on every fresh iterator
    for _ in range(2):
        assert sum(len(labels["click"]) for _, labels in dataset) == len(table)
    options = tf.data.Options()
    options.autotune.enabled = True
    assert dataset.with_options(options).options().autotune.enabled is True


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


def _epoch_orders(dataset, epochs):
    """The row order of each of `epochs` passes (a new iterator each)."""
    return [np.concatenate([b[0]["x"].numpy() for b in dataset]) for _ in range(epochs)]


def test_gathered_batches_visit_every_row_once_per_epoch_reshuffled_and_repeatable():
    from mtrec.data.pandas_dataset import gathered_batches

    columns = ({"x": np.arange(100, dtype="int64"), "y": np.arange(100.0)[:, None]},
               {"t": np.arange(100, dtype="float32")})
    fast = gathered_batches(columns, 100, batch_size=16, shuffle=True, seed=3)
    assert int(fast.cardinality()) == 7
    orders = _epoch_orders(fast, 3)
    assert all(sorted(order) == list(range(100)) for order in orders)
    assert not np.array_equal(orders[0], orders[1])   # reshuffled each epoch
    assert not np.array_equal(orders[1], orders[2])
    # rebuilt with the same seed: the same sequence of orders (runs repeat,
    # and EpochStream positions a resumed run on it); another seed differs
    again = gathered_batches(columns, 100, batch_size=16, shuffle=True, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(orders, _epoch_orders(again, 3)))
    other = gathered_batches(columns, 100, batch_size=16, shuffle=True, seed=4)
    assert not np.array_equal(orders[0], _epoch_orders(other, 1)[0])
    assert [len(b[0]["x"]) for b in other] == [16] * 6 + [4]
    # each pass of repeat() is the next epoch's order
    repeated = np.concatenate([b[0]["x"].numpy() for b in gathered_batches(
        columns, 100, batch_size=16, shuffle=True, seed=3).repeat().take(14)])
    assert np.array_equal(repeated, np.concatenate(orders[:2]))
    # rows stay together across columns and structures
    features, labels = next(iter(fast))
    assert np.array_equal(features["y"][:, 0].numpy(), features["x"].numpy())
    assert np.array_equal(labels["t"].numpy(), features["x"].numpy())


def test_gathered_batches_without_shuffle_keep_the_row_order():
    from mtrec.data.pandas_dataset import gathered_batches

    dataset = gathered_batches(({"x": np.arange(10)},), 10, batch_size=4)
    assert [b[0]["x"].numpy().tolist() for b in dataset] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_shuffled_gathered_batches_count_as_shuffled_for_evaluation():
    # mtrec.evaluate refuses grouped metrics over a shuffled pipeline; it
    # finds the shuffle by op name, which the permutation op still carries.
    from mtrec.data.pandas_dataset import gathered_batches
    from mtrec.evaluation.report import _is_shuffled

    columns = {"x": np.arange(10)}
    assert _is_shuffled(gathered_batches(columns, 10, batch_size=4, shuffle=True, seed=1))
    assert not _is_shuffled(gathered_batches(columns, 10, batch_size=4))


def test_gathered_batches_drop_remainder_gives_a_static_batch_dimension():
    from mtrec.data.pandas_dataset import gathered_batches

    dataset = gathered_batches({"x": np.arange(10)}, 10, batch_size=4, drop_remainder=True)
    assert dataset.element_spec["x"].shape.as_list() == [4]
    assert [b["x"].numpy().tolist() for b in dataset] == [[0, 1, 2, 3], [4, 5, 6, 7]]


# -- encoding by chunks ---------------------------------------------------------
def test_encode_frame_by_small_chunks_equals_one_whole_table_call(table, schema, monkeypatch):
    # What the encoding was before chunking: one layer call over the whole raw table.
    from mtrec.data import pandas_dataset
    from mtrec.layers.feature_preprocessing import FeaturePreprocessing

    whole = {key: value.numpy() for key, value in
             FeaturePreprocessing(schema)(schema.raw_features(table)).items()}
    monkeypatch.setattr(pandas_dataset, "_ENCODE_CHUNK", 7)    # 300 rows: 43 chunks, last 6
    by_frame = pandas_dataset.encode_frame(schema, table)
    by_raw = encode_features(schema, schema.raw_features(table))
    assert set(by_frame) == set(whole) == ENCODED_KEYS
    for key, value in whole.items():
        assert by_frame[key].dtype == value.dtype and by_raw[key].dtype == value.dtype
        np.testing.assert_array_equal(by_frame[key], value)
        np.testing.assert_array_equal(by_raw[key], value)


def test_encode_frame_checks_the_frame_first(table, schema):
    from mtrec.data.pandas_dataset import encode_frame

    with pytest.raises(ValueError, match=r"Missing feature column\(s\) \['color'\]"):
        encode_frame(schema, table.drop(columns=["color"]))
    with pytest.raises(ValueError, match="no rows"):
        encode_frame(schema, table.iloc[:0])


def test_sliced_batches_cut_a_block_in_order_with_a_static_shape_when_dropping():
    from mtrec.data.pandas_dataset import sliced_batches

    block = ({"x": tf.range(10, dtype=tf.int64)}, {"t": tf.reshape(tf.range(20.0), (10, 2))})
    got = [b[0]["x"].numpy().tolist() for b in sliced_batches(block, 4)]
    assert got == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    blocks = tf.data.Dataset.from_tensors(block).flat_map(
        lambda f, t: sliced_batches((f, t), 4, drop_remainder=True))
    assert blocks.element_spec[1]["t"].shape.as_list() == [4, 2]
    assert [b[1]["t"][:, 0].numpy().tolist() for b in blocks] == [[0, 2, 4, 6],
                                                                  [8, 10, 12, 14]]


# -- model.fit / evaluate / predict on a DataFrame -------------------------------
@pytest.fixture(scope="module")
def small_model(schema):
    import keras
    import mtrec

    keras.utils.set_random_seed(0)
    model = mtrec.models.MMoE(schema, num_experts=2, expert_units=[4], tower_units=[2])
    model.compile(optimizer="adam")
    return model


def batch_counter():
    """A Keras callback recording the train batches of the last fit."""
    import keras

    class CountBatches(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.batches = []

        def on_train_batch_end(self, batch, logs=None):
            self.batches.append(batch)

    return CountBatches()


def test_fit_on_a_dataframe_uses_its_task_columns_and_a_large_default_batch(table,
                                                                             small_model):
    count = batch_counter()
    history = small_model.fit(table, epochs=1, verbose=0, callbacks=[count])
    assert np.isfinite(history.history["loss"][0])
    assert len(count.batches) == 1                       # 300 rows, FIT_BATCH_SIZE 1024
    small_model.fit(table, epochs=1, batch_size=128, verbose=0, callbacks=[count])
    assert len(count.batches) == 3                       # 128 + 128 + 44


def test_fit_validates_on_a_dataframe(table, small_model):
    history = small_model.fit(table.iloc[:200], validation_data=table.iloc[200:],
                              epochs=1, batch_size=64, verbose=0)
    expected = small_model.evaluate(from_pandas(table.iloc[200:], small_model.schema),
                                    verbose=0, return_dict=True)
    assert history.history["val_loss"][0] == pytest.approx(expected["loss"], rel=1e-5)


def test_evaluate_and_predict_on_a_dataframe_equal_the_dataset_calls(table, small_model):
    schema = small_model.schema
    on_frame = small_model.evaluate(table, verbose=0, return_dict=True)
    on_data = small_model.evaluate(from_pandas(table, schema), verbose=0, return_dict=True)
    assert on_frame.keys() == on_data.keys()
    for name, value in on_data.items():
        assert on_frame[name] == pytest.approx(value, rel=1e-5), name
    features = table.drop(columns=["click", "spend", "grade"])     # predict needs no labels
    predicted = small_model.predict(features, verbose=0)
    expected = small_model.predict(from_pandas(features, schema, labels=False), verbose=0)
    assert isinstance(predicted, dict) and predicted.keys() == expected.keys() == set(TASKS)
    for name, value in expected.items():
        assert predicted[name].shape[0] == len(table)
        np.testing.assert_allclose(predicted[name], value, rtol=1e-6)


@pytest.mark.slow  # three fits (~23 s); make test-slow
def test_fit_on_a_dataframe_repeats_under_keras_seed_and_honours_shuffle(table, schema):
    import keras
    import mtrec

    def trained(**fit_kwargs):
        keras.utils.set_random_seed(3)
        model = mtrec.models.MMoE(schema, num_experts=2, expert_units=[4], tower_units=[2])
        model.compile(optimizer="adam")
        model.fit(table, epochs=2, batch_size=32, verbose=0, **fit_kwargs)
        return model.predict(table, verbose=0)["spend"]

    first = trained()
    np.testing.assert_array_equal(trained(), first)            # same seed, same run
    in_order = trained(shuffle=False)
    assert not np.allclose(in_order, first)                    # shuffle=True by default


def test_dataframe_errors_name_the_problem(table, small_model):
    with pytest.raises(ValueError, match=r"Missing feature column\(s\) \['num'\]"):
        small_model.fit(table.drop(columns=["num"]), epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"Missing feature column\(s\) \['num'\]"):
        small_model.predict(table.drop(columns=["num"]), verbose=0)
    with pytest.raises(ValueError, match="label column of task 'spend'"):
        small_model.evaluate(table.drop(columns=["spend"]), verbose=0)
    with pytest.raises(ValueError, match=r"got both a DataFrame and y .*without y"):
        small_model.fit(table, table["click"], epochs=1, verbose=0)
    with pytest.raises(ValueError, match="validation_split=0.2 does not apply"):
        small_model.fit(table, validation_split=0.2, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"Missing feature column\(s\) \['num'\]"):
        small_model.fit(table, validation_data=table.drop(columns=["num"]), verbose=0)


def test_fit_refuses_a_task_without_labels_but_validation_may_lack_them(table, schema):
    from mtrec.data.pandas_dataset import dataframe_arguments

    unlabelled = table.assign(spend=np.nan)
    with pytest.raises(ValueError, match=r"model.fit\(df\): task\(s\) 'spend' .*no label"):
        dataframe_arguments(schema, unlabelled, None, {}, "fit")
    _, _, kwargs = dataframe_arguments(schema, table, None,
                                       {"validation_data": unlabelled}, "fit")
    assert isinstance(kwargs["validation_data"], tf.data.Dataset)


def test_a_mask_column_of_strings_is_refused(table):
    from mtrec import TaskSpec

    frame = table.assign(shown=["yes", "no"] * (len(table) // 2))
    schema = Schema([Numeric("num")], [TaskSpec("click", mask="shown")])
    with pytest.raises(ValueError, match=r"Mask column 'shown' of task 'click' must hold "
                                         r"0/1 .*'yes', 'no'"):
        schema.adapt(frame)
