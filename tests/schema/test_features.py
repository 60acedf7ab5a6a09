"""Tests for mtrec.schema.features: what each feature spec adapts, checks and converts."""

import dataclasses
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from mtrec import Categorical, MultiHot, Numeric, Schema, Text, Vector
from mtrec.schema import FEATURE_KINDS, FeatureSpec
from helpers import base_schema, error_of


TASKS = {"click": "binary", "spend": "regression"}


def test_adapt_categorical_vocabulary_order_and_missing(adapted):
    # red 2, blue 2, missing 1, green 1: most frequent first, ties by token.
    assert adapted.stats["color"] == {"vocabulary": ["blue", "red", "", "green"]}
    # 3 x3, 1 x2, 2 x1
    assert adapted.stats["user_id"] == {"vocabulary": [3, 1, 2]}
    assert all(type(v) is int for v in adapted.stats["user_id"]["vocabulary"])
    # True x4, False x2
    assert adapted.stats["flag"] == {"vocabulary": ["True", "False"]}


def test_adapt_categorical_max_tokens_and_min_frequency(df):
    schema = base_schema(Categorical("color", max_tokens=3),
                         Categorical("user_id", dtype="int64", min_frequency=2)).adapt(df)
    assert schema.stats["color"]["vocabulary"] == ["blue", "red", ""]
    assert schema.stats["user_id"]["vocabulary"] == [3, 1]


def test_adapt_integer_categorical_missing_is_minus_one():
    df = pd.DataFrame({"shop_id": pd.array([7, None, 7, 5], dtype="Int64"),
                       "click": [0, 1, 0, 1]})
    schema = base_schema(Categorical("shop_id", dtype="int64")).adapt(df)
    assert schema.stats["shop_id"]["vocabulary"] == [7, -1, 5]
    np.testing.assert_array_equal(schema.raw_features(df)["shop_id"], [7, -1, 7, 5])


def test_adapt_hashed_categorical_learns_no_vocabulary(df):
    schema = base_schema(Categorical("color", num_hash_bins=8)).adapt(df)
    assert schema.stats["color"] == {"num_hash_bins": 8}


def test_adapt_numeric_mean_and_variance(adapted):
    # price without the NaN: 1, 2, 4, 5, 6 -> mean 3.6;
    # squared deviations 6.76 + 2.56 + 0.16 + 1.96 + 5.76 = 17.2 -> var 3.44
    assert adapted.stats["price"]["mean"] == pytest.approx(3.6)
    assert adapted.stats["price"]["variance"] == pytest.approx(3.44)
    # count 1..6: mean 3.5, population variance 17.5 / 6
    assert adapted.stats["count"]["mean"] == pytest.approx(3.5)
    assert adapted.stats["count"]["variance"] == pytest.approx(17.5 / 6)


def test_adapt_numeric_log1p_and_inf():
    df = pd.DataFrame({"x": [-np.e + 1, 0.0, np.e - 1, np.inf], "click": [0, 1, 0, 1]})
    schema = base_schema(Numeric("x", log1p=True)).adapt(df)
    # sign(x) * log1p(|x|): -1, 0, 1 (inf dropped) -> mean 0, variance 2/3
    assert schema.stats["x"]["mean"] == pytest.approx(0.0, abs=1e-12)
    assert schema.stats["x"]["variance"] == pytest.approx(2 / 3)


def test_adapt_numeric_ignores_values_beyond_float32():
    # The model reads float32: 1e39 arrives as inf and is imputed as
    # missing, so the statistics must not include it either.
    df = pd.DataFrame({"x": [1.0, 3.0, 1e39], "click": [0, 1, 0]})
    schema = base_schema(Numeric("x")).adapt(df)
    assert schema.stats["x"] == {"mean": 2.0, "variance": 1.0, "min": 1.0, "max": 3.0}
    raw = schema.raw_features(df)["x"]
    assert raw.dtype == np.float32 and np.isinf(raw[2])


def test_adapt_multihot_vocabulary_and_max_items(adapted, df):
    # tags: a x3, b x4, c x1; longest row "c|b|a" has 3 items.
    assert adapted.stats["tags"] == {"vocabulary": ["b", "a", "c"], "max_items": 3}
    # genres (lists): y x3, x x2, z x1; longest row has 2 items.
    assert adapted.stats["genres"] == {"vocabulary": ["y", "x", "z"], "max_items": 2}
    capped = base_schema(MultiHot("tags", max_items=1, max_tokens=2)).adapt(df)
    assert capped.stats["tags"] == {"vocabulary": ["b", "a"], "max_items": 1}


def test_adapt_multihot_max_items_counts_the_pieces_the_graph_splits():
    # The in-graph split of "a||b" gives ["a", "", "b"]: 3 slots are needed
    # or "b" would be cut off.
    df = pd.DataFrame({"tags": ["a||b", "c", None], "click": [0, 1, 0]})
    schema = base_schema(MultiHot("tags")).adapt(df)
    assert schema.stats["tags"] == {"vocabulary": ["a", "b", "c"], "max_items": 3}


def test_adapt_multihot_missing_values_are_no_token():
    df = pd.DataFrame({"tags": pd.array(["a|b", None, "a"], dtype="string"),
                       "click": [0, 1, 0]})
    schema = base_schema(MultiHot("tags")).adapt(df)
    assert schema.stats["tags"]["vocabulary"] == ["a", "b"]
    assert list(schema.raw_features(df)["tags"]) == ["a|b", "", "a"]


def test_adapt_text_vocabulary_and_max_length():
    df = pd.DataFrame({"t": ["Good good BAD", "bad, good!", None, ""],
                       "click": [0, 1, 0, 1]})
    schema = base_schema(Text("t")).adapt(df)
    # Lower-cased, punctuation stripped: good x3, bad x2. Lengths 3, 2, 0, 0:
    # the 95th percentile is 2.85, rounded up to 3 (the longest text fits).
    assert schema.stats["t"] == {"vocabulary": ["good", "bad"], "max_length": 3}
    small = base_schema(Text("t", max_tokens=3, max_length=7)).adapt(df)
    # max_tokens counts padding and OOV: room for one word.
    assert small.stats["t"] == {"vocabulary": ["good"], "max_length": 7}


def test_adapt_text_max_length_is_the_95th_percentile():
    df = pd.DataFrame({"t": ["w w"] * 19 + [" ".join(["w"] * 10)], "click": [0, 1] * 10})
    schema = base_schema(Text("t")).adapt(df)
    # sorted lengths: 19 x 2 then 10; position 0.95 * 19 = 18.05 -> 2.4,
    # rounded up to 3; the one outlier of 10 words is truncated
    assert schema.stats["t"]["max_length"] == 3


def test_adapt_text_on_a_category_column():
    df = pd.DataFrame({"t": pd.Categorical(["a b", None, "b"]), "click": [0, 1, 0]})
    schema = base_schema(Text("t")).adapt(df)
    assert schema.stats["t"]["vocabulary"] == ["b", "a"]


def test_adapt_vector_dim(adapted, df):
    assert adapted.stats["emb"] == {"dim": 2}
    learned = base_schema(Vector("emb")).adapt(df)
    assert learned.stats["emb"] == {"dim": 2}


def test_raw_features_dtypes_and_values(adapted, df):
    raw = adapted.raw_features(df)
    assert set(raw) == set(adapted.feature_names)
    assert raw["color"].dtype == object
    assert list(raw["color"]) == ["red", "blue", "", "red", "blue", "green"]
    assert all(type(v) is str for v in raw["color"])
    assert raw["user_id"].dtype == np.int64
    np.testing.assert_array_equal(raw["user_id"], [3, 1, 3, 2, 3, 1])
    assert raw["price"].dtype == np.float32
    np.testing.assert_array_equal(raw["price"], np.array([1, 2, np.nan, 4, 5, 6], "float32"))
    assert raw["count"].dtype == np.float32
    assert list(raw["flag"]) == ["True", "False", "True", "True", "False", "True"]
    assert list(raw["tags"]) == ["a|b", "b", "", "", "c|b|a", "b|a"]
    assert list(raw["genres"]) == ["x|y", "y", "", "", "y|z", "x"]
    assert raw["review"].dtype == object and list(raw["review"]) == list(df["review"])
    assert raw["emb"].dtype == np.float32 and raw["emb"].shape == (6, 2)
    np.testing.assert_array_equal(raw["emb"][[0, 5]], [[1, 2], [9, 10]])
    assert np.isnan(raw["emb"][2]).all()


def test_raw_features_vector_with_pd_na_row():
    df = pd.DataFrame({"v": pd.Series([[1.0, 2.0], pd.NA, [3, 4]], dtype=object),
                       "click": [0, 1, 0]})
    schema = base_schema(Vector("v")).adapt(df)
    raw = schema.raw_features(df)["v"]
    np.testing.assert_array_equal(raw[[0, 2]], [[1, 2], [3, 4]])
    assert np.isnan(raw[1]).all()


def test_float_column_declared_categorical(df):
    message = error_of(lambda: base_schema(Categorical("price")).adapt(df))
    assert "Column 'price' is float64" in message
    assert "declare it Numeric or cast the column to str" in message


def test_float_column_declared_integer_categorical(df):
    message = error_of(lambda: base_schema(Categorical("price", dtype="int64")).adapt(df))
    assert "Column 'price'" in message and "cast it to int64" in message


def test_huge_unsigned_ids_declared_integer_categorical():
    df = pd.DataFrame({"uid": np.array([2 ** 63 + 5, 1, 2], dtype="uint64"),
                       "click": [0, 1, 0]})
    message = error_of(lambda: base_schema(Categorical("uid", dtype="int64")).adapt(df))
    assert "Column 'uid'" in message and "astype(str)" in message


def test_string_column_declared_numeric(df):
    message = error_of(lambda: base_schema(Numeric("color")).adapt(df))
    assert "Column 'color'" in message
    assert "e.g. 'red'" in message
    assert "pd.to_numeric(df['color'], errors='coerce')" in message


def test_non_list_column_declared_vector(df):
    message = error_of(lambda: base_schema(Vector("price")).adapt(df))
    assert "Column 'price'" in message and "declares it Vector" in message
    assert "df['price'] = list(matrix)" in message


def test_vector_column_with_a_scalar_after_many_lists():
    df = pd.DataFrame({"v": pd.Series([[1.0, 2.0]] * 25 + [3.0], dtype=object),
                       "click": [0, 1] * 13})
    message = error_of(lambda: base_schema(Vector("v")).adapt(df))
    assert "Column 'v'" in message and "row 25" in message and "list(matrix)" in message


def test_vector_column_of_strings():
    df = pd.DataFrame({"v": pd.Series([[1.0, 2.0], ["a", "b"]], dtype=object),
                       "click": [0, 1]})
    message = error_of(lambda: base_schema(Vector("v")).adapt(df))
    assert "Column 'v' row 1" in message and "declare MultiHot('v')" in message


def test_vector_rows_of_mixed_lengths(df):
    bad = df.copy()
    bad.at[1, "emb"] = [3.0, 4.0, 5.0]
    message = error_of(lambda: base_schema(Vector("emb")).adapt(bad))
    assert "Vector column 'emb'" in message and "[2, 3]" in message
    assert "pad or truncate" in message
    inferred = Schema.infer(bad, tasks=TASKS, verbose=False)   # dim=2 from row 0
    message = error_of(lambda: inferred.adapt(bad))
    assert "Vector column 'emb'" in message and "dim=2" in message
    assert "Pad or truncate every row to 2 values" in message


def test_vector_rows_of_other_length_at_raw_features(adapted, df):
    bad = df.copy()
    bad.at[4, "emb"] = [1.0]
    message = error_of(lambda: adapted.raw_features(bad))
    assert "Vector column 'emb' row 4 has length 1; expected 2" in message


def test_multihot_list_items_containing_the_delimiter():
    df = pd.DataFrame({"g": pd.Series([["a|b", "c"], ["c"]], dtype=object),
                       "click": [0, 1]})
    message = error_of(lambda: base_schema(MultiHot("g")).adapt(df))
    assert "Column 'g' row 0" in message and "delimiter=" in message


def test_number_column_declared_text(df):
    message = error_of(lambda: base_schema(Text("price")).adapt(df))
    assert "Column 'price'" in message and "astype(str)" in message


def test_feature_spec_errors():
    assert "not a feature spec" in error_of(lambda: base_schema("price"))
    assert "reserved prefix 'mtrec:'" in error_of(lambda: base_schema(Numeric("mtrec:x")))
    assert "expected 'string' or 'int64'" in error_of(
        lambda: base_schema(Categorical("c", dtype="float32")))
    assert "expected 'mean' or 'max'" in error_of(
        lambda: base_schema(Text("t", pooling="sum")))
    assert "Categorical 'c' has max_tokens=0" in error_of(
        lambda: base_schema(Categorical("c", max_tokens=0)))
    assert "must be >= 3" in error_of(lambda: base_schema(Text("t", max_tokens=2)))
    assert "Vector 'v' has dim=-1" in error_of(lambda: base_schema(Vector("v", dim=-1)))


# --------------------------------------------------------------------------
# what each spec says about its raw input
# --------------------------------------------------------------------------
RAW_INPUTS = [   # spec, raw dtype, missing value, shape of one row (dim 2)
    (Categorical("c"), "string", "", ()),
    (Categorical("c", dtype="int64"), "int64", -1, ()),
    (Numeric("c"), "float32", "nan", ()),
    (MultiHot("c"), "string", "", ()),
    (Text("c"), "string", "", ()),
    (Vector("c"), "float32", "nan", (2,)),
]


@pytest.mark.parametrize("spec, dtype, missing, shape", RAW_INPUTS,
                         ids=[f"{s.kind}-{d}" for s, d, _, _ in RAW_INPUTS])
def test_spec_raw_input(spec, dtype, missing, shape):
    stats = {"dim": 2}
    assert spec.raw_dtype == dtype and spec.raw_shape(stats) == shape
    if missing == "nan":
        assert np.isnan(spec.missing_value)
    else:
        assert spec.missing_value == missing
    serving = spec.serving_spec(stats, name="served_c")
    assert serving.dtype == tf.as_dtype(dtype) and serving.name == "served_c"
    assert serving.shape.as_list() == [None, *shape]
    parsing = spec.parsing_spec(stats)
    assert parsing.dtype == tf.as_dtype(dtype) and tuple(parsing.shape) == shape
    dummy = spec.dummy(stats, rows=3)
    assert dummy.shape == (3, *shape)
    assert dummy.dtype == (object if dtype == "string" else np.dtype(dtype))
    assert pd.isna(dummy).all() if missing == "nan" else (dummy == missing).all()


def test_spec_csv_dtypes_and_the_vector_that_a_csv_cannot_hold():
    assert [s.csv_dtype() for s, *_ in RAW_INPUTS[:5]] == [str, "Int64", "float32", str, str]
    with pytest.raises(ValueError, match="Feature 'c' is a Vector.*Parquet"):
        Vector("c").csv_dtype()


def test_vector_raw_shape_needs_adapt():
    with pytest.raises(ValueError, match="'v' has no learned statistics"):
        Vector("v").raw_shape(None)


# --------------------------------------------------------------------------
# a new feature kind is one class: the loops over specs pick it up
# --------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Hour(FeatureSpec):
    """Hour of the day, 0..23, served as int64 (-1 missing)."""

    name: str
    modality: str = "tabular"
    kind: ClassVar[str] = "hour"
    raw_dtype: ClassVar[str] = "int64"
    missing_value: ClassVar = -1

    def csv_dtype(self):
        return "Int64"

    def check(self, series):
        if not pd.api.types.is_integer_dtype(series):
            raise ValueError(f"Column '{self.name}' must hold integer hours.")

    def adapt(self, series):
        return {"seen": sorted(int(v) for v in series.dropna().unique())}

    def to_array(self, series, stats):
        return series.astype("Int64").fillna(-1).astype(np.int64).to_numpy()


@pytest.fixture
def hour_schema(monkeypatch):
    monkeypatch.setitem(FEATURE_KINDS, "hour", Hour)
    frame = pd.DataFrame({"hour": pd.array([0, 23, None, 7], dtype="Int64"),
                          "price": [1.0, 2.0, 3.0, 4.0], "click": [0, 1, 0, 1]})
    return Schema([Hour("hour"), Numeric("price")], {"click": "binary"}).adapt(frame), frame


def test_a_new_spec_reaches_signature_parsing_dummy_batch_and_csv(hour_schema):
    from mtrec.data.streaming import csv_dtypes
    from mtrec.export.saved_model import example_parsing_spec, raw_input_signature
    from mtrec.layers.feature_preprocessing import dummy_raw_batch

    schema, frame = hour_schema
    assert schema.stats["hour"] == {"seen": [0, 7, 23]}
    assert raw_input_signature(schema)["hour"] == tf.TensorSpec([None], tf.int64, name="hour")
    parsing = example_parsing_spec(schema)["hour"]
    assert parsing.dtype == tf.int64 and parsing.default_value == -1
    batch = dummy_raw_batch(schema, rows=3)
    assert batch["hour"].dtype == np.int64 and list(batch["hour"]) == [-1, -1, -1]
    assert csv_dtypes(schema)["hour"] == "Int64"
    assert list(schema.raw_features(frame)["hour"]) == [0, 23, -1, 7]
    assert Schema.from_json(schema.to_json()) == schema
    with pytest.raises(ValueError, match="integer hours"):
        schema.validate(frame.assign(hour=["a", "b", "c", "d"]))


def test_a_spec_of_an_unregistered_kind_is_refused():
    with pytest.raises(ValueError, match="not a feature spec"):
        Schema([Hour("hour")], {"click": "binary"})
