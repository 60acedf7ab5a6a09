"""Tests for mtrec.schema: inference, adapt, validation errors, JSON."""

import atexit
import json
import os
import shutil
import tempfile

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, configuration, example, given, settings
from hypothesis import strategies as st

from mtrec import Categorical, MultiHot, Numeric, Schema, TaskSpec, Text, Vector

# Hypothesis writes caches (constants of the local source, unicode tables)
# into `./.hypothesis` already while collecting @given tests; tests must not
# write into the working directory, so point it at a temporary folder.
if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
    _HYPOTHESIS_HOME = tempfile.mkdtemp(prefix="mtrec-hypothesis-")
    configuration.set_hypothesis_home_dir(_HYPOTHESIS_HOME)
    atexit.register(shutil.rmtree, _HYPOTHESIS_HOME, ignore_errors=True)

REVIEWS = [
    "The dress fits well and looks great",
    "Runs small so order one size up",
    "Lovely soft fabric but the zip broke",
    "Too long for me and a bit see through",
    "Perfect for summer evenings with sandals",
    "Cheap looking material that pills after one wash",
]


def tiny():
    """Six rows; every statistic below is computed by hand from it."""
    return pd.DataFrame({
        "color": pd.Series(["red", "blue", None, "red", "blue", "green"], dtype=object),
        "user_id": np.array([3, 1, 3, 2, 3, 1], dtype="int64"),
        "count": np.array([1, 2, 3, 4, 5, 6], dtype="int64"),
        "price": np.array([1.0, 2.0, np.nan, 4.0, 5.0, 6.0]),
        "flag": [True, False, True, True, False, True],
        "tags": pd.Series(["a|b", "b", "", None, "c|b|a", "b|a"], dtype=object),
        "genres": pd.Series([["x", "y"], ["y"], [], None, ["y", "z"], ["x"]],
                            dtype=object),
        "emb": pd.Series([[1.0, 2.0], [3.0, 4.0], None, [5.0, 6.0], [7.0, 8.0],
                          [9.0, 10.0]], dtype=object),
        "review": REVIEWS,
        "click": [0, 1, 0, 1, 1, 0],
        "spend": [0.5, 1.5, np.nan, 2.0, 0.0, 3.0],
    })


TASKS = {"click": "binary", "spend": "regression"}

EXPECTED_KINDS = {
    "color": (Categorical, "string"), "user_id": (Categorical, "int64"),
    "count": (Numeric, None), "price": (Numeric, None),
    "flag": (Categorical, "string"), "tags": (Categorical, "string"),
    "genres": (MultiHot, None), "emb": (Vector, None), "review": (Text, None),
}


@pytest.fixture
def df():
    return tiny()


@pytest.fixture
def adapted(df):
    schema = Schema.infer(df, tasks=TASKS, verbose=False, tags=MultiHot("tags"))
    return schema.adapt(df)


def base_schema(*features, tasks=None):
    return Schema(list(features), tasks or {"click": "binary"})


# --------------------------------------------------------------------------
# infer
# --------------------------------------------------------------------------
def test_infer_picks_kinds_from_dtypes(df):
    schema = Schema.infer(df, tasks=TASKS, verbose=False)
    assert schema.feature_names == list(EXPECTED_KINDS)
    for name, (cls, dtype) in EXPECTED_KINDS.items():
        spec = schema.feature(name)
        assert type(spec) is cls, name
        if dtype is not None:
            assert spec.dtype == dtype, name
    assert schema.feature("emb").dim == 2
    assert [(t.name, t.kind, t.label) for t in schema.tasks] == [
        ("click", "binary", "click"), ("spend", "regression", "spend")]
    assert not schema.adapted


def test_infer_id_suffix_is_case_insensitive_and_only_for_integers():
    df = pd.DataFrame({"itemID": [1, 2, 3], "score_id": [0.5, 1.5, 2.5],
                       "idx": [1, 2, 3], "y": [0, 1, 0]})
    schema = Schema.infer(df, tasks={"y": "binary"}, verbose=False)
    assert schema.feature("itemID") == Categorical("itemID", dtype="int64")
    assert schema.feature("score_id") == Numeric("score_id")
    assert schema.feature("idx") == Numeric("idx")


def test_infer_id_must_be_a_word_of_the_name():
    names = ["id", "user_id", "item-id", "user.id", "USER_ID", "itemId", "itemID",
             "paid", "valid", "rapid", "squid", "Paid"]
    df = pd.DataFrame({n: [1, 2, 3] for n in names} | {"y": [0, 1, 0]})
    schema = Schema.infer(df, tasks={"y": "binary"}, verbose=False)
    kinds = {n: schema.feature(n).kind for n in names}
    assert kinds == {**{n: "categorical" for n in names[:7]},
                     **{n: "numeric" for n in names[7:]}}


def test_infer_short_repeated_strings_stay_categorical():
    # Over four words per row, but only two distinct values: not free text.
    df = pd.DataFrame({"plan": ["one two three four five", "six seven eight nine ten"] * 10,
                       "y": [0, 1] * 10})
    schema = Schema.infer(df, tasks={"y": "binary"}, verbose=False)
    assert schema.feature("plan") == Categorical("plan")


def test_infer_prints_what_it_picked(df, capsys):
    Schema.infer(df, tasks=TASKS, tags=MultiHot("tags"))
    out = capsys.readouterr().out
    assert "9 features, 2 tasks (click:binary, spend:regression)" in out
    lines = {line.split()[0].strip("'"): line for line in out.splitlines()[1:]}
    assert set(lines) == set(EXPECTED_KINDS)
    assert lines["color"].split()[1] == "categorical"
    assert lines["user_id"].split()[1] == "categorical"
    assert lines["count"].split()[1] == "numeric"
    assert lines["price"].split()[1] == "numeric"
    assert lines["genres"].split()[1] == "multihot"
    assert lines["emb"].split()[1] == "vector"
    assert lines["review"].split()[1] == "text"
    assert lines["tags"].split()[1:] == ["multihot", "(override)"]
    assert "(int64)" in lines["count"]
    assert "(float64)" in lines["price"]


def test_infer_verbose_false_prints_nothing(df, capsys):
    Schema.infer(df, tasks=TASKS, verbose=False)
    assert capsys.readouterr().out == ""


def test_infer_overrides_and_exclude(df):
    schema = Schema.infer(df, tasks=TASKS, verbose=False, exclude=["review", "emb"],
                          color=Categorical("color", embedding_dim=4),
                          price=Numeric("price", log1p=True))
    assert "review" not in schema.feature_names
    assert "emb" not in schema.feature_names
    assert schema.feature("color") == Categorical("color", embedding_dim=4)
    assert schema.feature("price").log1p is True
    # A single column name as a string excludes that column, not substrings.
    schema = Schema.infer(df, tasks=TASKS, verbose=False, exclude="user_id")
    assert "user_id" not in schema.feature_names
    assert "count" in schema.feature_names


def test_infer_labels_are_never_features(df):
    schema = Schema.infer(df, tasks=[TaskSpec("ctr", label="click")], verbose=False)
    assert "click" not in schema.feature_names
    assert "spend" in schema.feature_names   # not a label here: a feature


def test_infer_override_of_unknown_column_raises(df):
    with pytest.raises(ValueError, match=r"not in the data: \['colour'\]"):
        Schema.infer(df, tasks=TASKS, verbose=False, colour=Categorical("colour"))


def test_infer_override_with_another_name_raises(df):
    with pytest.raises(ValueError) as info:
        Schema.infer(df, tasks=TASKS, verbose=False, review=Text("reviews"))
    assert "'review'" in str(info.value)
    assert "review=Text('review', ...)" in str(info.value)


def test_infer_override_of_a_label_raises(df):
    with pytest.raises(ValueError, match="'click' is a task label"):
        Schema.infer(df, tasks=TASKS, verbose=False, click=Numeric("click"))


def test_infer_unsupported_dtype_names_the_column():
    df = pd.DataFrame({"when": pd.date_range("2024-01-01", periods=3), "y": [0, 1, 0]})
    with pytest.raises(ValueError) as info:
        Schema.infer(df, tasks={"y": "binary"}, verbose=False)
    assert "'when'" in str(info.value)
    assert "exclude it" in str(info.value)


def test_infer_rejects_non_string_column_names():
    df = pd.DataFrame(np.zeros((3, 2)))
    df["y"] = [0, 1, 0]
    with pytest.raises(ValueError, match=r"Column names must be strings.*astype\(str\)"):
        Schema.infer(df, tasks={"y": "binary"}, verbose=False)


def test_infer_rejects_non_dataframe():
    with pytest.raises(ValueError, match="expects a pandas DataFrame, got dict"):
        Schema.infer({"a": [1], "y": [0]}, tasks={"y": "binary"})


# --------------------------------------------------------------------------
# adapt: values checked by hand
# --------------------------------------------------------------------------
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
    assert schema.stats["x"] == {"mean": 2.0, "variance": 1.0}
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


def test_adapt_multiclass_num_classes():
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "grade": [0, 2, np.nan, 1]})
    schema = Schema([Numeric("x")], {"grade": "multiclass"}).adapt(df)
    assert schema.num_classes(schema.tasks[0]) == 3
    fixed = Schema([Numeric("x")], [TaskSpec("grade", "multiclass", num_classes=5)])
    assert fixed.adapt(df).num_classes(fixed.tasks[0]) == 5


def test_adapt_multiclass_num_classes_from_numeric_strings():
    # "9" > "10" as strings; the classes are numbers.
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "grade": ["9", "10", "0", "1"]})
    schema = Schema([Numeric("x")], {"grade": "multiclass"}).adapt(df)
    assert schema.num_classes(schema.tasks[0]) == 11


def test_adapt_returns_self_and_marks_adapted(df):
    schema = Schema.infer(df, tasks=TASKS, verbose=False)
    assert schema.adapt(df) is schema
    assert schema.adapted
    assert "adapted=True" in repr(schema)


# --------------------------------------------------------------------------
# raw_features / raw_labels
# --------------------------------------------------------------------------
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
    assert raw["review"].dtype == object and list(raw["review"]) == REVIEWS
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


def test_raw_labels_float32_with_nan(adapted, df):
    labels = adapted.raw_labels(df)
    assert set(labels) == {"click", "spend"}
    assert labels["click"].dtype == np.float32
    np.testing.assert_array_equal(labels["click"], [0, 1, 0, 1, 1, 0])
    np.testing.assert_array_equal(labels["spend"],
                                  np.array([0.5, 1.5, np.nan, 2, 0, 3], "float32"))


# --------------------------------------------------------------------------
# JSON round trip
# --------------------------------------------------------------------------
def test_json_round_trip_before_adapt(df, tmp_path):
    schema = Schema.infer(df, tasks=[TaskSpec("ctr", label="click"),
                                     TaskSpec("spend", "regression")], verbose=False)
    restored = Schema.from_json(schema.to_json())
    assert restored == schema
    assert restored.features == schema.features
    assert restored.tasks[0] == TaskSpec("ctr", label="click")
    path = tmp_path / "schema.json"
    text = schema.to_json(path, indent=2)
    assert path.read_text(encoding="utf-8") == text
    assert Schema.from_json(path) == schema
    assert Schema.from_json(str(path)) == schema


def test_json_round_trip_after_adapt(adapted, tmp_path):
    restored = Schema.from_json(adapted.to_json())
    assert restored == adapted
    assert restored.adapted
    assert restored.stats["user_id"]["vocabulary"] == [3, 1, 2]
    path = tmp_path / "adapted.json"
    adapted.to_json(path)
    assert Schema.from_json(path) == adapted
    assert json.loads(path.read_text())["stats"]["color"]["vocabulary"] == [
        "blue", "red", "", "green"]


def test_json_equality_sees_differences(adapted):
    other = Schema.from_json(adapted.to_json())
    other.stats["price"]["mean"] += 1.0
    assert other != adapted
    renamed = Schema.from_dict({**adapted.to_dict(), "tasks": [
        {"name": "click", "kind": "regression", "label": "click", "num_classes": None}]})
    assert renamed != adapted


def test_from_dict_unknown_feature_kind():
    config = {"features": [{"kind": "pixels", "name": "img"}],
              "tasks": [{"name": "click", "kind": "binary"}]}
    with pytest.raises(ValueError, match="Unknown feature kind 'pixels'.*'categorical'"):
        Schema.from_dict(config)


# --------------------------------------------------------------------------
# errors name the column and say how to fix it
# --------------------------------------------------------------------------
def error_of(fn):
    with pytest.raises(ValueError) as info:
        fn()
    return str(info.value)


def test_missing_feature_column_at_adapt_and_validate(df):
    schema = base_schema(Categorical("colour"), Numeric("price"))
    for call in (lambda: schema.adapt(df), lambda: schema.validate(df)):
        message = error_of(call)
        assert "Missing feature column(s) ['colour']" in message
        assert "did you mean 'color'?" in message
        assert "Add the column(s) or remove them from the schema" in message


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


def test_label_column_absent(df):
    schema = Schema([Numeric("price")], {"ctr": "binary"})
    message = error_of(lambda: schema.adapt(df))
    assert "label column of task 'ctr'" in message and "['ctr']" in message
    message = error_of(lambda: Schema.infer(df, tasks={"ctr": "binary"}))
    assert "Missing label column(s) ['ctr']" in message


def test_duplicate_task_names():
    message = error_of(lambda: Schema(
        [Numeric("price")], [TaskSpec("ctr", label="click"),
                             TaskSpec("ctr", "regression", label="spend")]))
    assert "Duplicate task name(s) ['ctr']" in message and "rename" in message


def test_duplicate_feature_names():
    message = error_of(lambda: Schema([Numeric("price"), Categorical("price")],
                                      {"click": "binary"}))
    assert "Duplicate feature name(s) ['price']" in message and "rename" in message


def test_label_column_listed_as_a_feature():
    message = error_of(lambda: Schema([Numeric("price"), Numeric("click")],
                                      [TaskSpec("ctr", label="click")]))
    assert "Column 'click' is the label of task 'ctr'" in message
    assert "Remove the feature 'click'" in message


def test_unknown_task_kind_suggests_the_closest():
    message = error_of(lambda: TaskSpec("ctr", kind="binery"))
    assert "Task 'ctr' has kind 'binery'" in message and "Did you mean 'binary'?" in message
    message = error_of(lambda: Schema([Numeric("price")], {"spend": "regresion"}))
    assert "Did you mean 'regression'?" in message


def test_schema_needs_a_task():
    assert "at least one task" in error_of(lambda: Schema([Numeric("price")], {}))


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


def test_binary_label_other_than_0_1(df):
    bad = df.assign(click=[0, 1, 2, 1, 1, 0])
    message = error_of(lambda: Schema([Numeric("price")], {"click": "binary"}).adapt(bad))
    assert "Label column 'click' of binary task 'click'" in message
    assert "e.g. 2" in message and "map it to 0/1" in message


def test_non_numeric_labels(df):
    bad = df.assign(click=["no", "yes", "no", "yes", "yes", "no"])
    message = error_of(lambda: Schema([Numeric("price")], {"click": "binary"}).adapt(bad))
    assert "Label column 'click'" in message and "non-numeric values (e.g. 'no')" in message
    assert "labels must be numbers" in message


def test_multiclass_labels_out_of_range():
    df = pd.DataFrame({"x": [1.0, 2.0], "grade": [0.5, 1]})
    schema = Schema([Numeric("x")], {"grade": "multiclass"})
    assert "must hold integers in [0, num_classes)" in error_of(lambda: schema.adapt(df))
    df = pd.DataFrame({"x": [1.0, 2.0], "grade": [0, 3]})
    schema = Schema([Numeric("x")], [TaskSpec("grade", "multiclass", num_classes=3)])
    assert "'grade'" in error_of(lambda: schema.adapt(df))


def test_infinite_labels():
    df = pd.DataFrame({"x": [1.0, 2.0], "grade": [0, np.inf]})
    for kind in ("multiclass", "regression"):
        message = error_of(lambda: Schema([Numeric("x")], {"grade": kind}).adapt(df))
        assert "Label column 'grade'" in message and "infinite values (e.g. inf)" in message
    # finite in float64 but inf once cast to the float32 the model trains on
    df = pd.DataFrame({"x": [1.0, 2.0], "spend": [0.0, 1e39]})
    message = error_of(lambda: Schema([Numeric("x")], {"spend": "regression"}).adapt(df))
    assert "Label column 'spend'" in message and "e.g. 1e+39" in message


def test_multiclass_labels_all_missing():
    df = pd.DataFrame({"x": [1.0, 2.0], "grade": [np.nan, np.nan]})
    schema = Schema([Numeric("x")], {"grade": "multiclass"})
    message = error_of(lambda: schema.adapt(df))
    assert "'grade'" in message and "num_classes=..." in message


def test_validate_rejects_non_dataframe(adapted):
    assert "Expected a pandas DataFrame, got dict" in error_of(
        lambda: adapted.validate({"color": ["red"]}))


def test_feature_stats_before_adapt(df):
    schema = Schema.infer(df, tasks=TASKS, verbose=False)
    assert "call schema.adapt(train_df)" in error_of(lambda: schema.feature_stats("color"))
    with pytest.raises(KeyError, match="No feature named 'nope'"):
        schema.feature("nope")


# --------------------------------------------------------------------------
# garbage in: ValueError or success, never another exception
# --------------------------------------------------------------------------
SCALARS = st.one_of(
    st.none(), st.just(np.nan), st.booleans(),
    st.integers(-10 ** 12, 10 ** 12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.lists(st.floats(-1e3, 1e3) | st.integers(-5, 5), max_size=3),
    st.lists(st.text(max_size=4), max_size=3),
    st.dictionaries(st.text(max_size=2), st.integers(0, 3), max_size=2),
)


@st.composite
def garbage_frames(draw):
    rows = draw(st.integers(1, 8))
    names = draw(st.lists(st.sampled_from(["a", "b_id", "notes", "vec"]),
                          min_size=1, max_size=3, unique=True))
    data = {}
    for name in names:
        if draw(st.booleans()):
            values = draw(st.lists(SCALARS, min_size=rows, max_size=rows))
            data[name] = pd.Series(values, dtype=object)
        else:   # a homogeneous column of one draw's type, possibly typed
            value = draw(SCALARS)
            data[name] = pd.Series([value] * rows, dtype=object).infer_objects()
    data["y"] = draw(st.lists(st.sampled_from([0, 1, np.nan]), min_size=rows,
                              max_size=rows))
    return pd.DataFrame(data)


@settings(max_examples=30, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(garbage_frames())
# found by longer random runs: lists, then a scalar past the 20-row sample
@example(pd.DataFrame({"vec": pd.Series([[1.0, 2.0]] * 21 + [2.5], dtype=object),
                       "y": [0, 1] * 11}))
@example(pd.DataFrame({"vec": pd.Series([[1.0, 2.0], pd.NA], dtype=object), "y": [0, 1]}))
def test_garbage_columns_adapt_or_raise_value_error(frame):
    try:
        schema = Schema.infer(frame, tasks={"y": "binary"}, verbose=False)
        schema.adapt(frame)
        raw = schema.raw_features(frame)
        restored = Schema.from_json(schema.to_json())
    except ValueError:
        pass   # the documented failure; any other exception fails the test
    else:
        assert restored == schema
        assert set(raw) == set(schema.feature_names)
        assert all(len(v) == len(frame) for v in raw.values())


LABELS = st.one_of(st.none(), st.integers(-3, 12), st.booleans(),
                   st.floats(allow_nan=True, allow_infinity=True),
                   st.sampled_from(["1", "0", "x", ""]))


@settings(max_examples=30, deadline=None, database=None, derandomize=True)
@given(st.lists(LABELS, min_size=1, max_size=6),
       st.sampled_from(["binary", "regression", "multiclass"]))
@example([0, float("inf")], "multiclass")
@example([3.4028235677973366e+38], "regression")     # inf once cast to float32
def test_garbage_labels_adapt_or_raise_value_error(labels, kind):
    frame = pd.DataFrame({"x": np.arange(len(labels), dtype=float),
                          "y": pd.Series(labels, dtype=object)})
    schema = Schema([Numeric("x")], {"y": kind})
    try:
        schema.adapt(frame)
    except ValueError:
        pass
    else:
        values = schema.raw_labels(frame)["y"]
        assert values.dtype == np.float32 and values.shape == (len(labels),)
        assert not np.isinf(values).any()
        if kind == "multiclass":
            assert schema.num_classes(schema.tasks[0]) >= 1
