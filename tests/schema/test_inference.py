"""Tests for mtrec.schema.inference: the kind Schema.infer picks per column."""

import numpy as np
import pandas as pd
import pytest

from mtrec import Categorical, MultiHot, Numeric, Schema, TaskSpec, Text, Vector


TASKS = {"click": "binary", "spend": "regression"}


EXPECTED_KINDS = {
    "color": (Categorical, "string"), "user_id": (Categorical, "int64"),
    "count": (Numeric, None), "price": (Numeric, None),
    "flag": (Categorical, "string"), "tags": (Categorical, "string"),
    "genres": (MultiHot, None), "emb": (Vector, None), "review": (Text, None),
}


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
