"""A user's own files as train / validation / test DataFrames.

What a run config's `dataset: {files: ..., tasks: ...}` loads (see
`mtrec.experiments.config`): CSV, Parquet or TFRecord (of `tf.Example`)
files, each split given as a path, a glob pattern, a folder or a list of
them, or one table cut into splits by a rule:

```python
splits = load_files({"train": "data/train-*.parquet", "valid": "data/valid.parquet",
                     "test": "data/test.parquet"}, tasks={"click": "binary"})
splits = load_files("data/all.csv", tasks={"click": "binary"},
                    split=SplitRule(valid=0.15, test=0.15, seed=0))
```

Split rules (`SplitRule`), applied to the one table, or to the train files
for the splits not given as files:

- random fractions with a seed: `valid=0.15, test=0.15, seed=0`
  (scikit-learn's `train_test_split`);
- by time: `time_column` with cut-offs (`valid_from`, `test_from`: rows at
  or after `valid_from` are validation rows, at or after `test_from` test
  rows), or with fractions (the latest `test` fraction of rows is the test
  split, the `valid` fraction before it the validation split);
- a column holding each row's split name (`column="split"`, values
  `train`, `valid` (or `validation`) and `test`).

The split column is never a feature; the time column is not one either
unless the run config's `schema.features` names it.

Whole tables are read into memory here (pandas); for files larger than
memory, stream them with `mtrec.data.streaming`.
"""

from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from mtrec.data import shards, tfrecord
from mtrec.data.registry import DatasetSplits
from mtrec.schema.validation import read_csv_chunks

__all__ = ["FORMATS", "SPLITS", "SplitRule", "load_files", "read_table", "split_table",
           "table_columns"]

#: The three splits, in order.
SPLITS = ("train", "valid", "test")
#: The file formats (by suffix: `mtrec.data.shards.FORMAT_SUFFIXES`).
FORMATS = tuple(shards.FORMAT_SUFFIXES)
# Records parsed at a time when a TFRecord table is read whole.
TFRECORD_CHUNK_ROWS = 65536
# Values of a split column, and the split each names.
_SPLIT_VALUES = {"train": "train", "valid": "valid", "validation": "valid", "val": "valid",
                 "test": "test"}


@dataclasses.dataclass(frozen=True)
class SplitRule:
    """How rows are cut into splits (see the module docstring).

    Attributes:
        valid: float in (0, 1) or None. Fraction of rows for validation.
        test: float in (0, 1) or None. Fraction of rows for test.
        seed: int. Seed of the random split.
        time_column: str or None. Split by time on this column.
        valid_from: cut-off on `time_column` (number, date or date string):
            rows at or after it (and before `test_from`) are validation rows.
        test_from: cut-off on `time_column`: rows at or after it are test rows.
        column: str or None. Column naming each row's split.
    """

    valid: float | None = None
    test: float | None = None
    seed: int = 0
    time_column: str | None = None
    valid_from: object = None
    test_from: object = None
    column: str | None = None

    def columns(self):
        """The columns the rule reads."""
        return [c for c in (self.time_column, self.column) if c is not None]

    def makes(self):
        """The splits this rule carves out (besides train)."""
        if self.column is not None:
            return {"valid", "test"}
        made = set()
        if self.valid is not None or self.valid_from is not None:
            made.add("valid")
        if self.test is not None or self.test_from is not None:
            made.add("test")
        return made


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------
def load_files(files, tasks, split=None, format=None, read_options=None, description=None):
    """Read a user's files into `DatasetSplits`.

    Args:
        files: a path, a glob pattern or a list of them (one table, cut by
            `split`), or a dict `{"train": ..., "valid": ..., "test": ...}`
            of them; splits missing from the dict are cut from the train
            files by `split`.
        tasks: dict `{task: kind}` or list of `mtrec.TaskSpec`.
        split: `SplitRule`, or None when every split is a file.
        format: `"csv"` or `"parquet"`; None: by file suffix.
        read_options: dict passed to `pandas.read_csv` (e.g. `sep`,
            `na_values`); CSV only.
        description: str for logs and the run record; defaults to the files.

    Returns:
        `DatasetSplits` with `train`, `valid` and `test` DataFrames.

    Raises:
        FileNotFoundError: a path or pattern matches no file.
        ValueError: the splits are not all given or made, a rule's column
            is missing, or a split comes out empty.
    """
    given = _as_split_files(files)
    made = split.makes() if split is not None else set()
    missing = [s for s in SPLITS[1:] if s not in given and s not in made]
    if missing:
        raise ValueError(
            f"dataset: no {' or '.join(missing)} split: give "
            f"{' and '.join(f'files.{s}' for s in missing)}, or a split rule that "
            f"makes {'them' if len(missing) > 1 else 'it'}, e.g. split: {{valid: 0.1, "
            f"test: 0.1, seed: 0}}.")
    both = sorted(set(given) & made - {"train"})
    if both:
        raise ValueError(f"dataset: the {' and '.join(both)} split(s) are given both as "
                         f"files and by the split rule; keep one.")
    frames = {name: read_table(paths, format=format, read_options=read_options)
              for name, paths in given.items()}
    if made:
        cut = split_table(frames["train"], split)
        for name in ("train", *made):
            frames[name] = cut[name]
    for name in SPLITS:
        if not len(frames[name]):
            raise ValueError(f"dataset: the {name} split is empty; check the files "
                             f"({given.get(name, given['train'])}) and the split rule.")
    if split is not None and split.column is not None:
        frames = {name: frame.drop(columns=[split.column]) for name, frame in frames.items()}
    if description is None:
        description = "; ".join(
            f"{name}: {', '.join(map(str, [paths] if isinstance(paths, (str, Path)) else paths))}"
            for name, paths in given.items())
    return DatasetSplits(frames["train"], frames["valid"], frames["test"], tasks=tasks,
                         description=description)


def read_table(paths, format=None, read_options=None, columns=None, what="dataset.files"):
    """One DataFrame of all rows of the files (in order).

    Args:
        paths: a path, a glob pattern, a folder or a list of them
            (`mtrec.data.shards.expand_shards`).
        format: `"csv"`, `"parquet"`, `"tfrecord"` or None (by suffix).
        read_options: dict for `pandas.read_csv`.
        columns: list of str to read, or None for all.
        what: the config key, for error messages.

    Returns:
        DataFrame with a fresh 0..n-1 index.
    """
    files = shards.expand_shards(paths, what)
    kind = _format(files, format)
    parts = []
    for path in files:
        if kind == "csv":
            # The checked reader: a line with too few or too many fields, or
            # bytes that are not UTF-8, is an error naming file and line.
            parts.extend(read_csv_chunks(path, usecols=columns,
                                         **_csv_options(path, read_options)))
        elif kind == "parquet":
            parts.append(pd.read_parquet(path, columns=columns))
        else:
            parts.extend(tfrecord.tfrecord_frames(path, TFRECORD_CHUNK_ROWS, columns=columns))
    if len(files) > 1 and kind != "tfrecord":
        first = list(parts[0].columns)
        for path, part in zip(files, parts):
            if set(part.columns) != set(first):
                raise ValueError(f"{path} has columns {list(part.columns)}, but the "
                                 f"first file has {first}; every file of a split must "
                                 f"have the same columns.")
    frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    return frame.reset_index(drop=True)


def table_columns(paths, format=None, read_options=None, what="dataset.files"):
    """`{path: [column, ...]}` of each file, from its header / metadata
    (TFRecord: the keys of its first records), for `mtrec validate`."""
    files = shards.expand_shards(paths, what)
    kind = _format(files, format)
    columns = {}
    for path in files:
        if kind == "csv":
            columns[path] = list(pd.read_csv(path, nrows=0,
                                             **_csv_options(path, read_options)).columns)
        elif kind == "parquet":
            import pyarrow.parquet as pq
            columns[path] = list(pq.read_schema(path).names)
        else:
            columns[path] = list(tfrecord.tfrecord_sample(path, rows=1000).columns)
    return columns


def split_table(frame, rule):
    """Cut one DataFrame into `{"train", "valid", "test"}` frames by `rule`
    (splits the rule does not make are absent, except train)."""
    for column in rule.columns():
        if column not in frame.columns:
            raise ValueError(f"dataset.split: column '{column}' is not in the data; "
                             f"columns: {list(frame.columns)}.")
    if rule.column is not None:
        return _split_by_column(frame, rule.column)
    if rule.time_column is not None:
        return _split_by_time(frame, rule)
    return _split_at_random(frame, rule)


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def _format(files, format):
    if format is None:
        return shards.file_format(files)
    if format not in FORMATS:
        raise ValueError(f"Unknown file format {format!r}; expected one of {list(FORMATS)}.")
    return format


def _csv_options(path, read_options):
    options = {"sep": "\t"} if path.name.lower().endswith((".tsv", ".tsv.gz")) else {}
    options.update(read_options or {})
    return options


def _as_split_files(files):
    if isinstance(files, dict):
        unknown = [k for k in files if k not in SPLITS]
        if unknown:
            raise ValueError(f"dataset.files: unknown split(s) {unknown}; the splits are "
                             f"{list(SPLITS)}.")
        if "train" not in files:
            raise ValueError("dataset.files needs a 'train' entry (the files the "
                             "schema is adapted on and the model trained on).")
        return {name: files[name] for name in SPLITS if files.get(name) is not None}
    return {"train": files}


def _split_by_column(frame, column):
    names = frame[column].astype("string").str.strip().str.lower()
    unknown = sorted(set(names.dropna()) - set(_SPLIT_VALUES))
    if unknown or names.isna().any():
        found = unknown[:5] + (["<missing>"] if names.isna().any() else [])
        raise ValueError(f"dataset.split.column '{column}' holds {found}; each row needs "
                         f"one of {sorted(set(_SPLIT_VALUES))}.")
    split = names.map(_SPLIT_VALUES)
    return {name: frame[split.to_numpy() == name].reset_index(drop=True) for name in SPLITS}


def _split_by_time(frame, rule):
    times = frame[rule.time_column]
    if rule.valid_from is not None or rule.test_from is not None:
        keys = _comparable(times, rule.time_column)
        cuts = {name: _cut_off(value, keys, rule.time_column, name)
                for name, value in (("valid", rule.valid_from), ("test", rule.test_from))
                if value is not None}
        if len(cuts) == 2 and not cuts["valid"] < cuts["test"]:
            raise ValueError(f"dataset.split: valid_from ({rule.valid_from}) must come "
                             f"before test_from ({rule.test_from}).")
        end = cuts.get("test")
        is_test = keys >= end if end is not None else np.zeros(len(frame), bool)
        is_valid = (keys >= cuts["valid"]) & ~is_test if "valid" in cuts else np.zeros(
            len(frame), bool)
        parts = {"train": ~is_test & ~is_valid}
        if "valid" in cuts:
            parts["valid"] = is_valid
        if end is not None:
            parts["test"] = is_test
        return {name: frame[np.asarray(mask)].reset_index(drop=True)
                for name, mask in parts.items()}
    # Fractions, latest rows last: a stable sort keeps ties in file order.
    order = np.argsort(_comparable(times, rule.time_column).to_numpy(), kind="stable")
    rows = frame.iloc[order].reset_index(drop=True)
    n_test = int(round(len(rows) * (rule.test or 0)))
    n_valid = int(round(len(rows) * (rule.valid or 0)))
    n_train = len(rows) - n_test - n_valid
    parts = {"train": rows.iloc[:n_train]}
    if rule.valid is not None:
        parts["valid"] = rows.iloc[n_train:n_train + n_valid]
    if rule.test is not None:
        parts["test"] = rows.iloc[n_train + n_valid:]
    return {name: part.reset_index(drop=True) for name, part in parts.items()}


def _split_at_random(frame, rule):
    from sklearn.model_selection import train_test_split

    fractions = {name: value for name, value in (("valid", rule.valid), ("test", rule.test))
                 if value is not None}
    total = sum(fractions.values())
    if total >= 1:
        raise ValueError(f"dataset.split: valid + test is {total:g}; it must be below 1, "
                         f"leaving rows to train on.")
    rest, parts = frame, {}
    left = 1.0
    for name, fraction in fractions.items():
        rest, parts[name] = train_test_split(rest, test_size=fraction / left,
                                             random_state=rule.seed, shuffle=True)
        left -= fraction
    parts["train"] = rest
    return {name: part.reset_index(drop=True) for name, part in parts.items()}


def _comparable(times, column):
    """The time column as numbers or timestamps (strings parsed as dates)."""
    if pd.api.types.is_numeric_dtype(times) or pd.api.types.is_datetime64_any_dtype(times):
        return times
    try:
        return pd.to_datetime(times)
    except (ValueError, TypeError) as error:
        raise ValueError(f"dataset.split.time_column '{column}' holds values such as "
                         f"{list(times.dropna().astype(str).head(3))}, which are neither "
                         f"numbers nor dates ({error}).") from None


def _cut_off(value, keys, column, split):
    if pd.api.types.is_numeric_dtype(keys):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
        raise ValueError(f"dataset.split.{split}_from is {value!r}, but time column "
                         f"'{column}' holds numbers; give a number.")
    if isinstance(value, (datetime.date, str)):
        try:
            stamp = pd.Timestamp(value)
        except ValueError:
            stamp = None
        if stamp is not None:
            tz = getattr(keys.dt, "tz", None)
            return stamp.tz_localize(tz) if tz is not None and stamp.tz is None else stamp
    raise ValueError(f"dataset.split.{split}_from is {value!r}, but time column "
                     f"'{column}' holds dates; give a date such as 2024-01-31.")
