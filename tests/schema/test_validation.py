"""Tests for mtrec.schema.validation: the CSV line check, value checks,
adapt checks and numeric ranges."""

import gzip
import io
import warnings

import numpy as np
import pandas as pd
import pytest

from mtrec import Categorical, Numeric, Schema, TaskSpec
from mtrec.schema import validation
from mtrec.schema.validation import DataValidationError, DataWarning, read_csv_chunks
from helpers import base_schema, error_of

# Quoted delimiters, doubled quotes, a quoted line break, a literal quote in
# an unquoted field, CRLF, blank and whitespace-only lines: all 3 fields.
TRICKY = ('a,b,c\r\n1,2,3\r\n\r\n  \n"x,y",2,3\n"a""b,",2,3\n5\'11",2,"q"\n'
          '"multi\nline,",2,3\n7,8,9')


def rows_of(path, **options):
    return sum(len(f) for f in read_csv_chunks(path, chunk_rows=2, **options))


def test_well_formed_tricky_csv_passes(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(TRICKY)
    assert rows_of(path) == 6 == len(pd.read_csv(path))


@pytest.mark.parametrize("line,found", [("1,2", 2), ("1,2,3,4", 4), ('"1,2",3', 2)])
def test_a_line_with_the_wrong_field_count_is_refused(tmp_path, line, found):
    path = tmp_path / "t.csv"
    path.write_text(f"a,b,c\n1,2,3\n\n{line}\n4,5,6\n")
    with pytest.raises(DataValidationError) as info:
        rows_of(path)
    assert f"line 4 has {found} field(s), but the header has 3" in str(info.value)
    assert info.value.rows == [4]


def test_every_bad_line_of_a_block_is_named(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b\n" + "1,2\n" * 3 + "1\n" * 7)
    message = error_of(lambda: rows_of(path))
    assert "line 5 has 1; line 6 has 1" in message and "(and 2 more in this block)" in message


def test_reads_of_any_size_find_the_same_lines(tmp_path):
    # pandas reads 256 KB blocks; records (and quoted fields) cut by a read
    # must be counted once, whole.
    text = (TRICKY + "\n") * 3 + "1,2\n"
    for size in (1, 3, 7, 64):
        check = validation._RecordCheck(io.BytesIO(text.encode()), "t.csv", ",", '"', True)
        with pytest.raises(DataValidationError, match="line 31 has 2 field"):
            while check.read(size):
                pass


def test_gzip_and_other_separators_are_checked(tmp_path):
    path = tmp_path / "t.csv.gz"
    with gzip.open(path, "wt") as f:
        f.write("a;b\n1;2\n3\n")
    assert "line 3 has 1 field" in error_of(lambda: rows_of(path, sep=";"))


def test_options_it_cannot_mirror_skip_the_check(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b\n# note\n1,2\n3\n")
    assert rows_of(path, comment="#") == 2     # pandas' own reading, unchanged


def test_nrows_checks_only_the_rows_read(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1,2\n3,4\n5\n")
    [frame] = read_csv_chunks(path, nrows=2)
    assert len(frame) == 2
    assert "line 4" in error_of(lambda: list(read_csv_chunks(path, nrows=3)))


def test_non_utf8_bytes_name_the_line_and_column(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b'a,b,c\n1,"x,y",3\n1,"z",caf\xe9\n')
    message = error_of(lambda: rows_of(path))
    assert "line 3, column 'c'" in message and "not valid UTF-8" in message
    assert rows_of(path, encoding="latin-1") == 2


def test_typed_values_pandas_cannot_parse_are_named(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("id,x\n1,0.5\n2,high\n3.5,1\n")
    message = error_of(lambda: rows_of(path, dtype={"x": "float32"},
                                       describe={"x": "a Numeric feature"}))
    assert "Column 'x' (a Numeric feature) holds values that are not numbers: 'high' " \
           "in row(s) 1" in message
    assert "not integers: '3.5' in row(s) 2" in error_of(
        lambda: rows_of(path, dtype={"id": "Int64"}))


def test_a_repeated_header_name_is_refused(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b,a\n1,2,3\n")
    assert "['a'] appear more than once in the header" in error_of(
        lambda: validation.csv_header(path))


def test_integer_ids():
    values = pd.Series(["3", " 4 ", "", None, "-1"], dtype=object)
    assert validation.integer_ids(values, "id").tolist() == [3, 4, pd.NA, pd.NA, -1]
    assert validation.integer_ids(pd.Series([2.0, np.nan]), "id").tolist() == [2, pd.NA]
    big = 2**62 + 1     # not rounded through float64
    assert validation.integer_ids(pd.Series([str(big)]), "id").tolist() == [big]
    for bad in (["1", "x"], [1.0, 2.5], ["1e30"], [True, False]):
        with pytest.raises(DataValidationError, match="Column 'id' .*not integers"):
            validation.integer_ids(pd.Series(bad, dtype=object), "id")


def test_mask_values():
    task = TaskSpec("buy", mask="shown")
    for good in ([0, 1, np.nan], [True, False], ["1", "0"]):
        validation.check_mask(task, pd.Series(good, dtype=object))
    with pytest.raises(DataValidationError, match=r"Mask column 'shown' of task 'buy' must "
                                                  r"hold 0/1.*'yes', 'no' in row\(s\) 0, 1"):
        validation.check_mask(task, pd.Series(["yes", "no"]))


def test_adapt_refuses_no_rows_and_tasks_without_labels():
    df = pd.DataFrame({"x": [1.0, 2.0], "click": [0, 1], "spend": [np.nan, np.nan],
                       "buy": [1, 0], "shown": [0, 0]})
    assert "no rows" in error_of(lambda: base_schema(Numeric("x")).adapt(df.iloc[:0]))
    schema = base_schema(Numeric("x"), tasks=[TaskSpec("click"),
                                              TaskSpec("spend", "regression")])
    assert "task(s) 'spend' (label column 'spend' is all missing)" in error_of(
        lambda: schema.adapt(df))
    masked = base_schema(Numeric("x"), tasks=[TaskSpec("buy", mask="shown")])
    assert "masked out by 'shown'" in error_of(lambda: masked.adapt(df))


def test_adapt_warns_about_constant_and_all_missing_features():
    df = pd.DataFrame({"x": [np.nan, np.nan], "c": ["a", "a"], "d": ["a", "b"],
                       "click": [0, 1]})
    schema = base_schema(Numeric("x"), Categorical("c"), Categorical("d"))
    with pytest.warns(DataWarning, match=r"all missing: \['x'\].*constant .*\['c'\]"):
        schema.adapt(df)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        base_schema(Categorical("d")).adapt(df)


def test_a_constant_vector_column_is_found_and_a_varied_one_is_not():
    from mtrec.schema import Vector

    same = [np.array([0.5, 1.0], np.float32) for _ in range(4)]
    varied = [np.array([0.5, 1.0 + i], np.float32) for i in range(3)] + [None]
    df = pd.DataFrame({"v": pd.Series(same, dtype=object),
                       "w": pd.Series(varied, dtype=object), "click": [0, 1, 0, 1]})
    schema = base_schema(Vector("v", dim=2), Vector("w", dim=2))
    assert validation.warn_degenerate_features(schema, df) == ([], ["v"])
    # same bytes, another shape or dtype: not the same value
    df["v"] = pd.Series([same[0], same[0].reshape(2, 1), same[0].astype(np.float64),
                         same[0]], dtype=object)
    assert validation.warn_degenerate_features(schema, df) == ([], [])


def test_numeric_range_is_learned_saved_and_reported():
    df = pd.DataFrame({"x": [1.0, 4.0, np.nan], "click": [0, 1, 0]})
    schema = base_schema(Numeric("x")).adapt(df)
    assert (schema.stats["x"]["min"], schema.stats["x"]["max"]) == (1.0, 4.0)
    restored = Schema.from_json(schema.to_json())
    assert restored == schema
    assert restored.out_of_range(pd.DataFrame({"x": [0.0, 2.0, 9.0, 9.5, np.inf]})) == {
        "x": {"below": 1, "above": 2, "min": 1.0, "max": 4.0}}
    assert schema.out_of_range(df) == {}
    # a schema saved before ranges existed loads and reports nothing
    old = schema.to_dict()
    old["stats"]["x"] = {"mean": 2.5, "variance": 2.25}
    assert Schema.from_dict(old).out_of_range(pd.DataFrame({"x": [1e30]})) == {}


def test_clip_is_written_only_when_set():
    assert "clip" not in Numeric("x").to_dict()
    assert Numeric("x", clip=True).to_dict()["clip"] is True
    schema = base_schema(Numeric("x", clip=True))
    assert Schema.from_json(schema.to_json()).features[0].clip is True
    assert "clip=1" in error_of(lambda: Numeric("x", clip=1).validate())


def test_duplicate_columns_are_refused():
    df = pd.DataFrame([[1.0, 2.0, 0]], columns=["x", "x", "click"])
    assert "['x'] appear more than once" in error_of(
        lambda: base_schema(Numeric("x")).validate(df))
