"""Batch scoring of CSV and Parquet files with a saved model (`mtrec predict`).

`predict_file(model, input, output)` reads the input `chunk_rows` rows at a
time, checks each chunk against the model's schema, scores it `batch_size`
rows per call and appends the input columns plus one prediction column per
task to a `.partial` file, which is renamed into place only once every row
is scored: a bad row anywhere leaves no output at all.

The model is a `.keras` file, a run folder holding `model.keras` (as
`mtrec train` writes), or a SavedModel folder exported by mtrec (its schema
and serving names travel in `assets.extra/`). Input columns are named as in
training (`educational-num`), whichever the model file; prediction columns
are always `<task>_prediction` (`<task>_prediction_<k>` per class).
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pandas as pd

from mtrec.data.streaming import CSV_SUFFIXES, PARQUET_SUFFIXES, csv_dtypes, parquet_frames
from mtrec.schema import Schema, task_kind
from mtrec.schema.validation import csv_header, integer_ids, read_csv_chunks
from mtrec.utils.suggestions import closest

__all__ = ["PREDICTION_SUFFIX", "iter_table", "load_model", "load_scorer", "predict_file",
           "prediction_columns", "serving_feed"]

# pandas' default missing-value strings; the model's string columns use only
# "" ("NA" is a real category in some data, e.g. Census' hispanic_origin).
_NA_STRINGS = ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan",
               "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a",
               "nan", "null"]


def load_model(path):
    """A saved mtrec model from a `.keras` file or a run folder holding
    `model.keras`.

    Raises:
        ValueError: the file is not found; or it exists but is not a valid
            `.keras` archive (empty, truncated, not a zip, a member missing
            or damaged) or cannot be loaded, with the reason; Keras itself
            reports all of these as "File not found".
    """
    import json
    import zipfile

    path = Path(path)
    if path.is_dir():
        if not (path / "model.keras").is_file():
            raise ValueError(f"{path} is a folder without model.keras; pass a .keras "
                             f"file or a run folder written by `mtrec train`.")
        path = path / "model.keras"
    if not path.is_file():
        raise ValueError(f"Model file {path} not found (it does not exist); pass a "
                         f".keras file or a run folder written by `mtrec train`.")
    if path.suffix != ".keras":
        raise ValueError(f"{path} is not a .keras file.")
    size = path.stat().st_size
    reason = None
    if size == 0:
        reason = "the file is empty"
    elif not zipfile.is_zipfile(path):
        reason = f"not a zip archive ({size} bytes)"
    else:
        try:
            with zipfile.ZipFile(path) as archive:
                names = set(archive.namelist())
                lacking = sorted({"config.json", "model.weights.h5"} - names)
                damaged = archive.testzip()   # the first member whose CRC fails
            if lacking:
                reason = f"it lacks {', '.join(lacking)}"
            elif damaged:
                reason = f"member {damaged} is damaged"
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            reason = str(error)
    if reason:
        raise ValueError(f"{path} exists but is not a valid .keras file (corrupt or "
                         f"truncated: {reason}); re-export or re-train the model.")
    try:
        return keras.saving.load_model(path)
    except (OSError, KeyError, EOFError, json.JSONDecodeError) as error:
        raise ValueError(
            f"{path} exists but could not be loaded as a .keras file (corrupt or "
            f"truncated: {type(error).__name__}: {error}); re-export or re-train the "
            f"model.") from error


def load_scorer(path):
    """`(schema, score)` for a `.keras` file, a run folder or a SavedModel
    folder; `score(raw_features) -> {task: np.ndarray}`, where
    `raw_features` is `schema.raw_features(frame)` (other keys are
    ignored; a feature missing, or arrays of different lengths, raise a
    ValueError naming them)."""
    path = Path(path)
    if path.is_dir() and (path / "saved_model.pb").is_file():
        return _saved_model_scorer(path)
    if path.is_dir() and not (path / "model.keras").is_file():
        raise ValueError(f"{path} is a folder but neither a SavedModel (no "
                         f"saved_model.pb) nor a run folder (no model.keras).")
    if not path.exists():
        raise ValueError(f"Model {path} not found (it does not exist); pass a .keras "
                         f"file, a run folder or a SavedModel folder.")
    model = load_model(path)

    def score(features):
        return {task: np.asarray(value)
                for task, value in model.predict_on_batch(features).items()}

    return model.schema, score


def _saved_model_scorer(path):
    from mtrec.export.saved_model import load_saved_model, read_export_schema
    from mtrec.layers.feature_preprocessing import batch_size_message

    schema, served_name = read_export_schema(path)
    loaded = load_saved_model(path)
    if "serving_default" not in loaded.signatures:
        raise ValueError(f"SavedModel {path} has no 'serving_default' signature.")
    serve = loaded.signatures["serving_default"]
    specs = serve.structured_input_signature[1]
    unknown = {f: n for f, n in served_name.items() if n not in specs}
    if unknown:
        raise ValueError(
            f"SavedModel {path} has no inputs {sorted(unknown.values())} for features "
            f"{sorted(unknown)} (its inputs are {sorted(specs)}); its "
            f"assets.extra/mtrec_schema.json does not belong to it. Export the model "
            f"again with `mtrec export`.")

    def score(features):
        # As the .keras scorer: every feature needed, other keys ignored, and
        # errors that name the column (TF's name the position of the input).
        missing = [f for f in schema.feature_names if f not in features]
        if missing:
            raise ValueError(
                f"Inputs lack feature(s) {missing}; the model takes every schema "
                f"feature: {schema.feature_names}. Send missing values as '' "
                f"(strings), NaN (numbers) or -1 (integer ids).")
        features = {f: features[f] for f in schema.feature_names}
        rows = {f: len(v) for f, v in features.items()}
        if len(set(rows.values())) > 1:
            raise ValueError(batch_size_message(rows))
        feed = serving_feed(features, {column: specs[served_name[column]]
                                       for column in features})
        return {task: value.numpy()
                for task, value in serve(**{served_name[column]: value
                                            for column, value in feed.items()}).items()}

    score.keep_alive = loaded  # the signature needs its object alive
    return schema, score


def serving_feed(features, specs):
    """Raw feature arrays as tensors of their signature inputs' dtypes,
    checked first so that an error names the column (TF's would say "input
    #1 (zero-based) was expected to be a float tensor").

    Args:
        features: `{column: array-like (rows, ...)}`.
        specs: `{column: tf.TensorSpec}` of the inputs they feed.

    Returns:
        `{column: tf.Tensor}`.

    Raises:
        ValueError: naming the column, the dtype or shape found and the one
            expected.
    """
    import tensorflow as tf

    feed = {}
    for column, values in features.items():
        spec = specs[column]
        array = np.asarray(values)
        expected = spec.dtype.name
        kind = array.dtype.kind
        fits = {"string": kind in "OSU", "float32": kind in "fiub",
                "int64": kind in "iub"}.get(expected, True)
        if not fits:
            raise ValueError(
                f"Column '{column}' (served as '{spec.name}') is {array.dtype} but the "
                f"model takes {expected}; convert it (the schema's raw_features does) "
                f"or check that the column is the one the model was trained on.")
        rank = len(spec.shape)
        if array.ndim != rank or tuple(array.shape[1:]) != tuple(spec.shape[1:]):
            raise ValueError(
                f"Column '{column}' (served as '{spec.name}') has shape {array.shape} "
                f"but the model takes (rows{', ' if rank > 1 else ''}"
                f"{', '.join(str(d) for d in spec.shape[1:])}); pass one "
                f"{'value' if rank == 1 else 'vector'} per row.")
        if kind == "O":  # tf.constant cannot mix str and bytes; encode text
            array = np.array([v.encode("utf-8") if isinstance(v, str) else v
                              for v in array.reshape(-1)], object).reshape(array.shape)
        feed[column] = tf.constant(array, dtype=spec.dtype)
    return feed


def _table_format(path, what):
    name = Path(path).name.lower()
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    raise ValueError(f"{what} {path} is neither CSV ({', '.join(CSV_SUFFIXES)}) nor "
                     f"Parquet ({', '.join(PARQUET_SUFFIXES)}); name it accordingly.")


def iter_table(path, schema, chunk_rows):
    """A CSV or Parquet file as DataFrames of at most `chunk_rows` rows.

    Every column is read (the model's and the others, which scoring passes
    through), with a running row index. The model's columns come in the
    dtypes `schema.validate` expects. A file with a header and no rows
    yields one empty frame.

    Args:
        path: str or path of a `.csv`, `.csv.gz`, `.parquet` or `.pq` file.
        schema: the model's `mtrec.Schema`.
        chunk_rows: int. Rows per frame.

    Yields:
        pandas DataFrames.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"Input file {path} does not exist.")
    if _table_format(path, "Input file") == "parquet":
        yield from _iter_parquet(path, chunk_rows)
    else:
        yield from _iter_csv(path, schema, chunk_rows)


def _iter_parquet(path, chunk_rows):
    # Every column: scoring passes the input's other columns through.
    start = 0
    for frame in parquet_frames(path, chunk_rows):
        frame.index = pd.RangeIndex(start, start + len(frame))
        start += len(frame)
        yield frame
    if start == 0:
        import pyarrow.parquet as pq

        yield pq.ParquetFile(path).schema_arrow.empty_table().to_pandas()


def _iter_csv(path, schema, chunk_rows):
    header = csv_header(path)
    dtypes = _feature_csv_dtypes(schema)
    # The model's string columns are read as strings (as streaming.from_csv
    # reads them: ids keep their leading zeros), with only "" missing; its
    # integer-id columns as text too, parsed by `integer_ids`, which refuses
    # what is not an integer (a coercing read turned it into "missing", and
    # the output's copy of the column into NaN). Every other column is left
    # to pandas' inference: numbers keep their full precision in the copied
    # input columns, and a bad value ("high" in a numeric column) leaves an
    # object column that schema.validate names, where a typed read would
    # fail without naming the column. Lines are checked as they are read
    # (`read_csv_chunks`: field counts, UTF-8).
    strings = {column for column, dtype in dtypes.items() if dtype is str}
    integers = {column for column, dtype in dtypes.items()
                if dtype not in (str, "vector") and pd.api.types.is_integer_dtype(dtype)}
    options = {"keep_default_na": False,
               "dtype": {c: str for c in header if c in strings | integers},
               "na_values": {c: ([""] if c in strings else _NA_STRINGS) for c in header}}
    empty = True
    for frame in read_csv_chunks(path, chunk_rows, **options):
        empty = False
        yield _as_csv_dtypes(frame, schema, dtypes)
    if empty:  # chunked reading of a header-only file yields nothing
        [frame] = read_csv_chunks(path, nrows=0, **options)
        yield _as_csv_dtypes(frame, schema, dtypes)


def _feature_csv_dtypes(schema):
    """`{feature: dtype}` as `mtrec.data.streaming.csv_dtypes` reads them,
    plus `"vector"` for Vector features.

    csv_dtypes refuses Vector features (its reader, from_csv, cannot parse
    lists); scoring reads them as text such as "[0.1, 0.2]" and parses them
    (`_parse_vector`).
    """
    vectors = [spec.name for spec in schema.features if spec.list_valued]
    others = [spec for spec in schema.features if spec.name not in vectors]
    dtypes = csv_dtypes(Schema(others, tasks=schema.tasks), labels=False) if others else {}
    return {**dtypes, **{name: "vector" for name in vectors}}


def _as_csv_dtypes(frame, schema, dtypes):
    """The model's columns of a CSV chunk in the dtypes schema.validate takes."""
    for column, dtype in dtypes.items():
        if column not in frame.columns:
            continue  # reported by _check_columns
        values = frame[column]
        if dtype is str:
            frame[column] = values.astype(object).where(values.notna(), None)
        elif dtype == "vector":
            frame[column] = [_parse_vector(v) for v in values]
        elif pd.api.types.is_integer_dtype(dtype):  # missing kept as NA
            frame[column] = integer_ids(values, column)
        # floats stay as read (see _iter_csv)
    return frame


def _parse_vector(value):
    # "[0.1, 0.2]" (JSON) or "[0.1 0.2]" (numpy's str) -> list of float
    if not isinstance(value, str):
        return None
    text = value.strip().strip("[]").replace(",", " ").split()
    return [float(v) for v in text] if text else None


#: Suffix of every prediction column: `<task>_prediction`, whatever the input holds.
PREDICTION_SUFFIX = "_prediction"


def prediction_columns(schema, predictions, existing=()):
    """The prediction columns of one chunk.

    Args:
        schema: the model's `mtrec.Schema`.
        predictions: `{task: array (rows,) or (rows, outputs)}`.
        existing: column names already taken (the input's).

    Returns:
        `{column: np.ndarray (rows,)}`: one column `<task>_prediction` per
        task (multiclass: `<task>_prediction_<k>` per class), always so named.

    Raises:
        ValueError: an input column already has one of these names.
    """
    columns = {}
    for task in schema.tasks:
        values = np.asarray(predictions[task.name])
        # (rows, outputs); reshape cannot infer the width of zero rows.
        kind = task_kind(task.kind)
        width = kind.head_units(schema.num_classes(task))
        values = values.reshape(len(values), -1 if len(values) else width)
        name = f"{task.name}{PREDICTION_SUFFIX}"
        if kind.per_class:
            columns.update({f"{name}_{k}": values[:, k] for k in range(values.shape[1])})
        else:
            columns[name] = values[:, 0]
    taken = [name for name in columns if name in set(existing)]
    if taken:
        raise ValueError(
            f"The input already has column(s) {taken}, the name(s) of the prediction "
            f"column(s) (`<task>{PREDICTION_SUFFIX}`); drop or rename them in the "
            f"input (e.g. the predictions of an earlier scoring).")
    return columns


def predict_file(model_path, input_path, output_path, batch_size=4096, log=print,
                 chunk_rows=262_144):
    """Score every row of a CSV/Parquet file with a saved model.

    Writes the input columns plus one prediction column per task,
    `<task>_prediction` (multiclass: one per class, `<task>_prediction_<k>`),
    as CSV or Parquet by the output
    file's extension. The input is read and written `chunk_rows` rows at a
    time, so a file larger than memory can be scored; the output appears
    only when every row is scored (a bad row anywhere leaves no partial
    file).

    Args:
        model_path: `.keras` file, run folder or SavedModel folder.
        input_path: `.csv` / `.parquet` file with every feature column of the
            model's schema (other columns are passed through).
        output_path: `.csv` / `.parquet` file to write.
        batch_size: int. Rows scored per call.
        log: function printing the summary line; `None` to stay quiet.
        chunk_rows: int. Rows read (and validated) at a time.

    Returns:
        pathlib.Path of the output.
    """
    log = log or (lambda *args, **kwargs: None)
    for name, value in (("batch_size", batch_size), ("chunk_rows", chunk_rows)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}.")
    output_format = _table_format(output_path, "Output file")
    schema, score = load_scorer(model_path)
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    partial = output_path.with_name(output_path.name + ".partial")
    rows, added, parquet_writer = 0, [], None
    try:
        for i, frame in enumerate(iter_table(input_path, schema, chunk_rows)):
            if i == 0:
                _check_columns(schema, frame, input_path)
            schema.validate(frame)  # dtypes, naming the column at fault
            columns = prediction_columns(schema, _score_frame(schema, score, frame,
                                                              batch_size), frame.columns)
            out = frame.assign(**columns)
            added = list(columns)
            if output_format == "csv":
                out.to_csv(partial, index=False, header=i == 0, mode="w" if i == 0 else "a")
            else:
                import pyarrow as pa
                import pyarrow.parquet as pq

                # Later chunks are cast to the first chunk's column types.
                table = pa.Table.from_pandas(
                    out, preserve_index=False,
                    schema=parquet_writer.schema if parquet_writer else None)
                if parquet_writer is None:
                    parquet_writer = pq.ParquetWriter(partial, table.schema)
                parquet_writer.write_table(table)
            rows += len(frame)
        if parquet_writer is not None:
            parquet_writer.close()
            parquet_writer = None
        partial.replace(output_path)
    finally:
        if parquet_writer is not None:
            parquet_writer.close()
        partial.unlink(missing_ok=True)
    log(f"Scored {rows} rows of {input_path} -> {output_path} ({', '.join(added)})")
    return output_path


def _check_columns(schema, frame, input_path):
    missing = [c for c in schema.feature_names if c not in frame.columns]
    if not missing:
        return
    hints = []
    for column in missing:
        close = closest(column, [str(c) for c in frame.columns])
        if close:
            hints.append(f"'{column}' -> did you mean '{close}'?")
    more = "..." if len(frame.columns) > 20 else ""
    raise ValueError(
        f"{input_path} is missing column(s) {missing} that the model needs "
        f"(it has {list(frame.columns)[:20]}{more})."
        f"{' ' + ' '.join(hints) if hints else ''}")


def _score_frame(schema, score, frame, batch_size):
    """`{task: np.ndarray}` for the rows of `frame`, `batch_size` at a time."""
    parts = [score(schema.raw_features(frame.iloc[start:start + batch_size]))
             for start in range(0, len(frame), batch_size)]
    if not parts:
        return {t: np.zeros((0,), "float32") for t in schema.task_names}
    return {t: np.concatenate([np.asarray(p[t]) for p in parts]) for t in schema.task_names}
