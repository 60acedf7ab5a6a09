"""Data validation in one place: the checks every data entry point runs.

In the spirit of TFDV's schema anomalies, the DataFrame API
(`Schema.validate` / `Schema.adapt`, `mtrec.data.from_pandas`), the CSV and
Parquet streams (`mtrec.data.streaming`) and `mtrec predict`
(`mtrec.export.file_scoring`) refuse data that would otherwise be read
wrongly without a word, and say which column (and row or line), what was
found, what was expected and how to fix it:

| check                                   | where                         | outcome |
|-----------------------------------------|-------------------------------|---------|
| CSV line with the wrong number of fields | every CSV reader (`read_csv_chunks`) | error, line numbers |
| bytes that are not UTF-8 in a CSV       | every CSV reader              | error, line and column |
| a value the column's dtype cannot hold  | every CSV reader              | error, column, rows, values |
| integer ids that are not integers       | `integer_ids` (Categorical int64, CSV scoring) | error |
| mask columns that are not 0/1/bool/NaN   | `check_mask` (`Schema.validate(labels=True)`) | error |
| no rows at adapt                        | `check_adapt_frame`           | error |
| a task without a single label at adapt / fit | `check_tasks_labelled`   | error, names the task |
| constant or all-missing features at adapt | `warn_degenerate_features`  | `DataWarning` naming them |
| numerics outside the training range     | `out_of_range` (`Schema.out_of_range`); `Numeric(clip=True)` clips in the graph | report / opt-in clip |

Errors are `DataValidationError`, a `ValueError` carrying `column` and
`rows` (0-based data rows: the DataFrame's index; in a CSV file data row 0
is the line after the header).

The CSV line check needs no second pass over the file: the bytes pandas
reads are counted as they go by (`_RecordCheck`, vectorised with numpy;
about 0.3 ms per 256 KB block, see the commit that added it), so it costs a
few percent of parsing. It understands `sep`/`delimiter` (one character),
`quotechar` (quoted fields may hold the delimiter, doubled quotes and line
breaks), `encoding` (ASCII-compatible ones) and gzip/bz2/xz compression;
with reader options it cannot mirror (`comment`, `skiprows`, `header`,
`names`, `escapechar`, `lineterminator`, a regex separator, ...) the line
check is skipped and pandas reads the file as it always did.
"""

from __future__ import annotations

import bz2
import contextlib
import csv
import gzip
import io
import lzma
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from mtrec.schema.conversion import is_missing
from mtrec.utils.messages import plain

__all__ = ["DataValidationError", "DataWarning", "check_adapt_frame", "check_integer_column",
           "check_labelled_counts", "check_mask", "check_tasks_labelled", "check_unique_columns", "csv_header",
           "integer_ids",
           "labelled_counts", "out_of_range", "read_csv_chunks", "warn_degenerate_features"]

#: Example values / rows an error message shows.
EXAMPLES = 5


class DataValidationError(ValueError):
    """Data that does not fit the schema (or is not a valid table).

    Attributes:
        column: str or None, the column at fault.
        rows: list of the rows (DataFrame index labels) or file lines at fault.
    """

    def __init__(self, message, column=None, rows=()):
        super().__init__(message)
        self.column = column
        self.rows = list(rows)


class DataWarning(UserWarning):
    """Data that is valid but probably not what was meant (a constant or
    all-missing feature at adapt)."""


def _show(values, limit=EXAMPLES):
    """`'x', 'y' (and 3 more)` for a message."""
    values = [plain(v) for v in values]
    text = ", ".join(repr(v) for v in values[:limit])
    return text + (f" (and {len(values) - limit} more)" if len(values) > limit else "")


def _show_rows(index, limit=EXAMPLES):
    index = [plain(i) for i in index]
    text = ", ".join(str(i) for i in index[:limit])
    return text + (f" (and {len(index) - limit} more)" if len(index) > limit else "")


# --------------------------------------------------------------------------
# column values
# --------------------------------------------------------------------------
def integer_ids(series, column, what="an integer Categorical"):
    """The values of an integer-id column as pandas `Int64` (NA where missing).

    Integers and integer-valued numbers (`3`, `"3"`, `3.0`) are taken;
    anything else (`"x"`, `3.5`, values beyond int64) is refused, never
    turned into "missing".

    Args:
        series: pandas Series (ints, floats, strings or objects).
        column: str, for the message.
        what: str, what the column is, for the message.

    Returns:
        pandas Series of dtype `Int64`, same index.

    Raises:
        DataValidationError: naming the column, rows and values.
    """
    if pd.api.types.is_integer_dtype(series) and not pd.api.types.is_unsigned_integer_dtype(
            series):
        return series.astype("Int64")
    if pd.api.types.is_bool_dtype(series):
        bad = series.notna()
    else:
        text = series.astype(object).where(series.notna(), None)
        if pd.api.types.is_object_dtype(text):   # " 3 " parses as 3
            text = text.map(lambda v: v.strip() if isinstance(v, str) else v)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            numbers = pd.to_numeric(text, errors="coerce", dtype_backend="numpy_nullable")
        present = series.notna() & ~series.map(_blank)
        flags = series.map(lambda v: isinstance(v, (bool, np.bool_)))  # True is no id
        if pd.api.types.is_integer_dtype(numbers):
            bad = present & (numbers.isna() | flags)
        else:
            as_float = numbers.astype("Float64")
            integral = (as_float == as_float.round()) & (as_float.abs() < 2.0**63)
            bad = present & (~integral.fillna(False).astype(bool) | flags)
        if not bad.any():
            if not pd.api.types.is_integer_dtype(numbers):
                numbers = numbers.astype("Float64").astype("Int64")
            return numbers.where(present, pd.NA).astype("Int64")
    rows = list(series.index[bad.to_numpy()])
    raise DataValidationError(
        f"Column '{column}' is {what} but holds values that are not integers: "
        f"{_show(series[bad].tolist())} in row(s) {_show_rows(rows)}. Integer ids "
        f"must be whole numbers (missing values empty/NaN); fix those values, or "
        f"declare Categorical('{column}') to read the column as strings.",
        column=column, rows=rows)


def _blank(value):
    return isinstance(value, str) and not value.strip()


def check_integer_column(series, column):
    """The DataFrame check of an integer Categorical: an integer dtype (or
    nothing but missing values); otherwise a message naming what is wrong
    (values that are not integers, with rows) and the fix."""
    if pd.api.types.is_integer_dtype(series) or series.isna().all():
        return
    if pd.api.types.is_bool_dtype(series):
        raise DataValidationError(
            f"Column '{column}' is bool in the data but the schema declares it an "
            f"integer Categorical; cast it with df['{column}'].astype('int64') or "
            f"declare Categorical('{column}').", column=column)
    integer_ids(series, column)   # raises naming the values that are not integers
    raise DataValidationError(
        f"Column '{column}' is {series.dtype} in the data but the schema declares it "
        f"an integer Categorical; its values are whole numbers, so cast it to int64 "
        f"with df['{column}'].astype('Int64') (pandas' nullable integers keep missing "
        f"values), or declare Categorical('{column}') for strings.", column=column)


def check_mask(task, series):
    """A label mask holds 0/1, True/False or NaN (NaN and 0: no label).

    Raises:
        DataValidationError: naming the mask column, the task, rows, values.
    """
    if pd.api.types.is_bool_dtype(series):
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        numbers = pd.to_numeric(series, errors="coerce")
    bad = series.notna() & ~numbers.isin([0, 1])
    if bad.any():
        rows = list(series.index[bad.to_numpy()])
        values = series[bad].tolist()
        raise DataValidationError(
            f"Mask column '{task.mask}' of task '{task.name}' must hold 0/1 or "
            f"True/False (0, False or empty: the example has no '{task.name}' label), "
            f"but holds {_show(values)} in row(s) {_show_rows(rows)}. Map it first, "
            f"e.g. df['{task.mask}'] = df['{task.mask}'].map({{{values[0]!r}: 1, ...}}).",
            column=task.mask, rows=rows)


def numbers(series, column, what):
    """float64 values of a column read as strings; refuses text that is not a
    number (NaN and the empty string are missing)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = pd.to_numeric(series, errors="coerce")
    bad = series.notna() & values.isna() & ~series.map(_blank)
    if bad.any():
        rows = list(series.index[bad.to_numpy()])
        raise DataValidationError(
            f"Column '{column}' ({what}) holds values that are not numbers: "
            f"{_show(series[bad].tolist())} in row(s) {_show_rows(rows)}. Fix those "
            f"values (leave a missing value empty), or change the column's kind in "
            f"the schema.", column=column, rows=rows)
    return values


def check_unique_columns(columns, needed, where="the data"):
    """Refuse column names that appear twice among `columns`, if `needed`
    (the columns the schema reads): which one is meant cannot be told."""
    counts = pd.Index([str(c) for c in columns]).value_counts()
    twice = [c for c in dict.fromkeys(needed) if counts.get(c, 0) > 1]
    if twice:
        raise DataValidationError(
            f"Column(s) {twice} appear more than once in {where}; the schema reads "
            f"each by name, so which one is meant is ambiguous. Drop or rename the "
            f"duplicates (e.g. df.loc[:, ~df.columns.duplicated()]).", column=twice[0])


# --------------------------------------------------------------------------
# adapt and fit
# --------------------------------------------------------------------------
def check_adapt_frame(df):
    """`Schema.adapt` needs rows: an empty frame would learn empty
    vocabularies and mean 0 / variance 1 without a word."""
    if len(df) == 0:
        raise DataValidationError(
            f"Schema.adapt got a DataFrame with no rows (columns "
            f"{list(df.columns)[:20]}); there is nothing to learn vocabularies and "
            f"statistics from. Adapt on the training data (check the filter or the "
            f"split that produced it).")


def labelled_counts(schema, df):
    """`{task: number of rows with a label}` (not NaN, not masked)."""
    labels = schema.raw_labels(df)
    return {name: int(np.isfinite(values).sum()) for name, values in labels.items()}


def check_tasks_labelled(schema, df, where):
    """Refuse to train a task that has no label at all in `df`.

    Such a task trains at loss 0.0 and reports a metric of nothing. A
    validation or test frame may lack a task's labels; this check is for
    the data a model learns from (`Schema.adapt`, `model.fit(df)`).

    Args:
        schema: Schema.
        df: DataFrame with the label (and mask) columns.
        where: str, what the data is for, for the message.
    """
    check_labelled_counts(schema, labelled_counts(schema, df), len(df), where)


def check_labelled_counts(schema, counts, rows, where):
    """`check_tasks_labelled` on counts already made: `counts` is `{task:
    labelled rows}` over `rows` rows (the streaming adapt sums them chunk
    by chunk)."""
    empty = [name for name, count in counts.items() if count == 0]
    if not empty:
        return
    details = []
    for task in schema.tasks:
        if task.name in empty:
            masked = (f", or masked out by '{task.mask}'" if task.mask is not None else "")
            details.append(f"'{task.name}' (label column '{task.label}' is all missing"
                           f"{masked})")
    raise DataValidationError(
        f"{where}: task(s) {', '.join(details)} have no label in any of the {rows} "
        f"rows, so there is nothing to train them on (their loss would be 0.0). Fix "
        f"the label column(s), or remove the task(s) from the schema.",
        column=schema.tasks[[t.name for t in schema.tasks].index(empty[0])].label)


def _hashable(series):
    """`series` with unhashable cells made hashable (for `nunique`): an
    array by its dtype, shape and bytes (its repr costs ~6 ms for a 64-d
    vector: 9 minutes of a MovieLens adapt with two vector columns), a
    list / tuple / dict / set by its repr."""
    if pd.api.types.is_object_dtype(series):
        return series.map(lambda v: (v.dtype.str, v.shape, v.tobytes())
                          if isinstance(v, np.ndarray) else repr(v) if isinstance(
                              v, (list, tuple, dict, set)) else v)
    return series


def warn_degenerate_features(schema, df):
    """Warn (`DataWarning`) about features that are all missing or constant
    in the adapt data: the model cannot learn from them (an all-missing
    categorical gets an empty vocabulary, a numeric mean 0 and scale 1).

    Returns:
        `(all_missing, constant)`: lists of feature names.
    """
    all_missing, constant = [], []
    for spec in schema.features:
        series = df[spec.name]
        present = ~series.map(is_missing) if pd.api.types.is_object_dtype(series) \
            else series.notna()
        if pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series):
            present &= ~series.map(lambda v: isinstance(v, str) and v == "")
        if not present.any():
            all_missing.append(spec.name)
        elif len(series) > 1 and _hashable(series).nunique(dropna=False) == 1:
            constant.append(spec.name)
    parts = []
    if all_missing:
        parts.append(f"all missing: {all_missing} (an empty vocabulary / no statistics: "
                     f"every value will be read as 'missing')")
    if constant:
        parts.append(f"constant (one value in every row): {constant}")
    if parts:
        warnings.warn(
            f"Schema.adapt: feature(s) {'; '.join(parts)} in the {len(df)} adapt rows "
            f"carry no information; check the column(s) (a bad join, a wrong column "
            f"name, a filtered sample) or remove them from the schema.",
            DataWarning, stacklevel=3)
    return all_missing, constant


# --------------------------------------------------------------------------
# numeric ranges
# --------------------------------------------------------------------------
def out_of_range(schema, df):
    """Numeric values outside the range seen at adapt (TFDV's out-of-range
    anomaly), per feature.

    Returns:
        `{feature: {"below": int, "above": int, "min": float, "max": float}}`
        for every Numeric feature with at least one finite value below the
        training minimum or above the training maximum (`min`/`max`: the
        training range). Features adapted before ranges were learned (no
        `min`/`max` in their stats) are skipped.
    """
    report = {}
    for spec in schema.features_of("numeric"):
        stats = schema.stats.get(spec.name) or {}
        low, high = stats.get("min"), stats.get("max")
        if low is None or high is None or spec.name not in df.columns:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values = pd.to_numeric(df[spec.name], errors="coerce").to_numpy(
                dtype="float64", na_value=np.nan)
        # compared as float32, as the model reads them (and as min/max are kept)
        with np.errstate(over="ignore"):
            values = values.astype("float32")
        values = values[np.isfinite(values)]
        below, above = int((values < low).sum()), int((values > high).sum())
        if below or above:
            report[spec.name] = {"below": below, "above": above, "min": low, "max": high}
    return report


# --------------------------------------------------------------------------
# CSV files
# --------------------------------------------------------------------------
# Reader options the line check cannot mirror: with any of them it is skipped.
_UNCHECKED_OPTIONS = ("comment", "skiprows", "skipfooter", "header", "names", "escapechar",
                      "lineterminator", "delim_whitespace", "engine", "skip_blank_lines",
                      "doublequote", "skipinitialspace", "index_col")
_ASCII_COMPATIBLE = {"utf-8", "utf8", "utf-8-sig", "utf_8", "latin-1", "latin1",
                     "iso-8859-1", "cp1252", "ascii"}
_UTF8 = {"utf-8", "utf8", "utf-8-sig", "utf_8"}
_OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
# A record longer than this (an unterminated quote swallowing the file) ends
# the line check; pandas then reports the quote itself.
_MAX_RECORD_BYTES = 16 << 20
_NEWLINE, _CR = 10, 13


class _RecordCheck(io.RawIOBase):
    """A binary file object that counts the fields of each CSV record in the
    bytes pandas reads through it, and raises `DataValidationError` at the
    first block holding a record whose field count differs from the
    header's (blank lines, which pandas skips, excepted).

    Quoting follows pandas' C parser: a quote opens a quoted field only at
    the start of a field, `""` inside one is a quote, and delimiters and
    line breaks inside it belong to the field.
    """

    def __init__(self, raw, path, delimiter, quotechar, utf8, max_records=None):
        super().__init__()
        self.raw = raw
        self.path = path
        self.delimiter = ord(delimiter)
        self.quote = None if quotechar is None else ord(quotechar)
        self.utf8 = utf8
        self.max_records = max_records
        self.pending = b""     # the unfinished record at the end of the last read
        self.line = 1          # line number where `pending` starts
        self.header = None     # the header's field names
        self.records = 0       # data records checked
        self.active = True

    # -- file protocol (an io.RawIOBase, so pandas decodes other encodings) --
    def read(self, size=-1):
        data = self.raw.read(size)
        if self.active:
            self._scan(data, final=not data)
        return data

    def readinto(self, buffer):
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def readable(self):
        return True

    def close(self):
        self.raw.close()
        super().close()

    # -- the check --
    def _scan(self, data, final):
        buffer = self.pending + data
        if not buffer:
            return
        array = np.frombuffer(buffer, np.uint8)
        spans = None
        if self.quote is not None and buffer.find(bytes([self.quote])) >= 0:
            spans = self._quoted_spans(array)
        # Only positions are searched (sorted arrays, a few per line), never
        # a running sum over every byte: that doubled the cost.
        newlines = np.flatnonzero(array == _NEWLINE)
        ends = newlines if spans is None else newlines[~_inside(newlines, *spans)]
        if final:
            cut = len(buffer)
            if not len(ends) or ends[-1] != len(buffer) - 1:
                ends = np.append(ends, len(buffer))
        else:
            cut = int(ends[-1]) + 1 if len(ends) else 0
        complete = buffer[:cut]
        self.pending = buffer[cut:]
        if len(self.pending) > _MAX_RECORD_BYTES:
            self.active = False
        if not cut:
            return
        starts = np.concatenate([[0], ends[:-1] + 1]).astype(np.int64)
        line = self.line
        self.line += int(np.searchsorted(newlines, cut))
        first = 0
        if self.header is None:
            while first < len(ends) and not buffer[starts[first]:ends[first]].strip():
                first += 1
            if first == len(ends):
                return
            self.header = next(csv.reader([buffer[starts[first]:ends[first]].decode(
                "utf-8", "replace").rstrip("\r")], delimiter=chr(self.delimiter),
                quotechar=chr(self.quote) if self.quote else '"'))
            first += 1
        if self.utf8:
            self._check_utf8(complete, line, newlines, spans, starts)
        delimiters = np.flatnonzero(array[:cut] == self.delimiter)
        # a record has 1 + its delimiters, less those inside its quoted fields
        fields = (np.searchsorted(delimiters, ends) - np.searchsorted(delimiters, starts) + 1)
        if spans is not None:
            opens, closes = spans
            quoted = (np.searchsorted(delimiters, closes)
                      - np.searchsorted(delimiters, opens))
            record = np.searchsorted(ends, opens)
            fields -= np.bincount(record, weights=quoted,
                                  minlength=len(ends) + 1)[:len(ends)].astype(fields.dtype)
        expected = len(self.header)
        stop = len(ends)
        if self.max_records is not None and self.records + stop - first > self.max_records:
            stop = first + max(self.max_records - self.records, 0)
            self.active = False
        self.records += stop - first
        wrong = first + np.flatnonzero(fields[first:stop] != expected)
        bad = [k for k in wrong if buffer[starts[k]:ends[k]].strip()]  # blank: skipped
        if bad:
            lines = [line + int(np.searchsorted(newlines, starts[k])) for k in bad]
            self._refuse(buffer, bad, starts, ends, fields, lines, expected)

    def _quoted_spans(self, array):
        """`(opens, closes)` positions of the quoted fields, or None if no quote."""
        if self.quote is None:
            return None
        quotes = np.flatnonzero(array == self.quote)
        if not len(quotes):
            return None
        # Fast path: in a well-formed file every quote outside a quoted field
        # (an even number of quotes before it) opens one at a field start, or
        # is the second of a doubled quote; then quotes pair up in order.
        even = quotes[0::2]
        previous = array[np.maximum(even - 1, 0)]
        at_start = ((even == 0) | (previous == self.delimiter) | (previous == _NEWLINE)
                    | (previous == _CR))
        doubled = np.zeros(len(even), bool)
        doubled[1:] = quotes[1::2][:len(even) - 1] == even[1:] - 1
        if (at_start | doubled).all():
            opens, closes = quotes[0::2], quotes[1::2]
            if len(closes) < len(opens):
                closes = np.append(closes, len(array))
            return opens, closes
        return self._quoted_spans_slowly(array, quotes.tolist())

    def _quoted_spans_slowly(self, array, quotes):
        # pandas' rule quote by quote: literal quotes inside unquoted fields
        # (5'11") are text.
        opens, closes, k, start = [], [], 0, None
        separators = (self.delimiter, _NEWLINE, _CR)
        while k < len(quotes):
            p = quotes[k]
            if start is None:
                if p == 0 or array[p - 1] in separators:
                    start = p
                k += 1
            elif k + 1 < len(quotes) and quotes[k + 1] == p + 1:
                k += 2    # "" inside a quoted field
            else:
                opens.append(start)
                closes.append(p)
                start = None
                k += 1
        if start is not None:
            opens.append(start)
            closes.append(len(array))
        return np.array(opens, np.int64), np.array(closes, np.int64)

    def _column_at(self, array, start, position, spans):
        delimiters = start + np.flatnonzero(array[start:position] == self.delimiter)
        if spans is not None and len(delimiters):
            delimiters = delimiters[~_inside(delimiters, *spans)]
        index = len(delimiters)
        if self.header is not None and index < len(self.header):
            return f"column '{self.header[index]}'"
        return f"field {index + 1}"

    def _check_utf8(self, complete, line, newlines, spans, starts):
        try:
            complete.decode("utf-8")
        except UnicodeDecodeError as error:
            position = error.start
            line += int(np.searchsorted(newlines, position))
            record = int(starts[np.searchsorted(starts, position, side="right") - 1])
            array = np.frombuffer(complete, np.uint8)
            column = (self._column_at(array, record, position, spans)
                      if line > 1 else "the header")
            snippet = complete[max(position - 20, record):position + 20]
            raise DataValidationError(
                f"{self.path} line {line}, {column}: the bytes {snippet!r} are not valid "
                f"UTF-8 ({error.reason} at byte {complete[position:position + 1]!r}). "
                f"Re-save the file as UTF-8, or pass the file's encoding (e.g. "
                f"encoding='latin-1' to the reader).",
                rows=[line]) from None

    def _refuse(self, buffer, bad, starts, ends, fields, lines, expected):
        shown = [f"line {line} has {int(fields[k])}" for k, line in zip(bad[:EXAMPLES], lines)]
        more = f" (and {len(bad) - EXAMPLES} more in this block)" if len(bad) > EXAMPLES else ""
        first = bad[0]
        text = buffer[starts[first]:ends[first]].decode("utf-8", "replace").rstrip("\r\n")
        text = text if len(text) <= 120 else text[:117] + "..."
        raise DataValidationError(
            f"{self.path}: {'; '.join(shown)} field(s){more}, but the header has "
            f"{expected} ({_show(self.header, 3)}): a short row would be read with "
            f"its last columns missing and a long one shifted. First bad line: "
            f"{text!r}. Fix or drop those lines (a field holding the delimiter "
            f"{chr(self.delimiter)!r} must be quoted).",
            rows=lines)


def _inside(positions, opens, closes):
    """Whether each position lies strictly inside a quoted span `(open, close)`."""
    index = np.searchsorted(opens, positions, side="right") - 1
    safe = np.maximum(index, 0)
    return (index >= 0) & (positions > opens[safe]) & (positions < closes[safe])


def _checked_source(path, options, max_records=None):
    """`(source, options)` for `pd.read_csv`: a `_RecordCheck` over the opened
    file when the options allow the line check, else the path unchanged."""
    options = dict(options)
    sep = options.get("sep", options.get("delimiter", ","))
    encoding = str(options.get("encoding") or "utf-8").lower()
    quoting = options.get("quoting", csv.QUOTE_MINIMAL)
    quotechar = options.get("quotechar", '"')
    compression = options.get("compression", "infer")
    suffix = Path(str(path)).suffix.lower()
    opener = None
    if compression == "infer":
        opener = _OPENERS.get(suffix, open if suffix not in (".zip", ".zst", ".tar") else None)
    elif compression is None:
        opener = open
    elif isinstance(compression, str):
        opener = {"gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open}.get(compression)
    checkable = (opener is not None and isinstance(sep, str) and len(sep) == 1
                 and sep != " " and encoding in _ASCII_COMPATIBLE
                 and not any(options.get(k) not in (None, False) for k in _UNCHECKED_OPTIONS)
                 and (quoting == csv.QUOTE_NONE or (isinstance(quotechar, str)
                                                   and len(quotechar) == 1)))
    if not checkable or not isinstance(path, (str, Path)):
        return path, options
    options.pop("compression", None)
    utf8 = encoding in _UTF8 and options.get("encoding_errors", "strict") == "strict"
    source = _RecordCheck(opener(path, "rb"), path, sep,
                          None if quoting == csv.QUOTE_NONE else quotechar, utf8,
                          max_records=max_records)
    return source, options


def _encoding_error(path, options, error):
    """A UnicodeDecodeError from pandas as an error naming the line."""
    encoding = options.get("encoding") or "utf-8"
    line = None
    with contextlib.suppress(OSError, LookupError):
        opener = _OPENERS.get(Path(str(path)).suffix.lower(), open)
        with opener(path, "rb") as f:
            for number, raw in enumerate(f, start=1):
                try:
                    raw.decode(encoding)
                except UnicodeDecodeError:
                    line = number
                    break
    where = f" line {line}" if line else ""
    return DataValidationError(
        f"{path}{where}: bytes that are not valid {encoding} ({error.reason}). Re-save "
        f"the file as {encoding}, or pass its encoding (e.g. encoding='latin-1').",
        rows=[line] if line else ())


def _parser_error(path, error):
    return DataValidationError(
        f"{path} is not a well-formed CSV file: {str(error).strip()}. Fix the line "
        f"named (an unterminated quote, a stray delimiter) or drop it.")


def csv_header(path, **options):
    """The column names of a CSV file (its header line), errors naming the file.

    A name repeated in the header is refused (pandas would rename the second
    `price` to `price.1` and read the first without a word)."""
    try:
        names = [str(c) for c in pd.read_csv(path, nrows=0, **options).columns]
        if any("." in name for name in names):    # pandas' renaming of repeats
            raw = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False,
                              **{k: v for k, v in options.items() if k != "header"})
            check_unique_columns(raw.iloc[0].tolist(), raw.iloc[0].tolist(),
                                 where=f"the header of {path}")
        return names
    except UnicodeDecodeError as error:
        raise _encoding_error(path, options, error) from None
    except pd.errors.EmptyDataError:
        raise DataValidationError(f"{path} is empty: a CSV file needs a header line "
                                  f"naming its columns.") from None
    except pd.errors.ParserError as error:
        raise _parser_error(path, error) from None


def read_csv_chunks(path, chunk_rows=None, nrows=None, describe=None, **options):
    """`pd.read_csv(path, chunksize=chunk_rows, **options)`, checked.

    Every line must have as many fields as the header (see the module
    docstring for the options that skip this), the bytes must decode, and a
    value the requested dtype cannot hold (`"x"` in an `Int64` column,
    `"high"` in a `float32` one) is reported by column, rows and values: on
    such a failure the file is read again with those columns as text to
    find them (only then; the normal path reads once).

    Args:
        path: str or Path of a CSV file.
        chunk_rows: int or None. Rows per frame; None reads `nrows` (or the
            whole file) as one frame.
        nrows: int or None. Read at most this many rows.
        describe: optional `{column: what it is}` for the value messages
            (e.g. "mask column of task 'cvr'").
        **options: `pandas.read_csv` options.

    Yields:
        DataFrames (index: the running 0-based data row).

    Raises:
        DataValidationError: naming the file and the line, or the column,
            rows and values.
    """
    source, read_options = _checked_source(path, options, max_records=nrows)
    try:
        try:
            if chunk_rows is None:
                yield pd.read_csv(source, nrows=nrows, **read_options)
                return
            with pd.read_csv(source, chunksize=chunk_rows, nrows=nrows,
                             **read_options) as reader:
                while True:
                    try:
                        frame = next(reader)
                    except StopIteration:
                        return
                    yield frame
        except DataValidationError:
            raise
        except UnicodeDecodeError as error:
            raise _encoding_error(path, options, error) from None
        except pd.errors.ParserError as error:
            raise _parser_error(path, error) from None
        except (ValueError, TypeError, OverflowError) as error:
            found = _find_unreadable_values(path, options, nrows, describe or {})
            if found is not None:
                raise found from None
            raise DataValidationError(f"{path} could not be read: {error}") from error
    finally:
        if source is not path:
            source.close()


def _find_unreadable_values(path, options, nrows, describe):
    """After a typed read failed: the error naming the column, rows and values
    the dtype could not hold (reading those columns as text), or None."""
    dtypes = options.get("dtype")
    if not isinstance(dtypes, dict):
        return None
    typed = {c: d for c, d in dtypes.items() if d is not str and str(d) not in ("object", "str",
                                                                              "string")}
    if not typed:
        return None
    options = {**options, "dtype": {**dtypes, **{c: str for c in typed}}}
    try:
        source, read_options = _checked_source(path, options, max_records=nrows)
        try:
            with pd.read_csv(source, chunksize=65536, nrows=nrows, **read_options) as reader:
                for frame in reader:
                    for column, dtype in typed.items():
                        if column not in frame.columns:
                            continue
                        what = describe.get(column, f"read as {dtype}")
                        if pd.api.types.is_integer_dtype(pd.api.types.pandas_dtype(dtype)):
                            integer_ids(frame[column], column, what=what)
                        else:
                            numbers(frame[column], column, what)
        finally:
            if source is not path:
                source.close()
    except DataValidationError as error:
        return DataValidationError(f"{path}: {error}", column=error.column, rows=error.rows)
    except (ValueError, TypeError, OSError):
        return None
    return None
