"""The bad-input catalogue of the data surfaces (issue 13, items 4 and 7).

Each case is one bad input, run against every surface it applies to: the
DataFrame API (`Schema.adapt` on the frame, then `mtrec.data.from_pandas`
with a schema adapted on clean data), the CSV and Parquet streams
(`mtrec.data.streaming.from_csv` / `from_parquet`, iterated) and
`mtrec predict` (`mtrec.export.file_scoring.predict_file`, CSV input unless
the case is Parquet-only). Each asserts either a clear error naming the
column or line (`Error`: the message is matched) or a documented fallback
(`Fallback`: its result is checked). A hypothesis test then corrupts random
small frames at random and requires a ValueError naming a column, or the
same number of rows out as in: never a deep TF/pandas exception, never a
silent change of row count.

Errors raised while a stream is iterated reach the caller through tf.data,
as `tf.errors.InvalidArgumentError` whose message starts with mtrec's
`DataValidationError: ...` / `ValueError: ...`; those count as clear errors.

| surface   | cases | clear error | documented fallback | deep error | silent answer |
|-----------|-------|-------------|---------------------|------------|---------------|
| dataframe |    26 |          19 |                   7 |          0 |             0 |
| csv       |    25 |          16 |                   9 |          0 |             0 |
| parquet   |    21 |          14 |                   7 |          0 |             0 |
| predict   |    22 |           9 |                  13 |          0 |             0 |

(`test_the_table_above_counts_the_cases` recomputes it from `CASES`.)
"""

import dataclasses
import functools
import re
import warnings

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mtrec
from mtrec import Categorical, Numeric, Schema, TaskSpec
from mtrec.data import from_pandas, streaming
from mtrec.export import file_scoring
from mtrec.layers.feature_preprocessing import NUMERIC_KEY
from mtrec.schema.validation import DataWarning
from helpers import read_output

SURFACES = ("dataframe", "csv", "parquet", "predict")
FEATURES = ["color", "user_id", "price"]
TASKS = [TaskSpec("click"), TaskSpec("buy", mask="shown"), TaskSpec("spend", "regression")]


def clean_frame(rows=24):
    """Every column valid: a string and an integer-id categorical, a
    numeric, three tasks (one masked)."""
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "color": rng.choice(["red", "green", "blue"], rows).astype(object),
        "user_id": rng.integers(0, 6, rows).astype("int64"),
        "price": rng.normal(size=rows).round(3),
        "click": np.tile([0, 1], rows // 2),
        "shown": np.tile([1, 1, 0], rows // 3),
        "buy": np.tile([0, 1, 1, 0], rows // 4),
        "spend": rng.normal(size=rows).round(3),
    })


def new_schema():
    return Schema([Categorical("color"), Categorical("user_id", dtype="int64"),
                   Numeric("price")], TASKS)


@pytest.fixture(scope="module")
def adapted():
    return new_schema().adapt(clean_frame())


@pytest.fixture(scope="module")
def model_file(adapted, tmp_path_factory):
    """A tiny untrained MMoE, saved once (scoring needs a model, not a good one)."""
    keras.utils.set_random_seed(0)
    model = mtrec.models.MMoE(adapted, num_experts=2, expert_units=[4], tower_units=[4])
    path = tmp_path_factory.mktemp("catalogue") / "model.keras"
    model.save(path)
    return path


@pytest.fixture(autouse=True, scope="module")
def _load_the_model_once():
    # predict_file loads its model on every call; the cases all score with
    # the same file, so load it once (what is checked is the data path).
    original = file_scoring.load_scorer
    cached = functools.lru_cache(maxsize=2)(lambda path: original(path))
    file_scoring.load_scorer = lambda path: cached(str(path))
    yield
    file_scoring.load_scorer = original


# --------------------------------------------------------------------------
# outcomes
# --------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Error:
    """A ValueError (or, from a stream, tf.data's wrapping of one) whose
    message matches `pattern`."""
    pattern: str


@dataclasses.dataclass(frozen=True)
class Fallback:
    """No error; `check(result, frame)` asserts the documented result.
    `result` is what the surface returned (see `run_surface`)."""
    what: str
    check: object = None


def error_message(fn):
    """The message of the clear error `fn()` raises; fails on anything else."""
    try:
        fn()
    except ValueError as error:
        return str(error)
    except tf.errors.InvalidArgumentError as error:
        message = str(error)
        assert re.search(r"\b(DataValidationError|ValueError): ", message), (
            f"a deep TF error, not mtrec's: {message[:500]}")
        return message
    pytest.fail("no error raised")


# --------------------------------------------------------------------------
# running one surface
# --------------------------------------------------------------------------
def stream_rows(dataset):
    """What an iterated stream yielded: `{"rows", "labels": {task: array},
    "numeric": (rows, 2) scaled price and its missing indicator}`."""
    labels, numeric = {}, []
    for features, batch_labels in dataset.as_numpy_iterator():
        numeric.append(features[NUMERIC_KEY])
        for task, values in batch_labels.items():
            labels.setdefault(task, []).append(values)
    return {"rows": sum(len(n) for n in numeric),
            "labels": {t: np.concatenate(v) for t, v in labels.items()},
            "numeric": np.concatenate(numeric) if numeric else np.zeros((0, 2))}


def as_parquet(frame):
    """A Parquet column holds one type: a column mixing types (ints and a
    stray "x") is written as text, as a real writer would have to."""
    frame = frame.copy()
    for column in frame.columns:
        values = frame[column]
        kinds = {type(v) for v in values if not _missing(v)}
        if values.dtype == object and len(kinds) > 1:
            frame[column] = [None if _missing(v) else str(v) for v in values]
    return frame


def _missing(value):
    return value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))


def run_surface(surface, case, adapted, model_file, tmp_path):
    """Run `case` on `surface`; returns what the surface produced:
    dataframe: `stream_rows` of `from_pandas` (schema adapted on clean
    data) after `Schema.adapt` on the bad frame succeeded; csv/parquet:
    `stream_rows` of the stream; predict: the output frame."""
    frame = case.frame()
    if surface == "dataframe":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataWarning)
            new_schema().adapt(frame)
        return stream_rows(from_pandas(frame, adapted, batch_size=8))
    if surface == "csv":
        path = case.write_csv(frame, tmp_path / "in.csv")
        return stream_rows(streaming.from_csv(path, adapted, batch_size=8, chunk_rows=10))
    if surface == "parquet":
        path = tmp_path / "in.parquet"
        as_parquet(frame).to_parquet(path, index=False)
        return stream_rows(streaming.from_parquet(path, adapted, batch_size=8,
                                                  chunk_rows=10))
    if case.parquet_only_predict:
        source = tmp_path / "in.parquet"
        as_parquet(frame).to_parquet(source, index=False)
    else:
        source = case.write_csv(frame, tmp_path / "in.csv")
    output = tmp_path / "out.csv"
    file_scoring.predict_file(model_file, source, output, log=None, chunk_rows=10)
    return read_output(output)


# --------------------------------------------------------------------------
# the cases
# --------------------------------------------------------------------------
def _edit(column, rows, value, dtype=None):
    """A frame function: the clean frame with `frame.loc[rows, column] = value`."""
    def frame():
        df = clean_frame()
        if dtype is not None:
            df[column] = df[column].astype(dtype)
        df.loc[rows, column] = value
        return df
    return frame


def _csv_lines(edit):
    """A CSV writer that edits the lines of the clean file's text."""
    def write(frame, path):
        lines = frame.to_csv(index=False).splitlines()
        path.write_bytes(edit(lines))
        return path
    return write


def _plain_csv(frame, path):
    frame.to_csv(path, index=False)
    return path


@dataclasses.dataclass
class Case:
    name: str
    frame: object                      # () -> DataFrame
    outcomes: dict                     # surface -> Error | Fallback
    write_csv: object = _plain_csv     # (frame, path) -> path
    parquet_only_predict: bool = False


def _rows_kept(result, frame):
    assert result["rows"] == len(frame)


def _as_written(value):
    """A cell as a CSV round trip can keep it: a number, text, or None."""
    if _missing(value) or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def _output_keeps_input(result, frame):
    """predict: every row scored, the input columns' values unchanged."""
    assert len(result) == len(frame)
    for column in frame.columns:
        assert [_as_written(v) for v in result[column]] == \
            [_as_written(v) for v in frame[column]], column
    assert np.isfinite(result["click_prediction"]).all()


def _labels_nan(task, rows):
    def check(result, frame):
        labels = result["labels"][task]
        assert np.isnan(labels[rows]).all()
        assert not np.isnan(np.delete(labels, rows)).any()
    return check


def _all_nan_label(result, frame):
    assert result["rows"] == len(frame) and np.isnan(result["labels"]["spend"]).all()


def _adapt_warns(kind, column):
    def check(result, frame):
        with pytest.warns(DataWarning, match=rf"{kind}.*'{column}'"):
            new_schema().adapt(frame)
        _rows_kept(result, frame)
    return check


def _price_missing(row):
    def check(result, frame):
        _rows_kept(result, frame)
        scaled, missing = result["numeric"][:, 0], result["numeric"][:, 1]
        assert missing[row] == 1 and missing.sum() == 1 and np.isfinite(scaled).all()
    return check


def _price_unclipped(row):
    # Numeric(clip=False), the default: the value is scaled as it is
    def check(result, frame):
        _rows_kept(result, frame)
        assert result["numeric"][row, 0] > 1e20 and result["numeric"][row, 1] == 0
    return check


def _predict_finite(result, frame):
    assert len(result) == len(frame)
    assert np.isfinite(result[["click_prediction", "spend_prediction"]].to_numpy()).all()


FRAME_ROWS_KEPT = Fallback("rows kept", _rows_kept)
PREDICT_KEEPS = Fallback("all rows scored, input columns unchanged", _output_keeps_input)
SHORT = _csv_lines(lambda lines: "\n".join(
    lines[:5] + [",".join(lines[5].split(",")[:2])] + lines[6:]).encode() + b"\n")
LONG = _csv_lines(lambda lines: "\n".join(
    lines[:5] + [lines[5] + ",extra"] + lines[6:]).encode() + b"\n")
LATIN1 = _csv_lines(lambda lines: ("\n".join(lines[:4]).encode() + b"\n"
                                   + b"caf\xe9" + lines[4][lines[4].index(","):].encode()
                                   + b"\n" + "\n".join(lines[5:]).encode() + b"\n"))

CASES = [
    # --- CSV text ---------------------------------------------------------
    Case("short_csv_line", clean_frame, {
        "csv": Error(r"line 6 has 2 field\(s\), but the header has 7"),
        "predict": Error(r"line 6 has 2 field\(s\), but the header has 7")},
        write_csv=SHORT),
    Case("long_csv_line", clean_frame, {
        "csv": Error(r"line 6 has 8 field\(s\), but the header has 7"),
        "predict": Error(r"line 6 has 8 field\(s\), but the header has 7")},
        write_csv=LONG),
    Case("non_utf8_bytes", clean_frame, {
        "csv": Error(r"line 5, column 'color': the bytes .* are not valid UTF-8"),
        "predict": Error(r"line 5, column 'color': the bytes .* are not valid UTF-8")},
        write_csv=LATIN1),
    Case("duplicate_column", lambda: pd.concat([clean_frame(), clean_frame()[["price"]] + 1],
                                               axis=1), {
        "dataframe": Error(r"Column\(s\) \['price'\] appear more than once"),
        "csv": Error(r"Column\(s\) \['price'\] appear more than once in the header"),
        "predict": Error(r"Column\(s\) \['price'\] appear more than once in the header")}),
    # --- integer ids --------------------------------------------------------
    Case("int_id_garbage", _edit("user_id", [3, 7], "x", object), {
        "dataframe": Error(r"Column 'user_id' .*not integers: 'x', 'x' in row\(s\) 3, 7"),
        "csv": Error(r"Column 'user_id' .*not integers: 'x', 'x' in row\(s\) 3, 7"),
        "parquet": Error(r"Column 'user_id' .*not integers: 'x', 'x' in row\(s\) 3, 7"),
        "predict": Error(r"Column 'user_id' .*not integers: 'x', 'x' in row\(s\) 3, 7")}),
    Case("int_id_fraction", _edit("user_id", [2], 3.5, "float64"), {
        "dataframe": Error(r"Column 'user_id' .*not integers: 3.5 in row\(s\) 2"),
        "csv": Error(r"Column 'user_id' .*not integers: '3.5' in row\(s\) 2"),
        "parquet": Error(r"Column 'user_id' .*not integers: 3.5 in row\(s\) 2"),
        "predict": Error(r"Column 'user_id' .*not integers: '3.5' in row\(s\) 2")}),
    Case("int_id_beyond_int64", _edit("user_id", [1], "99999999999999999999", object), {
        "dataframe": Error(r"Column 'user_id' .*not integers: '99999999999999999999'"),
        "csv": Error(r"Column 'user_id' .*not integers: '99999999999999999999'"),
        "parquet": Error(r"Column 'user_id' .*not integers: '99999999999999999999'"),
        "predict": Error(r"Column 'user_id' .*not integers: '99999999999999999999'")}),
    Case("int_id_float_dtype_whole_numbers", _edit("user_id", [0], np.nan, "float64"), {
        # a float column of whole numbers: pandas' NaN-holding ints
        "dataframe": Error(r"Column 'user_id' is float64 .*astype\('Int64'\)"),
        "csv": FRAME_ROWS_KEPT, "parquet": Error(r"Column 'user_id' is float64"),
        "predict": PREDICT_KEEPS}),
    Case("int_id_missing", _edit("user_id", [0, 5], pd.NA, "Int64"), {
        # missing ids are the id -1 (a category when seen in training)
        "dataframe": FRAME_ROWS_KEPT, "csv": FRAME_ROWS_KEPT,
        "parquet": FRAME_ROWS_KEPT, "predict": PREDICT_KEEPS}),
    # --- masks --------------------------------------------------------------
    Case("mask_strings", _edit("shown", slice(None), ["yes", "no"] * 12, object), {
        "dataframe": Error(r"Mask column 'shown' of task 'buy' must hold 0/1 .*'yes', 'no'"),
        "csv": Error(r"Column 'shown' \(the mask column of task 'buy', which takes 0/1\) "
                     r"holds values that are not numbers: 'yes', 'no'"),
        "parquet": Error(r"Mask column 'shown' of task 'buy' must hold 0/1"),
        # scoring reads features only: the mask passes through unchanged
        "predict": PREDICT_KEEPS}),
    Case("mask_out_of_range", _edit("shown", [4], 2), {
        "dataframe": Error(r"Mask column 'shown' of task 'buy' must hold 0/1 .*2 in row\(s\) 4"),
        "csv": Error(r"Mask column 'shown' of task 'buy' must hold 0/1 .*in row\(s\) 4"),
        "parquet": Error(r"Mask column 'shown' of task 'buy' must hold 0/1 .*in row\(s\) 4"),
        "predict": PREDICT_KEEPS}),
    # --- labels -------------------------------------------------------------
    Case("binary_label_2", _edit("click", [3], 2), {
        "dataframe": Error(r"Label column 'click' of binary task 'click' has values other "
                           r"than 0/1"),
        "csv": Error(r"'click' .*values other than 0/1"),
        "parquet": Error(r"'click' .*values other than 0/1"),
        "predict": PREDICT_KEEPS}),
    Case("label_not_a_number", _edit("click", [3], "yes", object), {
        "dataframe": Error(r"Label column 'click' of task 'click' has non-numeric values"),
        "csv": Error(r"Column 'click' \(the label of binary task 'click'\) holds values "
                     r"that are not numbers: 'yes'"),
        "parquet": Error(r"Label column 'click' of task 'click' has non-numeric values"),
        "predict": PREDICT_KEEPS}),
    Case("label_infinite", _edit("spend", [3], np.inf), {
        "dataframe": Error(r"Label column 'spend' of task 'spend' has infinite values"),
        "csv": Error(r"Label column 'spend' of task 'spend' has infinite values"),
        "parquet": Error(r"Label column 'spend' of task 'spend' has infinite values")}),
    Case("regression_labels_partly_nan", _edit("spend", [1, 4], np.nan), {
        # NaN is a missing label: those rows do not train 'spend'
        "dataframe": Fallback("NaN labels masked", _labels_nan("spend", [1, 4])),
        "csv": Fallback("NaN labels masked", _labels_nan("spend", [1, 4])),
        "parquet": Fallback("NaN labels masked", _labels_nan("spend", [1, 4]))}),
    Case("task_without_labels", _edit("spend", slice(None), np.nan), {
        # adapt refuses to train it; a stream cannot know it is for
        # training, and yields the rows with that task masked
        "dataframe": Error(r"task\(s\) 'spend' \(label column 'spend' is all missing\) "
                           r"have no label"),
        "csv": Fallback("all masked", _all_nan_label),
        "parquet": Fallback("all masked", _all_nan_label)}),
    Case("task_masked_out", _edit("shown", slice(None), 0), {
        "dataframe": Error(r"task\(s\) 'buy' \(label column 'buy' is all missing, or "
                           r"masked out by 'shown'\) have no label")}),
    Case("label_column_missing", lambda: clean_frame().drop(columns="spend"), {
        "dataframe": Error(r"Missing label column of task 'spend'\(s\) \['spend'\]"),
        "csv": Error(r"lacks column\(s\) \['spend'\]"),
        "parquet": Error(r"lacks column\(s\) \['spend'\]"),
        "predict": Fallback("labels are not read", _predict_finite)}),
    Case("mask_column_missing", lambda: clean_frame().drop(columns="shown"), {
        "dataframe": Error(r"Missing mask column of task 'buy'\(s\) \['shown'\]"),
        "csv": Error(r"lacks column\(s\) \['shown'\]"),
        "parquet": Error(r"lacks column\(s\) \['shown'\]"),
        "predict": Fallback("labels are not read", _predict_finite)}),
    # --- features -----------------------------------------------------------
    Case("feature_column_missing", lambda: clean_frame().drop(columns="price"), {
        "dataframe": Error(r"Missing feature column\(s\) \['price'\]"),
        "csv": Error(r"lacks column\(s\) \['price'\]"),
        "parquet": Error(r"lacks column\(s\) \['price'\]"),
        "predict": Error(r"missing column\(s\) \['price'\] that the model needs")}),
    Case("numeric_garbage", _edit("price", [6], "high", object), {
        "dataframe": Error(r"Column 'price' is object in the data \(e.g. 'high'\)"),
        "csv": Error(r"Column 'price' \(a Numeric feature\) holds values that are not "
                     r"numbers: 'high' in row\(s\) 6"),
        "parquet": Error(r"Column 'price' is \w+ in the data \(e.g. 'high'\)"),
        "predict": Error(r"Column 'price' is \w+ in the data \(e.g. 'high'\)")}),
    Case("numeric_infinite", _edit("price", [2], np.inf), {
        # +-inf is read as missing (imputed, missing indicator set)
        "dataframe": Fallback("inf is missing", _price_missing(2)),
        "csv": Fallback("inf is missing", _price_missing(2)),
        "parquet": Fallback("inf is missing", _price_missing(2)),
        "predict": Fallback("inf is missing", _predict_finite)}),
    Case("numeric_far_out_of_range", _edit("price", [2], 1e30), {
        # reported by Schema.out_of_range; Numeric(clip=True) would clip it
        "dataframe": Fallback("read as is", _price_unclipped(2)),
        "csv": Fallback("read as is", _price_unclipped(2)),
        "parquet": Fallback("read as is", _price_unclipped(2)),
        "predict": Fallback("scored", lambda result, frame: len(result) == len(frame))}),
    Case("string_feature_as_float", lambda: clean_frame().assign(color=np.linspace(0, 1, 24)), {
        "dataframe": Error(r"Column 'color' is float64 in the data but the schema declares "
                           r"it Categorical"),
        "parquet": Error(r"Column 'color' is float64 in the data but the schema declares "
                         r"it Categorical"),
        # CSV reads the column as text: "1.5" is a category like any other
        "csv": FRAME_ROWS_KEPT, "predict": PREDICT_KEEPS}),
    Case("empty_strings", _edit("color", [0, 1], ""), {
        # "" is the missing token of a string categorical
        "dataframe": FRAME_ROWS_KEPT, "csv": FRAME_ROWS_KEPT,
        "parquet": FRAME_ROWS_KEPT, "predict": PREDICT_KEEPS}),
    Case("constant_feature", _edit("color", slice(None), "red"), {
        "dataframe": Fallback("DataWarning at adapt", _adapt_warns("constant", "color"))}),
    Case("all_missing_feature", _edit("price", slice(None), np.nan), {
        "dataframe": Fallback("DataWarning at adapt", _adapt_warns("all missing", "price"))}),
    Case("zero_rows", lambda: clean_frame().iloc[:0], {
        "dataframe": Error(r"Schema.adapt got a DataFrame with no rows"),
        "csv": Fallback("no batches", _rows_kept),
        "parquet": Fallback("no batches", _rows_kept),
        "predict": Fallback("a header-only output", lambda result, frame: len(result) == 0)}),
    Case("not_a_dataframe", lambda: clean_frame().to_dict("list"), {
        "dataframe": Error(r"Expected a pandas DataFrame, got dict")}),
]

PAIRS = [(case, surface) for case in CASES for surface in SURFACES
         if surface in case.outcomes]


@pytest.mark.parametrize("case,surface", PAIRS,
                         ids=[f"{c.name}-{s}" for c, s in PAIRS])
def test_catalogue(case, surface, adapted, model_file, tmp_path):
    outcome = case.outcomes[surface]
    run = functools.partial(run_surface, surface, case, adapted, model_file, tmp_path)
    if isinstance(outcome, Error):
        message = error_message(run)
        assert re.search(outcome.pattern, message, re.S), message[:600]
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        result = run()
    outcome.check(result, case.frame())


def test_out_of_range_is_reported_and_clipped_on_request(adapted):
    frame = _edit("price", [2, 3], [1e30, -1e30])()
    report = adapted.out_of_range(frame)
    assert list(report) == ["price"]
    assert report["price"]["below"] == 1 and report["price"]["above"] == 1
    assert report["price"]["max"] == adapted.stats["price"]["max"]


def test_the_table_above_counts_the_cases():
    table = {}
    for line in __doc__.splitlines():
        cells = [c.strip() for c in line.strip("| ").split("|")]
        if cells and cells[0] in SURFACES:
            table[cells[0]] = [int(c) for c in cells[1:]]
    for surface in SURFACES:
        outcomes = [case.outcomes[surface] for case in CASES if surface in case.outcomes]
        errors = sum(isinstance(o, Error) for o in outcomes)
        assert table[surface] == [len(outcomes), errors, len(outcomes) - errors, 0, 0], surface


# --------------------------------------------------------------------------
# random corruptions
# --------------------------------------------------------------------------
CORRUPT_VALUES = st.sampled_from(
    ["x", "", None, np.nan, np.inf, -np.inf, 1e30, -7, 2, 0.5, True, "3", "yes",
     "caf\u00e9", [1, 2]])


@st.composite
def corrupted_frames(draw):
    rows = draw(st.integers(1, 12))
    frame = clean_frame(24).iloc[:rows].reset_index(drop=True)
    for _ in range(draw(st.integers(1, 3))):
        column = draw(st.sampled_from(list(frame.columns)))
        row = draw(st.integers(0, rows - 1))
        value = draw(CORRUPT_VALUES)
        frame[column] = frame[column].astype(object)
        frame.at[row, column] = value
    return frame


def _names_a_column(message, frame):
    return any(f"'{column}'" in message for column in frame.columns)


@settings(max_examples=25, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(frame=corrupted_frames())
def test_random_corruptions_error_naming_a_column_or_keep_every_row(frame, adapted):
    # the DataFrame API: adapt on the bad frame, encode it with a good schema
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataWarning)
            new_schema().adapt(frame)
        rows = stream_rows(from_pandas(frame, adapted, batch_size=4))["rows"]
    except ValueError as error:
        assert _names_a_column(str(error), frame), str(error)
    else:
        assert rows == len(frame)


@settings(max_examples=12, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(frame=corrupted_frames())
def test_random_corruptions_of_a_csv_stream(frame, adapted, tmp_path_factory):
    path = tmp_path_factory.mktemp("random") / "in.csv"
    frame.to_csv(path, index=False)
    try:
        rows = stream_rows(streaming.from_csv(path, adapted, batch_size=4,
                                              chunk_rows=5))["rows"]
    except (ValueError, tf.errors.InvalidArgumentError):
        message = error_message(lambda: stream_rows(
            streaming.from_csv(path, adapted, batch_size=4, chunk_rows=5)))
        assert _names_a_column(message, frame) or re.search(r"line \d+", message), message
    else:
        assert rows == len(frame)
